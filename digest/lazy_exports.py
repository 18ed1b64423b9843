"""A package's public names imported from their modules on first use (PEP 562).

`digest.store` and `digest.matching` name dozens of functions for the stages to call;
importing every module behind them would make each command (`digest --help`,
`digest subscribe`) pay for backups, metrics, numpy and the index it never uses.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    namespace: dict[str, Any], modules: Mapping[str, str], renamed: Mapping[str, str] = {}
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The package's `__getattr__` and `__dir__`: `modules` maps each public name to
    the submodule holding it (`renamed`: the name it has there, when another); a name
    once imported becomes a plain attribute of the package (`namespace`, its globals)."""
    package = namespace["__name__"]

    def __getattr__(name: str) -> object:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), renamed.get(name, name))
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *modules})

    return __getattr__, __dir__
