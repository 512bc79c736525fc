"""The one error type of the data stage, in its own module so every data module can raise it,
and the one message for a data file that is not there."""

from __future__ import annotations

from pathlib import Path

from trainwise.config_sections import BUILT_IN_SOURCES
from trainwise.findings import TrainwiseError

NAMED_ON_COMMAND_LINE = "the file named on the command line"
NAMED_AS_SOURCE = "data.source"
_CHECK = {  # how the user gave the path decides where they correct it
    NAMED_ON_COMMAND_LINE: "Check its spelling and folder, or pass a .toml config, an image "
                           f"folder or a built-in data set ({', '.join(BUILT_IN_SOURCES)}).",
    NAMED_AS_SOURCE: "Check the spelling and folder of data.source where it was set: the "
                     "config file, a --set data.source=... override, or the dict or Config "
                     "given to trainwise.run.",
}


class DataError(TrainwiseError):
    """The data cannot be used as given; the message names the file or column and the fix."""


def missing_data_file(path: Path, named_by: str = NAMED_AS_SOURCE) -> str:
    """What happened, where it was looked for and where to correct it, said alike by the
    command line, the table reader and the .npz reader (review s13 VA5: three wordings, two
    telling a Python caller with no config file to "check your config"). A relative path is
    read from the working folder, so that folder is named."""
    where = "" if path.is_absolute() else f" (looked for from '{Path.cwd()}')"
    return f"data file '{path}' ({named_by}) does not exist{where}. {_CHECK[named_by]}"
