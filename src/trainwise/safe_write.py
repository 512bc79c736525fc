"""Writing into a run folder without writing through a link out of it (audit s16 S3).

A run folder is shared as a tar or zip, and both keep symlinks: a received folder whose
report.html links to ~/.bashrc had the user's file overwritten by `trainwise report`, and one
whose figures/ links to another folder had PNGs dropped there. So every run-folder writer
writes a fresh temporary file beside its target, created with O_EXCL (never through an
existing name, link or not), and renames it over the target: the rename replaces a link
itself, never the file it points to. A sub-folder (figures/) is refused when it resolves
outside the run folder. A kill mid-write leaves only the temporary `*.tmp` file,
which a --resume removes (rundir.remove_partials).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from trainwise.command_line import shell_word
from trainwise.findings import TrainwiseError

PARTIAL_SUFFIX = ".tmp"  # a file being written (then renamed): a kill or full disk leaves it
NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)  # 0 on Windows, where links need admin rights
# O_EXCL already refuses an existing name, a dangling link included; O_NOFOLLOW says so twice
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | NO_FOLLOW


class UnsafeFolderError(TrainwiseError):
    """A run folder's sub-folder is a link or leads outside the run folder, or a file to
    append to is a link."""


def inside(folder: Path, root: Path) -> Path:
    """`folder` (made when missing) when it is, or leads to, a folder inside `root`; else an
    error. A link inside the run folder (figures -> ./figs) is harmless once resolved, and was
    refused as 'outside the run folder' (review s16 VS11)."""
    target = folder.resolve()
    if not target.is_relative_to(root.resolve()):
        raise UnsafeFolderError(
            f"'{folder}' leads to '{target}', outside the run folder '{root}': nothing is "
            "written there, as a received run folder could aim it at any of your folders. "
            f"Delete the link (rm {shell_word(folder)}) and run the command again; it makes "
            "a real folder.")
    target.mkdir(parents=True, exist_ok=True)  # a link's target too, were it missing
    return folder


def _fresh_temporary(target: Path) -> tuple[int, Path]:
    # a random part: a stale or planted 'report.html.tmp' can neither block nor redirect us;
    # mode 0o666 less the umask, as open() gives (mkstemp's 0o600 would hide shared reports)
    tmp = target.with_name(f"{target.name}.{secrets.token_hex(4)}{PARTIAL_SUFFIX}")
    return os.open(tmp, _CREATE, 0o666), tmp


@contextmanager
def replacing(target: Path, mode: str = "w", *, fsync: bool = False,
              **kwargs: Any) -> Iterator[IO[Any]]:
    """A handle on a new temporary file beside `target`, renamed over `target` when the
    block ends without error (then `target` is a plain file, whatever it was before).
    `fsync`: the bytes reach the disk before the rename (checkpoints: a power cut must not
    leave a renamed but empty last.pt)."""
    descriptor, tmp = _fresh_temporary(Path(target))
    try:  # open() on the descriptor, not fdopen: the handle's name is the path, for errors
        with open(tmp, mode, opener=lambda *_: descriptor, **kwargs) as handle:
            yield handle
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, target)  # after closing it: Windows cannot replace an open file
    except BaseException:  # a full disk or Ctrl-C: no temporary file left behind
        tmp.unlink(missing_ok=True)
        raise


def appending(path: Path) -> IO[str]:
    """`path` opened to append (made when missing); a link there is refused, not followed."""
    if path.is_symlink():
        raise UnsafeFolderError(
            f"'{path}' is a link to '{os.readlink(path)}': nothing is appended through it, as "
            "a received run folder could aim it at any of your files. Delete the link (rm "
            f"{shell_word(path)}) and run the command again.")
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | NO_FOLLOW, 0o666)
    return os.fdopen(descriptor, "a", encoding="utf-8")


def write_replacing(target: Path, data: str | bytes) -> Path:
    """Write `data` (text as UTF-8) to `target` through a renamed temporary file."""
    if isinstance(data, bytes):
        with replacing(target, "wb") as handle:
            handle.write(data)
    else:
        with replacing(target, "w", encoding="utf-8") as handle:
            handle.write(data)
    return target
