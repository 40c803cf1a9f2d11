"""Where a setup file is wrong: line numbers of its keys, and messages that name the file, the
line and the table, whether the hand checks of setup.py or the schema (setup_schema.py) found
the problem.

tomllib reports syntax errors with their line but keeps no positions for valid documents, so
semantic errors find theirs here.
"""

from __future__ import annotations

import re
from typing import Any, get_args

from pydantic import BaseModel, ValidationError


class SetupError(ValueError):
    """A setup file that cannot be used; the message names the file and, where known, the line."""


class Locator:
    """Builds SetupErrors for one setup file."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.lines = _key_lines(text)

    def fail(self, where: tuple[str | int, ...], message: str) -> SetupError:
        keys = tuple(part for part in where if isinstance(part, str))
        line = self.line(keys)
        location = f"{self.name}, line {line}" if line else self.name
        return SetupError(f"{location}: [{'.'.join(keys[:-1]) or keys[0]}] {message}")

    def line(self, where: tuple[str, ...]) -> int:
        # The exact key if it has a line of its own, else the nearest enclosing table.
        for length in range(len(where), 0, -1):
            if where[:length] in self.lines:
                return self.lines[where[:length]]
        return 0

    def invalid(
        self, error: ValidationError, at: tuple[str, ...], model: type[BaseModel]
    ) -> SetupError:
        """The first problem pydantic found in table `at` (validated as `model`)."""
        problem = error.errors()[0]
        loc = tuple(problem["loc"])
        where = (*at, *loc)
        if not any(isinstance(part, str) for part in loc):
            subject = ".".join(at)  # the table itself
        else:
            subject = str(next(part for part in reversed(loc) if isinstance(part, str)))
            items = [part for part in loc[loc.index(subject) + 1 :] if isinstance(part, int)]
            subject += "".join(f" item {index + 1}" for index in items)
        return self.fail(where, _sentence(subject, problem, model, loc))


_WANTED = {
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "a boolean",
    "list_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
}


def _sentence(subject: str, problem: Any, model: type[BaseModel], loc: tuple) -> str:
    kind, value = problem["type"], problem.get("input")
    if kind == "setup":  # our own rules (setup_schema.py) word their message after the key
        text = problem["msg"]
        return f"{subject}{'' if text.startswith(':') else ' '}{text}"
    if kind == "extra_forbidden":
        owner = _model_at(model, loc[:-1])
        allowed = ", ".join(sorted(owner.model_fields)) if owner else "none"
        return f"unknown key {loc[-1]!r}; allowed: {allowed}"
    if kind == "missing":
        return f"{subject} is required"
    if kind in _WANTED:
        return f"{subject} must be {_WANTED[kind]}, not {type_name(value)} {value!r}"
    if kind == "literal_error":
        return f"{subject} must be {problem['ctx']['expected']}, not {value!r}"
    return f"{subject}: {problem['msg']}"  # a rule not worded above: pydantic's own words


def _model_at(model: type[BaseModel] | None, path: tuple) -> type[BaseModel] | None:
    """The model of the table at `path` inside `model` (list indexes skipped)."""
    for part in path:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        model = _inner_model(field.annotation) if field else None
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _inner_model(argument)
        if found:
            return found
    return None


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_ASSIGN = re.compile(r"^\s*([A-Za-z0-9_\-\"'. ]+?)\s*=")


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Line numbers (1-based) of every table header and `key =` line, by dotted path.
    First occurrence wins (array-of-tables repeat)."""
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            table = _dotted(header.group(1))
            lines.setdefault(table, number)
            continue
        assign = _ASSIGN.match(line)
        if assign:
            lines.setdefault((*table, *_dotted(assign.group(1))), number)
    return lines


def _dotted(key: str) -> tuple[str, ...]:
    parts = re.findall(r'"([^"]*)"|\'([^\']*)\'|([^.\s"\']+)', key)
    return tuple(next(p for p in part if p) for part in parts)


def type_name(value: Any) -> str:
    return {
        dict: "a table",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
    }.get(type(value), type(value).__name__)
