"""Every public name of every byhand module is listed in its __all__."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import byhand


def test_public_names_are_in_all() -> None:
    """Functions and classes defined in a module without a leading underscore are exported."""
    missing = []
    for info in pkgutil.walk_packages(byhand.__path__, "byhand."):
        module = importlib.import_module(info.name)
        exported = set(getattr(module, "__all__", []))
        for name, value in vars(module).items():
            defined_here = getattr(value, "__module__", None) == module.__name__
            if (inspect.isfunction(value) or inspect.isclass(value)) and defined_here and not name.startswith("_"):
                if name not in exported:
                    missing.append(f"{module.__name__}.{name}")
    assert missing == []
