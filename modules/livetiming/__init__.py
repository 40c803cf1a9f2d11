"""The live timing source: the official F1 feed, FastF1-format files, replay."""
