"""Files named in findings: an image folder's rows are files a user can open."""

from __future__ import annotations

import os
from collections.abc import Sequence

NUM_NAMED = 2  # example files named in a finding's message (the evidence holds more)


def name_files(files: Sequence[str], rows: Sequence[Sequence[int]]) -> list[list[str]]:
    """The files of each tuple of rows, relative to the folder every file shares
    ('cat/i1.png', not '/home/me/data/pets/cat/i1.png'): an image folder's findings name what
    a user can open. The shared folder comes from the smallest and largest path alone."""
    lowest, highest = min(files), max(files)
    common = os.path.commonprefix([lowest, highest])
    root = common[:common.rfind(os.sep) + 1]
    return [[files[int(i)][len(root):] for i in row] for row in rows]


def named_pairs(files: Sequence[str], pairs: Sequence[Sequence[int]], joint: str = " = ",
                before: str = "; ") -> str:
    """'; e.g. a.png = b.png, c.png = d.png' for the first NUM_NAMED pairs of rows, to append
    to a message; '' without files."""
    if not files or not len(pairs):
        return ""
    named = name_files(files, pairs[:NUM_NAMED])
    return f"{before}e.g. {', '.join(joint.join(pair) for pair in named)}"
