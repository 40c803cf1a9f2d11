"""A session store for your own values: variables, parameters and datasets, recorded beside
Raceplane's streams (pymanip's logged variables / parameters / datasets, for a live session).

    store = SessionStore("strategy", variables={"predicted_stint_laps": "laps"})
    store.wait_for_recorder(timeout_s=10)       # the recording has opened our streams
    store.log("predicted_stint_laps", 17.5)     # a scalar variable, stamped now (or timestamp=)
    store.set_parameter("fuel_model", {"kg_per_lap": 1.6})
    store.save_dataset("wear_fit", np.array([...]))
    ...
    load_store(["race.xdf"], "strategy")        # -> StoreData: variables, parameters, datasets

Streams, all under `raceplane.user.<store>.`: one float64 stream per variable (its unit in the
channel description), `parameters` (JSON: every parameter set so far, sent whole on each
change) and `datasets` (JSON: name, dtype, shape, data). A recorder selecting `raceplane.*`
(its default) records them. A sample pushed while nothing reads its stream is counted in
`unrecorded` and logged once: it cannot be in the recording.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pylsl

from dareplane_utils.stream_watcher.outlets import (
    ChannelSpec,
    StreamSpec,
    make_outlet,
    push_frame,
    push_json,
)
from modules.recorder.loader import load
from modules.stream_catalogue import USER_PREFIX

PREFIX = USER_PREFIX
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


def _checked(kind: str, name: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValueError(
            f"a {kind} name is a letter then letters, digits or _ (at most 64), got {name!r}"
        )
    return name


class SessionStore:
    def __init__(
        self,
        name: str,
        variables: Mapping[str, str] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        """`variables`: name -> unit of the variables to publish at once (others are created
        on their first `log`)."""
        self.name = _checked("store", name)
        self.prefix = f"{PREFIX}{name}."
        self.logger = logger or logging.getLogger("raceplane.live.store")
        self._variables: dict[str, pylsl.StreamOutlet] = {}
        self._parameters: dict[str, Any] = {}
        self._parameters_outlet = self._json_outlet("parameters")
        self._datasets_outlet = self._json_outlet("datasets")
        self.unrecorded = 0  # samples pushed while no consumer read their stream
        self._last_push = -math.inf
        self._closed = False
        for variable, unit in (variables or {}).items():
            self._variable(variable, unit)

    def _json_outlet(self, kind: str) -> pylsl.StreamOutlet:
        name = f"{self.prefix}{kind}"
        return make_outlet(StreamSpec.json(name, f"{name}@{self.name}", store=self.name))

    def _variable(self, variable: str, unit: str = "") -> pylsl.StreamOutlet:
        outlet = self._variables.get(variable)
        if outlet is None:
            name = f"{self.prefix}{_checked('variable', variable)}"
            spec = StreamSpec(
                name=name,
                type="user_variable",
                channels=[ChannelSpec(variable, unit, "user_variable")],
                source_id=f"{name}@{self.name}",
                channel_format="float64",
                metadata={"store": self.name},
            )
            outlet = self._variables[variable] = make_outlet(spec)
        return outlet

    def _outlets(self) -> list[pylsl.StreamOutlet]:
        return [*self._variables.values(), self._parameters_outlet, self._datasets_outlet]

    def wait_for_recorder(self, timeout_s: float = 10.0) -> bool:
        """Wait until every stream of the store has a reader (a recording picked them up);
        then send the parameters again, so the recording has them. False on timeout."""
        if not all(outlet.wait_for_consumers(timeout_s) for outlet in self._outlets()):
            return False
        if self._parameters:
            push_json(self._parameters_outlet, self._parameters)
        return True

    def log(self, variable: str, value: float, timestamp: float | None = None) -> None:
        """One value of a scalar variable (stamped `timestamp`, LSL time, or now)."""
        outlet = self._variable(variable)
        self._note_reader(outlet, variable)
        push_frame(outlet, [float(value)], timestamp)

    def set_parameter(self, name: str, value: Any) -> None:
        """A parameter (any JSON value); the stream carries all parameters on every change."""
        self._parameters[_checked("parameter", name)] = value
        self._note_reader(self._parameters_outlet, "parameters")
        push_json(self._parameters_outlet, self._parameters)

    def save_dataset(self, name: str, values: Any) -> None:
        """An array (any shape, numbers) saved whole."""
        array = np.asarray(values)
        if array.dtype.kind not in "biuf":
            raise ValueError(f"dataset {name!r}: numbers only, got dtype {array.dtype}")
        self._note_reader(self._datasets_outlet, "datasets")
        push_json(
            self._datasets_outlet,
            {
                "name": _checked("dataset", name),
                "dtype": array.dtype.str,
                "shape": list(array.shape),
                "data": array.ravel().tolist(),
            },
        )

    def _note_reader(self, outlet: pylsl.StreamOutlet, what: str) -> None:
        self._last_push = time.monotonic()
        if outlet.have_consumers():
            return
        if not self.unrecorded:
            self.logger.warning(
                "store %s: %s has no reader (no recording has it yet): this value is not "
                "recorded; call wait_for_recorder() first",
                self.name,
                what,
            )
        self.unrecorded += 1

    def close(self, linger_s: float = 1.0) -> None:
        """Withdraw the streams. liblsl drops what a reader has not taken yet when an outlet
        goes, so samples pushed in the last `linger_s` get that long to be taken first."""
        if self._closed:
            return
        self._closed = True
        since_last = time.monotonic() - self._last_push
        if since_last < linger_s and any(o.have_consumers() for o in self._outlets()):
            time.sleep(linger_s - since_last)
        self._variables.clear()

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class StoreData:
    """A store as recorded: each variable as a Series indexed by LSL time, the parameters as
    last set, each dataset as an array."""

    variables: dict[str, pd.Series] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    datasets: dict[str, np.ndarray] = field(default_factory=dict)


def load_store(files: list[str | Path], name: str) -> StoreData:
    """Read store `name` back from a recording (XDF files, rotated parts in any order)."""
    recording = load(*files)
    prefix = f"{PREFIX}{_checked('store', name)}."
    data = StoreData()
    found = False
    for stream in recording.streams:
        if not stream.name.startswith(prefix):
            continue
        found = True
        kind = stream.name[len(prefix) :]
        if kind == "parameters":
            for (text,) in stream.time_series:
                data.parameters = orjson.loads(text)
        elif kind == "datasets":
            for (text,) in stream.time_series:
                entry = orjson.loads(text)
                array = np.asarray(entry["data"], dtype=np.dtype(entry["dtype"]))
                data.datasets[entry["name"]] = array.reshape(entry["shape"])
        else:
            values = np.asarray(stream.time_series, dtype=float)[:, 0]
            data.variables[kind] = pd.Series(values, index=stream.time_stamps, name=kind)
    if not found:
        raise KeyError(f"the recording has no stream of store {name!r} ({prefix}*)")
    return data
