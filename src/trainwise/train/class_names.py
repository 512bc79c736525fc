"""How a message names a class: by its name where the data has one, else by its index.

One helper rather than the same expression in every rule: a class index beyond the names
(a model with more outputs than the data has labels) then reads the same everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence


def class_name(names: Sequence[str] | None, index: int) -> str:
    """names[index], or the index itself as text when there is no such name."""
    return str(names[index]) if names is not None and 0 <= index < len(names) else str(index)
