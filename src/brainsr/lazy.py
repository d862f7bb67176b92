"""Lazy package exports (PEP 562): a package lists its public names and the submodule of each, and imports that
submodule on first access. Keeps ``brainsr <command>`` start-up free of torch and scikit-learn for the commands
that do not use them (every workflow job pays the start-up)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for *package* whose public names live in submodules (``{name: module}``)."""

    def __getattr__(name: str) -> object:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
