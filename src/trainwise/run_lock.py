"""One writer per run folder: a run (or a --resume) holds an exclusive lock on RUN/run.lock
for as long as it runs, so a second --resume of a folder whose run is still going is refused
instead of training into it too (audit s15 O4: two writers left 15,810 step rows for 10,800
steps, two test rows and checkpoints written by both).

`fcntl.flock` is released by the kernel when the process ends, kill -9 included, so a lock is
never stale. Where there is no flock (Windows) or the filesystem refuses it (some NFS mounts:
ENOLCK), the run goes on unlocked, as it did before: a lock is a guard, not a requirement.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime
from pathlib import Path
from typing import IO

from trainwise.safe_write import NO_FOLLOW

try:
    import fcntl
except ImportError:  # Windows: no flock; runs go on unlocked
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = "run.lock"


class RunFolderBusy(Exception):
    """The folder's lock is held by another process; its text is what run.lock says of it."""


def hold_lock(folder: Path) -> IO[str] | None:
    """Lock `folder` for this process (the open file holds the lock; close it to release).
    None where locking is unsupported. Raises RunFolderBusy when another process holds it."""
    if fcntl is None:
        return None
    path = folder / LOCK_NAME
    if path.is_symlink():  # a received folder's run.lock linking to a file of yours: the
        path.unlink()  # link goes, its target is never truncated (audit s16 S3)
    # not truncated until locked; O_NOFOLLOW: a link planted since is an error, not followed
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | NO_FOLLOW, 0o666)
    handle = os.fdopen(descriptor, "r+", encoding="utf-8")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise RunFolderBusy(holder) from None
    except OSError:  # ENOLCK and the like: a filesystem without locks
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()} since "
                 f"{datetime.now().isoformat(timespec='seconds')}\n")
    handle.flush()
    return handle


def release_lock(handle: IO[str] | None) -> None:
    if handle is not None:
        handle.close()  # closing the file drops the flock


def lock_holder(folder: Path) -> str | None:
    """Who holds `folder`'s lock ('pid 1234 on host since ...'), or None when no run holds it.
    A shared lock taken and dropped at once: it reads without blocking or disturbing the run."""
    path = folder / LOCK_NAME
    if fcntl is None or path.is_symlink() or not path.is_file():
        return None
    with path.open("r", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "another process"
        except OSError:
            return None
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return None
