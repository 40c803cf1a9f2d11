"""Macros: named command sequences with parameters, expanded without I/O.

A payload value may name a parameter as `"{name}"`: a value that is exactly one placeholder
takes the parameter's value and type (`laps = "{laps}"` sends a number); a placeholder inside
longer text is formatted into it (`"race_{track}.xdf"`). Parameters come from the MACRO call,
else from the macro's `defaults`; any other parameter is refused, so a typo is never ignored.
Dareplane macros behave as dp-control-room's: parameters no command uses are ignored, and a
text parameter may name another as `$<name>` (`"$<root>/run1"`).
"""

from __future__ import annotations

import re
import string
from typing import Any

from modules.control_room.setup import Macro, MacroStep

_WHOLE = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_DOLLAR = re.compile(r"\$<([^>]*)>")


def parameters(macro: Macro) -> set[str]:
    """Every parameter the macro understands: its defaults and its placeholders."""
    names = set(macro.defaults)
    for step in macro.steps:
        names |= _placeholders(step.payload)
    return names


def expand(macro: Macro, given: dict[str, Any]) -> list[MacroStep]:
    known = parameters(macro)
    unknown = sorted(set(given) - known)
    if unknown and not macro.dareplane:
        accepted = ", ".join(sorted(known)) or "none"
        raise ValueError(
            f"macro {macro.name!r}: unknown parameter(s) {', '.join(unknown)}; it takes: {accepted}"
        )
    values = {**macro.defaults, **given}
    if macro.dareplane:
        values = _dollar_templates(macro.name, values)
    missing = sorted(known - set(values))
    if missing:
        raise ValueError(
            f"macro {macro.name!r}: missing parameter(s) {', '.join(missing)} (no default)"
        )
    return [MacroStep(step.module, step.cmd, _fill(step.payload, values)) for step in macro.steps]


def _dollar_templates(name: str, values: dict[str, Any]) -> dict[str, Any]:
    def substitute(match: re.Match) -> str:
        if match.group(1) not in values:
            raise ValueError(f"macro {name!r}: $<{match.group(1)}> names no parameter")
        return str(values[match.group(1)])

    return {
        key: _DOLLAR.sub(substitute, value) if isinstance(value, str) else value
        for key, value in values.items()
    }


def _fill(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        return {key: _fill(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, values) for item in value]
    if isinstance(value, str):
        whole = _WHOLE.match(value)
        if whole:
            return values[whole.group(1)]
        return value.format_map(values) if "{" in value or "}" in value else value
    return value


def _placeholders(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_placeholders(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(_placeholders(item) for item in value))
    return _names(value) if isinstance(value, str) else set()


def _names(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}
