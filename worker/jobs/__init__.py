"""Job handlers, one module per kind (see registry.py for the contract)."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from worker.jobs.registry import REGISTRY, JobSpec

_NOT_HANDLERS = {"registry", "context"}


def load_all() -> dict[str, JobSpec[Any]]:
    """Import every handler module in this package so each registers its kind."""
    for mod in pkgutil.iter_modules(__path__):
        if mod.name not in _NOT_HANDLERS and not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
    return REGISTRY
