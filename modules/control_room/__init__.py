"""The control room: brings up a whole Raceplane stack from one setup file, keeps it alive,
and relays commands to its modules. `raceplane up` runs it in the foreground."""
