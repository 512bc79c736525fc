"""A data file's bytes decompressed as pandas decompresses them (compression='infer': by
suffix, a.csv.gz), for the readers that look at the file themselves before pandas does (the
encoding, separator and header sniffers in csvfile / csvheader): a gzip's raw bytes sniffed as
text read "is not utf-8 text: byte 0x8b on line 1" (audit s14 Z1)."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from trainwise.config_sections import COMPRESSIONS
from trainwise.data.errors import DataError

OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}  # config_sections.COMPRESSIONS


@contextmanager
def open_bytes(path: Path) -> Iterator[IO[bytes]]:
    """The file's bytes, decompressed by its last suffix; a .zip must hold one file (pandas
    says "Multiple files found in ZIP file" without naming them). Folder entries do not
    count ('export/' from `zip -r`): csvfile hands pandas these bytes, not the path."""
    suffix = path.suffix.lower()
    if suffix != ".zip":
        with OPENERS.get(suffix, open)(path, "rb") as file:
            yield file
        return
    with zipfile.ZipFile(path) as archive:
        names = [name for name in archive.namelist() if not name.endswith("/")]
        if len(names) != 1:
            raise DataError(f"'{path}' holds {len(names)} files ({', '.join(names[:5])}); a "
                            ".zip read as a table must hold exactly one. Unzip it and pass "
                            "the .csv inside.")
        with archive.open(names[0]) as file:
            yield file


@contextmanager
def open_text(path: Path, encoding: str) -> Iterator[io.TextIOWrapper]:
    """The file as text (open_bytes), undecodable bytes replaced: for sniffing only."""
    with open_bytes(path) as raw:
        yield io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="")


def expanded_size(path: Path) -> tuple[int, bool] | None:
    """The bytes the file holds once decompressed, and whether that is only a lower bound:
    a plain file's size; a .zip's member size (its directory records it); a .gz's ISIZE
    trailer (RFC 1952: the size mod 2**32 of its last member, so a file over 4 GiB reads
    smaller than it is). None where only decompressing would tell (.bz2, .xz) or the file
    cannot say. For a message only: a 1.5 MB .csv.gz expanding to 1.5 GiB ran out of memory
    as "Is it a valid .gz file?" (audit s16 S7)."""
    suffix = path.suffix.lower()
    try:
        if suffix not in COMPRESSIONS:
            return path.stat().st_size, False
        if suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                return sum(info.file_size for info in archive.infolist()), False
        if suffix == ".gz":
            with open(path, "rb") as file:
                file.seek(-4, io.SEEK_END)
                return int.from_bytes(file.read(4), "little"), True
    except (OSError, zipfile.BadZipFile):
        return None
    return None
