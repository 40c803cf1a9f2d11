"""Print dareplane_utils' public API as JSON: every public module, its public names, each
callable's parameters, each class's public members. Run by a peer venv's interpreter, once
against dareplane-utils and once against ours (PYTHONPATH), by test_dareplane_api_superset."""

import importlib
import inspect
import json
import sys
import types
from pathlib import Path

import dareplane_utils

# imported from the standard library or third parties: theirs, not the package's API
FOREIGN = (types.ModuleType,)


def parameters(obj) -> list[str] | None:
    try:
        return list(inspect.signature(obj).parameters)
    except (TypeError, ValueError):
        return None


def describe(obj) -> dict:
    if inspect.isclass(obj):
        members = {}
        # members from the package's classes, not those of socketserver, Exception, ...
        own = [k for k in obj.__mro__ if str(k.__module__).startswith("dareplane_utils")]
        for name in dir(obj):
            if name.startswith("_") or not any(name in vars(k) for k in own):
                continue
            member = inspect.getattr_static(obj, name)
            target = member.__func__ if isinstance(member, staticmethod | classmethod) else member
            members[name] = parameters(target) if callable(target) else "attribute"
        return {"kind": "class", "init": parameters(obj), "members": members}
    if callable(obj):
        return {"kind": "function", "params": parameters(obj)}
    return {"kind": "attribute"}


def module_names() -> list[str]:
    """Every module file of the package (theirs has folders without __init__.py, which
    pkgutil does not walk)."""
    root = Path(dareplane_utils.__file__).parent
    names = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts and not any(part.startswith("_") for part in parts):
            names.append(".".join(("dareplane_utils", *parts)))
    return names


surface = {}
for module_name in module_names():
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # a module that does not import is reported as such
        surface[module_name] = {"__import_error__": repr(error)}
        continue
    names = {}
    for name, obj in vars(module).items():
        if name.startswith("_") or isinstance(obj, FOREIGN):
            continue
        home = getattr(obj, "__module__", None)
        if home is not None and home != module_name:
            continue  # imported for use (`Path`, `get_logger`): not this module's API
        names[name] = describe(obj)
    surface[module_name] = names
json.dump(surface, sys.stdout, indent=1, sort_keys=True)
