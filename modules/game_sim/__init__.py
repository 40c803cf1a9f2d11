"""The game simulator: a simulated F1 session sent as the game's UDP telemetry (docs/DESIGN.md)."""
