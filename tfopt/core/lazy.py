"""Lazy package attributes: a name is imported from its module on first access. TF-free."""

from __future__ import annotations

import importlib
from typing import Callable


def lazy_getattr(package: str, table: dict[str, str]) -> Callable[[str], object]:
    """A module `__getattr__` for `package`: `table` maps a name to the module that defines it
    (or to the sub-module of that name, which is returned itself)."""

    def __getattr__(name: str):
        if name in table:
            module = importlib.import_module(table[name])
            return module if table[name].endswith("." + name) else getattr(module, name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
