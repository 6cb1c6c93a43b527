"""Declarative range checks for config dataclasses, reported with the full key path."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

_BOUNDS = ("gt", "ge", "lt", "le")


def bounded(default: Any = dataclasses.MISSING, **bounds: float) -> Any:
    """A dataclass field whose numeric value must satisfy `gt`/`ge`/`lt`/`le` bounds."""
    unknown = set(bounds) - set(_BOUNDS)
    if unknown:
        raise TypeError(f"unknown bound(s) {sorted(unknown)}; use {_BOUNDS}")
    return dataclasses.field(default=default, metadata={"bounds": bounds})


def describe(bounds: dict[str, float]) -> str:
    symbols = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
    return " and ".join(f"{symbols[k]} {v}" for k, v in bounds.items())


def out_of_bounds(value: Any, bounds: dict[str, float]) -> bool:
    if isinstance(value, float) and not math.isfinite(value):
        return True
    checks = {
        "gt": lambda b: value > b,
        "ge": lambda b: value >= b,
        "lt": lambda b: value < b,
        "le": lambda b: value <= b,
    }
    return not all(checks[k](b) for k, b in bounds.items())


def range_errors(obj: Any, prefix: str = "") -> list[str]:
    """Every bounded field of `obj` (recursively, through dataclasses and dicts) out of range."""
    errors: list[str] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            errors += range_errors(value, f"{prefix}{key}.")
        return errors
    if not dataclasses.is_dataclass(obj):
        return errors
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        bounds = f.metadata.get("bounds")
        if bounds and out_of_bounds(value, bounds):
            errors.append(f"{prefix}{f.name} = {value!r} is out of range; allowed: {describe(bounds)}")
        errors += range_errors(value, f"{prefix}{f.name}.")
    return errors
