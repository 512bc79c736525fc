"""The per-layer shape trace on the console, as torchinfo prints it: what `trainwise check`
shows after its stage table (audit s15 M9: it was only in report.html and the JSON file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

# a deep model's trace runs to hundreds of rows (a ResNet-50: ~170): the first and last
# rows show where the shapes enter and leave, the file holds every one
HEAD_ROWS = 15
TAIL_ROWS = 10


def _shape(shape: Any) -> str:
    return "(" + ", ".join(map(str, shape)) + ")" if isinstance(shape, list) else str(shape)


def _shown(rows: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
    """The rows printed; None marks the left-out middle."""
    if len(rows) <= HEAD_ROWS + TAIL_ROWS + 1:
        return list(rows)
    return [*rows[:HEAD_ROWS], None, *rows[-TAIL_ROWS:]]


def shape_table(summary: dict[str, Any], path: Path) -> Table:
    """model_summary.json's rows -> a table: layer, type, input and output shape, params."""
    rows = summary.get("rows", [])
    total, trainable = summary.get("total_params", 0), summary.get("trainable_params", 0)
    frozen = "" if trainable == total else f", {trainable:,} trainable"
    table = Table(title=f"shape trace on a batch of {summary.get('batch_size', '?')}: "
                  f"{total:,} parameters{frozen}",
                  caption=f"{len(rows)} layers, each in {escape(str(path))}")
    for column, justify in (("layer", "left"), ("type", "left"), ("input", "right"),
                            ("output", "right"), ("params", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in _shown(rows):
        if row is None:
            table.add_row("...", f"{len(rows) - HEAD_ROWS - TAIL_ROWS} more layers", "", "", "")
            continue
        table.add_row(escape(str(row.get("name", ""))), escape(str(row.get("type", ""))),
                      _shape(row.get("input_shape")), _shape(row.get("output_shape")),
                      f"{row.get('num_params', 0):,}")
    return table
