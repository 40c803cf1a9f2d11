"""The league file (TOML), validated with pydantic; every error names its line.

name = "Sunday League"
dropped_rounds = 1                 # each driver's worst rounds that do not count
[points]
race = [25, 18, 15, 12, 10, 8, 6, 4, 2, 1]
sprint = [8, 7, 6, 5, 4, 3, 2, 1]
fastest_lap = 1                    # to the fastest lap's holder in the top 10 of a race
pole = 0                           # to P1 of a qualifying session attached to the round
[[rounds]]
name = "Monza"
sessions = [{uid = "123", kind = "race"}]   # or attach by command
[[teams]]
name = "McLaren"
[[drivers]]
name = "Lando NORRIS"              # matched to the game by race number, network id or name
team = "McLaren"
race_number = 4
network_id = 17                    # online lobbies often show "Player": match by id
aliases = ["Player"]
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

KINDS = ("race", "sprint", "qualifying")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Points(Strict):
    race: list[int] = Field(default=[25, 18, 15, 12, 10, 8, 6, 4, 2, 1], max_length=30)
    sprint: list[int] = Field(default=[8, 7, 6, 5, 4, 3, 2, 1], max_length=30)
    fastest_lap: int = Field(0, ge=0)
    fastest_lap_max_position: int = Field(10, ge=1)
    pole: int = Field(0, ge=0)

    @model_validator(mode="after")
    def tables_descend(self) -> Points:
        for name in ("race", "sprint"):
            table = getattr(self, name)
            if any(value < 0 for value in table) or table != sorted(table, reverse=True):
                raise ValueError(
                    f"points.{name} must be non-negative points for P1, P2, ... in descending "
                    f"order, not {table}"
                )
        return self


class SessionRef(Strict):
    uid: str = Field(min_length=1, max_length=64)
    kind: Literal["race", "sprint", "qualifying"] = "race"


class Round(Strict):
    name: str = Field(min_length=1, max_length=64)
    sessions: list[SessionRef] = []


class Team(Strict):
    name: str = Field(min_length=1, max_length=64)


class Driver(Strict):
    name: str = Field(min_length=1, max_length=64)
    team: str = ""
    race_number: int | None = Field(None, ge=0, le=99)
    network_id: int | None = Field(None, ge=0, le=65534)
    aliases: list[str] = []


class League(Strict):
    name: str = Field(min_length=1, max_length=100)
    dropped_rounds: int = Field(0, ge=0)
    points: Points = Points()
    rounds: list[Round] = Field(min_length=1)
    teams: list[Team] = []
    drivers: list[Driver] = Field(min_length=1)

    @model_validator(mode="after")
    def consistent(self) -> League:
        _unique(self.rounds, "name", "rounds", "round")
        _unique(self.teams, "name", "teams", "team")
        _unique(self.drivers, "name", "drivers", "driver")
        numbered = [d for d in self.drivers if d.race_number is not None]
        _unique(numbered, "race_number", "drivers", "race number", self.drivers)
        with_id = [d for d in self.drivers if d.network_id is not None]
        _unique(with_id, "network_id", "drivers", "network id", self.drivers)
        teams = {team.name for team in self.teams}
        for index, driver in enumerate(self.drivers):
            if driver.team and teams and driver.team not in teams:
                raise LocatedError(
                    ("drivers", index, "team"), f"team {driver.team!r} is not in [[teams]]"
                )
        seen: dict[str, str] = {}
        for index, round_ in enumerate(self.rounds):
            for number, ref in enumerate(round_.sessions):
                if ref.uid in seen:
                    raise LocatedError(
                        ("rounds", index, "sessions", number),
                        f"session {ref.uid} is attached twice (also to round {seen[ref.uid]!r})",
                    )
                seen[ref.uid] = round_.name
        if self.dropped_rounds >= len(self.rounds):
            raise LocatedError(
                ("dropped_rounds",),
                f"dropped_rounds must be fewer than the {len(self.rounds)} rounds",
            )
        return self

    def round(self, name: str) -> Round:
        for round_ in self.rounds:
            if round_.name == name:
                return round_
        raise ValueError(
            f"no round {name!r} in league {self.name!r}; rounds: "
            + ", ".join(r.name for r in self.rounds)
        )


class LocatedError(ValueError):
    """A rule the whole file breaks, at a place in it (a pydantic loc)."""

    def __init__(self, loc: tuple, message: str) -> None:
        super().__init__(message)
        self.loc = loc


def _unique(items: list, attr: str, table: str, what: str, among: list | None = None) -> None:
    among = among if among is not None else items
    first: dict[Any, int] = {}
    for item in items:
        value = getattr(item, attr)
        key = value.casefold() if isinstance(value, str) else value
        index = next(i for i, other in enumerate(among) if other is item)
        if key in first:
            raise LocatedError(
                (table, index, attr),
                f"duplicate {what} {value!r} (also {table}[{first[key] + 1}])",
            )
        first[key] = index


class LeagueFileError(ValueError):
    """The league file is wrong; the message lists every problem as `FILE:LINE: what`."""


def load_league(path: Path | str) -> League:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise LeagueFileError(f"{path}: cannot read: {error.strerror}") from None
    return parse_league(text, str(path))


def parse_league(text: str, name: str = "league.toml") -> League:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise LeagueFileError(f"{name}: {error}") from None
    try:
        return League.model_validate(data)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            inner = item.get("ctx", {}).get("error")
            if isinstance(inner, LocatedError):
                loc, message = inner.loc, str(inner)
            else:
                loc, message = tuple(item["loc"]), item["msg"]
                if item["type"] == "extra_forbidden":
                    message = f"unknown key {loc[-1]!r}"
            where = ".".join(str(part) for part in loc) or "(file)"
            problems.append(f"{name}:{locate(text, loc)}: {where}: {message}")
        raise LeagueFileError("\n".join(problems)) from None


HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\"-]+)\s*\]\]?")
KEY = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")


def locate(text: str, loc: tuple) -> int:
    """The line (1-based) of `loc` (pydantic's path: ("drivers", 2, "team")) in the TOML text:
    the key's own line when found, else its table's header, else 1."""
    lines = text.splitlines()
    counts: dict[str, int] = {}
    table: tuple = ()  # the path of the table the current line is in
    best = 1
    target = tuple(loc)
    for number, line in enumerate(lines, start=1):
        header = HEADER.match(line)
        if header:
            name = header.group(2).strip('"')
            if header.group(1) == "[[":
                counts[name] = counts.get(name, -1) + 1
                table = (*name.split("."), counts[name])
            else:
                table = tuple(name.split("."))
            if target[: len(table)] == table:
                best = number
            continue
        key = KEY.match(line)
        if key:
            path = (*table, key.group(1))
            if target[: len(path)] == path:
                return number
    return best
