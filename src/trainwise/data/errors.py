"""The one error type of the data stage, in its own module so every data module can raise it."""

from __future__ import annotations

from trainwise.findings import TrainwiseError


class DataError(TrainwiseError):
    """The data cannot be used as given; the message names the file or column and the fix."""
