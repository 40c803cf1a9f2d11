"""Raceplane's processes, one package each. Every entry point imports this package first."""

from dareplane_utils.lsl_defaults import quiet_liblsl

quiet_liblsl()
