"""Where `trainwise predict --out` may write, checked before the model runs (audit s16 S5:
--out new.csv replaced the rows given; --out RUN/meta.json broke the run). Every refusal's
example path passes the same checks (review s16 VX5: the input predictions.csv was told
--out predictions.csv; VX7: --out RUN was told RUN/predictions.csv, which the run-folder
check then refused)."""

from __future__ import annotations

import os
from pathlib import Path

from trainwise.command_line import shell_word
from trainwise.config_files import is_run_folder
from trainwise.findings import TrainwiseError

DEFAULT_NAME = "predictions.csv"


def check_out(out: str, inputs: list[str], force: bool, run_dir: str) -> None:
    """Refuse a folder or an unwritable place always, an input file or a path inside a run
    folder unless --force."""
    _check_writable(out, inputs, run_dir)
    if force:
        return
    for given in inputs:
        if _same_file(out, given):
            name = Path(given).with_name(f"{Path(given).stem}_{DEFAULT_NAME}")
            raise TrainwiseError(
                f"--out '{out}' is the input '{given}': writing there would replace the rows "
                "you gave with the predictions alone. Give --out another path, e.g. --out "
                f"{_example([name], inputs, run_dir)}, or add --force to replace it.")
    run = _run_folder_around(out, run_dir)
    if run is not None:
        raise TrainwiseError(
            f"--out '{out}' lies inside the run folder '{run}': a table written there can "
            "replace the run's own files. Give --out a path outside it, e.g. --out "
            f"{_example([run.parent / DEFAULT_NAME], inputs, run_dir)}, or add --force to "
            "write there anyway.")


def _check_writable(out: str, inputs: list[str], run_dir: str) -> None:
    # a trailing slash names a folder even before it exists (audit s16 S5: 'outdir/' ended
    # in IsADirectoryError after the model ran)
    if os.path.isdir(out) or out.endswith(("/", os.sep)):
        inside = Path(out) / DEFAULT_NAME
        run = run_folder_holding(Path(os.path.abspath(out)).resolve(), Path(run_dir))
        example = _example([inside] if run is None else [run.parent / DEFAULT_NAME], inputs,
                           run_dir)
        first = "" if os.path.isdir(out) else f" (mkdir -p {shell_word(out)} first)"
        raise TrainwiseError(f"--out '{out}' names a folder; give a file such as "
                             f"{example}{first}.")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        why = "does not exist" if not os.path.isdir(folder) else "is not writable"
        raise TrainwiseError(f"--out '{out}': the folder '{folder}' {why}. Create it "
                             f"(mkdir -p {shell_word(folder)}) or pass --out a path in a "
                             "writable folder.")


def run_folder_holding(folder: Path, run_dir: Path) -> Path | None:
    """The run folder `folder` is, or is a sub-folder (figures/, checkpoints/) of: the one
    predicted from, or another by is_run_folder (a Monitor's too). A project's own meta.json
    higher up is no run folder (review s16 VS2: the default --out was refused below one)."""
    if run_dir.is_dir() and folder.is_relative_to(run_dir.resolve()):
        return run_dir.resolve()
    return next((f for f in (folder, folder.parent) if is_run_folder(f)), None)


def _example(preferred: list[Path], inputs: list[str], run_dir: str) -> str:
    """The first of `preferred`, then ./predictions.csv and ~/predictions.csv, that none of
    the checks above refuses, shell-quoted to paste."""
    candidates = [*preferred, Path.cwd() / DEFAULT_NAME, Path.home() / DEFAULT_NAME]
    fits = (c for c in candidates if _acceptable(str(c), inputs, run_dir))
    return shell_word(next(fits, candidates[0]))


def _acceptable(out: str, inputs: list[str], run_dir: str) -> bool:
    if os.path.isdir(out) or any(_same_file(out, given) for given in inputs):
        return False
    return _run_folder_around(out, run_dir) is None


def _run_folder_around(out: str, run_dir: str) -> Path | None:
    """The run folder the file `out` would be written into, or None."""
    return run_folder_holding(Path(os.path.abspath(out)).parent.resolve(), Path(run_dir))


def _same_file(out: str, given: str) -> bool:
    if os.path.abspath(out) == os.path.abspath(given):
        return True
    return os.path.exists(out) and os.path.exists(given) and os.path.samefile(out, given)
