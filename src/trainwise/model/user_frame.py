"""Where in the user's own code an exception was raised: the innermost traceback frame outside
torch, trainwise and the standard library.

check reports a failing forward or loss as a finding instead of letting it propagate, so the
traceback the user would read is gone; this line puts its one useful frame back into the
message ("at my_model.py:10 `return self.head(h[:, :16])`", audit s14 G10).
"""

from __future__ import annotations

import os
import sysconfig
import traceback

import torch

_LIBRARY = tuple(os.path.dirname(os.path.abspath(path)) + os.sep for path in
                 (torch.__file__, os.path.dirname(os.path.abspath(__file__)),
                  os.path.join(sysconfig.get_paths()["stdlib"], "x")))


def user_frame(exc: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame of exc's traceback in the user's code; when exc was re-raised by
    a library (raise ... from), the frames of its cause are searched too."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if not os.path.abspath(f.filename).startswith(_LIBRARY)
                  and not f.filename.startswith("<frozen")]
        if frames:
            return frames[-1]
        exc = exc.__cause__ or exc.__context__
    return None


def at_user_line(exc: BaseException) -> tuple[str, dict[str, object]]:
    """(' at my_model.py:10 `return self.head(h)`', evidence {file, line, source}); ('', the
    same keys at None) when no frame is the user's: one evidence shape for the report."""
    frame = user_frame(exc)
    if frame is None:
        return "", {"file": None, "line": None, "source": None}
    code = f" `{frame.line.strip()}`" if frame.line else ""
    return (f" at {os.path.basename(frame.filename)}:{frame.lineno}{code}",
            {"file": frame.filename, "line": frame.lineno, "source": (frame.line or "").strip()})
