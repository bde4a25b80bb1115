"""Caps on free-form input: what a caller may put in a payload that reaches a workflow."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BeforeValidator

MAX_NOTES_CHARS = 5_000
MAX_EVIDENCE_TEXT_CHARS = 50_000
MAX_DESCRIPTION_CHARS = 2_000  # an evidence item's description, JSON or multipart
MAX_METRICS_BYTES = 16 * 1024  # serialised as compact JSON
MAX_METRICS_DEPTH = 4  # {"views": {"by_day": {"mon": 1}}} is depth 3
MAX_METRICS_KEYS = 50  # per object


def check_metrics(value: Any) -> dict[str, Any]:
    """A submission's metrics: a JSON object of bounded depth, width and size."""
    if not isinstance(value, dict):
        raise ValueError("metrics must be a JSON object")
    _check_shape(value, depth=1)
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_METRICS_BYTES:
        raise ValueError(f"metrics take {size} bytes; at most {MAX_METRICS_BYTES}")
    return value


def _check_shape(value: Any, depth: int) -> None:
    # Walks iteratively deeper only while within the cap, so hostile nesting stops early.
    if depth > MAX_METRICS_DEPTH:
        raise ValueError(f"metrics nest at most {MAX_METRICS_DEPTH} levels deep")
    if isinstance(value, dict):
        if len(value) > MAX_METRICS_KEYS:
            raise ValueError(f"metrics objects hold at most {MAX_METRICS_KEYS} keys")
        for item in value.values():
            if isinstance(item, dict | list):
                _check_shape(item, depth + 1)
    elif isinstance(value, list):
        if len(value) > MAX_METRICS_KEYS:
            raise ValueError(f"metrics lists hold at most {MAX_METRICS_KEYS} items")
        for item in value:
            if isinstance(item, dict | list):
                _check_shape(item, depth + 1)


# Checked before pydantic walks the value, so a payload nested hundreds deep is refused
# without recursing into it.
Metrics = Annotated[dict[str, Any], BeforeValidator(check_metrics)]
