"""Numbers, durations, shapes and evidence as the report prints them (jinja filters too)."""

from __future__ import annotations

import math
from typing import Any

from trainwise.amounts import amount


def fmt_number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return amount(value) if math.isfinite(value) else str(value)


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    return f"{minutes // 60} h {minutes % 60} min"


def fmt_shape(shape: Any) -> str:
    """[128, 1, 40] -> "128 × 1 × 40"; a layer with several inputs has a list of shapes."""
    if isinstance(shape, list | tuple) and any(isinstance(s, list | tuple) for s in shape):
        return ", ".join(fmt_shape(s) for s in shape)
    if isinstance(shape, list | tuple):
        return " × ".join(str(s) for s in shape) if shape else "scalar"
    return "–" if shape is None else str(shape)


def fmt_evidence(value: Any, limit: int = 80) -> str:
    """Compact value for key=value evidence: short floats, long lists cut after 8 items."""
    if isinstance(value, list | tuple) and len(value) > 8:
        text = "[" + ", ".join(fmt_number(v) for v in value[:8]) + f", … ({len(value)} items)]"
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(fmt_number(v) for v in value) + "]"
    else:
        text = fmt_number(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
