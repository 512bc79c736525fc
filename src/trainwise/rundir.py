"""The run folder: metadata, history rows (JSON lines), findings, checkpoint paths.

runs/<date>-<time>-<name>/
  config.toml  meta.json  history.jsonl  findings.json  split.npz
  checkpoints/{best,last}.pt  tensorboard/  figures/  report.html
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from trainwise.config import Config, ConfigError
from trainwise.config_sections import MAX_RUN_NAME_BYTES
from trainwise.findings import Finding, TrainwiseError
from trainwise.run_lock import RunFolderBusy, hold_lock, lock_holder, release_lock
from trainwise.safe_write import PARTIAL_SUFFIX, appending, inside, write_replacing


def remove_partials(run_dir: Path) -> list[Path]:
    """Delete the `*.tmp` files a kill or a full disk left mid-write in a run folder (its root:
    meta.json.tmp, error.log.tmp; checkpoints/: last.pt.tmp); returns what was removed."""
    removed = sorted(path for folder in (Path(run_dir), Path(run_dir) / "checkpoints")
                     for path in folder.glob(f"*{PARTIAL_SUFFIX}"))
    for partial in removed:
        partial.unlink(missing_ok=True)
    return removed


class RunFolderError(TrainwiseError):
    """A run folder to resume or read is missing or incomplete; the message says what to pass."""

_PACKAGES = ("trainwise", "torch", "lightning-fabric", "numpy", "pandas", "scikit-learn",
             "mnist1d", "torchmetrics")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


# A repository's own config can name programs git runs: core.fsmonitor on every `status`
# (audit s16 S13: an unpacked project's .git/config ran `touch` on `trainwise audit`), hooks.
# Recording the revision must run none of them, nor take the index lock (optional locks).
_NO_PROGRAMS = ["-c", "core.fsmonitor=false", "-c", f"core.hooksPath={os.devnull}"]


def _git(args: list[str], cwd: Path | str | None, stdin: str | None = None) -> str | None:
    """git's stdout, or None outside a repository or without git. `stdin`: paths fed to
    --stdin-paths / --stdin (25,000 paths on argv raised 'Argument list too long': VS3)."""
    try:
        out = subprocess.run(["git", *_NO_PROGRAMS, *args], cwd=cwd, capture_output=True,
                             text=True, timeout=5, check=False, input=stdin,
                             env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_revision(cwd: Path | None = None) -> str | None:
    """HEAD of the repository holding `cwd` (the working folder by default)."""
    return _git(["rev-parse", "HEAD"], cwd) or None


def git_dirty(cwd: Path | None = None, top: str | None = None) -> bool | None:
    """Whether tracked files differ from HEAD (a model module edited since the commit): then
    the revision alone does not name the code that ran. Untracked files do not count: the
    runs/ folder a run writes would make every later run dirty. None outside a repository,
    and None (unknown) when the only files that differ are ones git converts (a clean filter
    such as LFS, text/eol attributes, core.autocrlf): `git status` would run those filters,
    which a repository's own config names (audit s16 S13), so they are not run. diff-index
    compares stat data only; a file it calls changed (an unpacked archive: every mtime new)
    is hashed as it is on disk, a link as its target's text. `top`: the repository's top
    folder, when known (one git call fewer)."""
    raw = _git(["diff-index", "-z", "--no-renames", "HEAD", "--"], cwd)
    if not raw:
        return None if raw is None else False
    fields = raw.split("\0")  # ":100644 100644 <HEAD sha> <0s: not hashed> M", path, ...
    entries = [(fields[i].lstrip(":").split(), fields[i + 1])
               for i in range(0, len(fields) - 1, 2)]
    if any(e[0] != e[1] or e[4] != "M" or set(e[3]) != {"0"} for e, _ in entries):
        return True  # added, deleted or mode changed, or already hashed as different
    top = top or _git(["rev-parse", "--show-toplevel"], cwd) or "."  # paths are from the top
    heads = {path: e[2] for e, path in entries}
    differing = _differing(top, heads, {path for e, path in entries if e[1] == _LINK_MODE})
    if differing is None or not differing:
        return None if differing is None else False
    filtered, converted = _conversions(top, differing)
    plain = [path for path in differing if path not in filtered and path not in converted]
    # eol and text conversion is git's own code: hashing with it runs no program
    again = _differing(top, {path: heads[path] for path in converted}, set(), filters=True)
    if plain or again is None or again:
        return True if plain or again else None
    return None if filtered else False


_LINK_MODE = "120000"  # a symbolic link's mode in git's tree


def _differing(top: str, heads: dict[str, str], links: set[str],
               filters: bool = False) -> list[str] | None:
    """The paths whose bytes on disk (a link: its target's text) differ from HEAD's blob,
    hashed as they are or (`filters`) as git stores them; None when git could not hash them."""
    files = [path for path in heads if path not in links]
    hashed = _git(["hash-object", *([] if filters else ["--no-filters"]), "--stdin-paths"],
                  top, "".join(f"{path}\n" for path in files)) if files else ""
    if hashed is None or len(hashed.split()) != len(files):
        return None
    on_disk = dict(zip(files, hashed.split(), strict=True))
    for path in links:  # hash-object follows a link and hashes the file it leads to
        on_disk[path] = _blob_id(os.fsencode(os.readlink(Path(top) / path)), heads[path])
    return [path for path, head in heads.items() if on_disk[path] != head]


def _blob_id(data: bytes, like: str) -> str:
    """git's object id of a blob holding `data`: SHA-1, or SHA-256 in a repository that uses
    it (`like`, a HEAD id, says which by its 40 or 64 hex digits)."""
    digest = hashlib.sha1 if len(like) == 40 else hashlib.sha256
    return digest(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _conversions(top: str, paths: list[str]) -> tuple[set[str], set[str]]:
    """Of `paths`, those under a clean filter (a program the repository names, LFS's too:
    never run) and those under git's own text/eol conversion (text, eol or core.autocrlf),
    read by check-attr, which runs nothing."""
    said = _git(["check-attr", "-z", "--stdin", "filter", "text", "eol"], top,
                "".join(f"{path}\0" for path in paths)) or ""
    fields = said.split("\0")  # path, attribute, value, path, ...
    marked = [(fields[i], fields[i + 1]) for i in range(0, len(fields) - 2, 3)
              if fields[i + 2] not in ("unspecified", "unset", "")]
    filtered = {path for path, attribute in marked if attribute == "filter"}
    autocrlf = _git(["config", "core.autocrlf"], top) in ("true", "input")
    converted = set(paths) if autocrlf else {path for path, _ in marked}
    return filtered, converted - filtered


def code_revisions(cwd: Path | None = None) -> dict[str, Any]:
    """meta.json's git keys: the working folder's repository (the user's code) and, when
    trainwise runs from a git checkout (an editable install), trainwise's own: its version
    number stays 0.1.0 from commit to commit. When the working folder is that checkout (a
    developer's or CI's run), its two answers are copied: 2 git calls, not 5 (review s11 VA11)."""
    top, head = _top_and_head(cwd)
    revisions: dict[str, Any] = {"git_revision": head, "git_dirty": git_dirty(cwd, top)}
    package = Path(__file__).resolve().parent
    if _is_checkout_of(top, package):  # the working folder is trainwise's checkout
        return {**revisions, "trainwise_revision": head, "trainwise_dirty": revisions["git_dirty"]}
    top, head = _top_and_head(package)
    if _is_checkout_of(top, package):
        revisions.update(trainwise_revision=head, trainwise_dirty=git_dirty(package, top))
    return revisions


def _top_and_head(cwd: Path | None) -> tuple[str | None, str | None]:
    """The repository's top folder and HEAD in one git call; (None, None) outside one (or
    before its first commit, where HEAD names nothing)."""
    out = _git(["rev-parse", "--show-toplevel", "HEAD"], cwd)
    lines = out.splitlines() if out else []
    return (lines[0], lines[1]) if len(lines) == 2 else (None, None)


def _is_checkout_of(top: str | None, package: Path) -> bool:
    # site-packages inside the user's repository (a .venv there) is not trainwise's checkout
    return bool(top) and (Path(top) / "src/trainwise/__init__.py").resolve() == \
        package / "__init__.py"


def with_absolute_source(config: Config) -> Config:
    """`config` with data.source made absolute when it names a file or folder.

    The run folder's config.toml must rerun (and --resume must find the data) from any working
    folder, not only the one the run started in; and the checkpoint's config fingerprint is
    made from this same config, so a resume from elsewhere still matches it."""
    from trainwise.data.sources import BUILT_IN  # loads the data readers: only when a run starts

    source = config.data.source
    if source in BUILT_IN and Path(source).exists():
        _say_shadowed(source)
    if source in BUILT_IN or Path(source).is_absolute() or not Path(source).exists():
        return config  # a missing file errs later, where the data is read
    data = config.data.model_copy(update={"source": os.path.abspath(source)})
    return config.model_copy(update={"data": data})


def _say_shadowed(source: str) -> None:
    """The one rule: a built-in name means the built-in set, even beside a same-named folder
    (a clone of the mnist1d repository is a folder `mnist1d`); said, so it is no silent
    surprise (review s11 VA12). `./digits` names the folder."""
    from rich.markup import escape

    from trainwise.console import console

    console.print(escape(f"data.source '{source}' is the built-in {source} data set, not the "
                         f"'{source}' folder here; to train on the folder, give "
                         f"./{source} (trainwise run ./{source}; in Python the string "
                         f"'./{source}' or an absolute path: Path('./{source}') drops the "
                         "'./')."), soft_wrap=True)


def make_out_dir(out_dir: str | Path, parent: Path) -> None:
    """Create run.out_dir, or a ConfigError. Kept out of RunDir.create's retry loop: a file
    named like the folder raises FileExistsError even with exist_ok=True, and the loop's
    same-second retry would then spin forever (review s11 VA1)."""
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, read-only, disk full: before any data
        raise _out_dir_error(out_dir, parent, exc) from None
    except ValueError:  # a NUL, from the Python API (the config refuses it): audit s16 S11
        raise ConfigError(f"run.out_dir {str(out_dir)!r} holds a NUL byte, which no folder "
                          "name can; set run.out_dir to a folder path, e.g. "
                          "--set run.out_dir=runs.") from None


def _out_dir_error(out_dir: str | Path, path: Path, exc: OSError) -> ConfigError:
    too_long = exc.errno == errno.ENAMETOOLONG  # audit s16 S11: a traceback before
    why = ("a folder name in it is over the file system's 255 bytes, or the whole path over "
           "its limit" if too_long else None) or _in_the_way(path) or \
        f"creating '{path}' failed ({exc.strerror or exc})"
    return ConfigError(
        f"run.out_dir '{out_dir}' cannot hold a run folder: {why}. Set run.out_dir to a "
        "writable folder, e.g. --set run.out_dir=runs.")


def _in_the_way(path: Path) -> str | None:
    """What blocks the folder where mkdir only says "File exists" (audit s15 O11): a symlink
    to a folder that is gone, or a file of that name."""
    for part in (path, *path.parents):
        try:  # stat itself fails on a name too long or a folder we may not read (S11)
            if part.is_symlink() and not part.exists():
                return f"'{part}' is a symlink to '{os.readlink(part)}', which does not exist"
            if part.exists() and not part.is_dir():
                return f"'{part}' is a file, not a folder"
        except OSError:
            continue
    return None


def _fitted(name: str) -> str:
    """`name` cut to MAX_RUN_NAME_BYTES of UTF-8 (never inside a character), so the folder's
    name fits 255 bytes: a name taken from a 249-character data file name was a traceback
    (audit s16 S11); run.name itself is refused past that length, by the config."""
    return name.encode("utf-8")[:MAX_RUN_NAME_BYTES].decode("utf-8", "ignore")


class RunDir:
    """One run's folder. Only this class writes into it."""

    def __init__(self, path: Path):
        self.path = path
        self.path.mkdir(parents=True, exist_ok=True)
        # a resumed folder's figures/ or checkpoints/ linking out is refused (audit s16 S3)
        inside(self.path / "figures", self.path)  # checkpoints/: made by its first save,
        # so `trainwise audit` (no model) leaves no empty folder (audit s13 P14)

    @classmethod
    def create(cls, out_dir: str | Path, name: str) -> RunDir:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        base = Path(out_dir) / f"{stamp}-{_fitted(name)}"
        make_out_dir(out_dir, base.parent)
        path, n = base, 1
        while True:  # mkdir is the check: of processes starting at once, one gets each name
            try:  # (exists() then mkdir(exist_ok=True) let two notebooks share one folder)
                path.mkdir()
            except FileExistsError:  # runs started in the same second: -2, -3, ...
                n += 1
                path = base.with_name(f"{base.name}-{n}")
                continue
            except OSError as exc:  # read-only or disk full: before any data
                raise _out_dir_error(out_dir, path, exc) from None
            return cls(path)

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run folder (to resume it); it must hold the run's config.toml."""
        path = Path(path)
        if not (path / "config.toml").is_file():
            raise RunFolderError(f"'{path}' is not a trainwise run folder (no config.toml). Pass "
                                 "the folder a run printed, e.g. runs/20260101-120000-mnist1d.")
        return cls(path)

    @classmethod
    def scratch(cls) -> RunDir:
        """A private folder for processes other than rank 0: only rank 0 writes the run."""
        return cls(Path(tempfile.mkdtemp(prefix="trainwise-rank-")))

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def lock(self) -> None:
        """Be the folder's one writer until unlock(): a second run into it (a --resume while
        the run still goes, a retrying CI job) is refused, naming who holds it."""
        try:
            self._lock = hold_lock(self.path)
        except RunFolderBusy as busy:
            raise RunFolderError(
                f"run folder '{self.path}' is in use by {busy} (its run is still going). Wait "
                f"for it to end, or stop that process first (kill {_pid(str(busy))}); then "
                f"resume with trainwise run --resume {self.path} if it did not finish.") from None

    def unlock(self) -> None:
        release_lock(getattr(self, "_lock", None))
        self._lock = None

    # paths ---------------------------------------------------------------
    @property
    def history_path(self) -> Path:
        return self.path / "history.jsonl"

    @property
    def findings_path(self) -> Path:
        return self.path / "findings.json"

    @property
    def report_path(self) -> Path:
        return self.path / "report.html"

    @property
    def tensorboard_dir(self) -> Path:
        """Made when missing; a tensorboard/ linking out is refused with the rm to run, as
        the event files would land in the folder it leads to (review VS1)."""
        return inside(self.path / "tensorboard", self.path)

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    def checkpoint_path(self, which: str) -> Path:
        """Where a checkpoint is saved; asked for only by the stages that save one."""
        return inside(self.checkpoints_dir, self.path) / f"{which}.pt"

    def figure_path(self, name: str) -> Path:
        """Where a stage saves a figure; a link of that name (a received folder's) is removed
        first, as savefig would write through it (audit s16 S3)."""
        path = self.path / "figures" / name
        if path.is_symlink():
            path.unlink()
        return path

    # writers -------------------------------------------------------------
    def write_json(self, name: str, payload: Any) -> Path:
        return self.write_text(name, json.dumps(payload, indent=2, default=str))

    def read_json(self, name: str) -> Any:
        return json.loads((self.path / name).read_text(encoding="utf-8"))

    def write_text(self, name: str, text: str) -> Path:
        """Atomic (temporary file, then rename): a run killed mid-write keeps the old file."""
        target = self.path / name
        try:  # a fresh temporary file: never one planted as a link (audit s16 S3)
            return write_replacing(target, text)
        except OSError as exc:  # a full disk: no empty .tmp left behind (audit s15 O1)
            exc.filename = exc.filename or str(target)
            raise

    def append_history(self, rows: list[dict[str, Any]]) -> None:
        with appending(self.history_path) as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")

    def keep_history(self, num_rows: int) -> list[dict[str, Any]]:
        """Keep the first `num_rows` rows (those a checkpoint knows); drop later, possibly torn,
        ones written before a kill. Returns the rows kept."""
        lines = self.history_path.read_text(encoding="utf-8").splitlines() \
            if self.history_path.exists() else []
        kept = [line for line in lines if line.strip()][:num_rows]
        self.write_text(self.history_path.name, "".join(line + "\n" for line in kept))
        return [json.loads(line) for line in kept]

    def write_findings(self, findings: list[Finding]) -> None:
        self.write_json("findings.json", [f.to_dict() for f in findings])


def _pid(holder: str) -> str:
    words = holder.split()
    return words[1] if len(words) > 1 and words[0] == "pid" else "PID"


def report_folder(path: str | Path) -> Path:
    """The folder `trainwise report` rebuilds: one with meta.json, which `trainwise run` and
    trainwise.Monitor write. Refused before anything is written, so the parent folder
    (`trainwise report runs`) gets no empty report.html and figures/."""
    path = Path(path)
    if (path / "meta.json").is_file():
        return path
    what = f"'{path}' is not a run folder" if path.is_dir() else f"there is no folder '{path}'"
    runs = sorted(path.glob("*/meta.json"), key=lambda meta: meta.stat().st_mtime) \
        if path.is_dir() else []
    newest = runs[-1].parent if runs else None
    hint = f"The newest run folder inside it is {newest}: trainwise report {newest} (in " \
        f"Python trainwise.report(\"{newest}\"))" if newest else "Pass the folder a run " \
        "printed (result.run_dir in Python), e.g. runs/20260101-120000-mnist1d"
    raise RunFolderError(f"{what}: expected a run folder with meta.json, as `trainwise run`, "
                         f"trainwise.run() and trainwise.Monitor write. {hint}.")


def read_history(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if path.is_dir():
        path = path / "history.jsonl"
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def read_meta(folder: str | Path) -> dict[str, Any]:
    """A run folder's meta.json, or {} when it is missing, half-written or not an object:
    for the callers that only describe a folder (predict's "never trained", a continued
    Monitor run), which must not fail on it (review s11 VA9: two copies of this)."""
    try:
        data = json.loads((Path(folder) / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def unfinished_run(folder: str | Path, meta: dict[str, Any] | None = None) -> str | None:
    """Why a run folder's model is not a finished run's, or None: the recipe writes meta.json's
    `verdict` only once its stages are over, so a kill (kill -9, a cluster's time limit, a
    crash) mid-training leaves best.pt of the epochs done, never tested (audit s15 O6).
    `meta`: the folder's meta.json where the caller has read it already (read_meta's)."""
    meta = read_meta(folder) if meta is None else meta
    if not meta or "verdict" in meta:  # no meta.json: not a recipe's folder, nothing to judge
        return None
    if not (Path(folder) / "checkpoints" / "best.pt").is_file():
        return None  # no model at all: predict's "holds no trained model" says what to do
    epochs = sum(1 for row in read_history(folder)
                 if row.get("kind", "epoch" if "val_loss" in row else "step") == "epoch")
    total = meta.get("config", {}).get("train", {}).get("max_epochs")
    of = f" of {total}" if total else ""
    done = [name for name in meta.get("stage_seconds", {}) if name != "report"]
    if "train" in done:
        return f"its training ended after {epochs} epoch(s) but it stopped before the test"
    return f"it stopped during training at epoch {epochs}{of}, so checkpoints/best.pt is " \
        f"the best of {epochs} epoch(s), never tested"


def refuse_unfinished(folder: Path, allow: bool, meta: dict[str, Any] | None = None) -> None:
    """A killed run's half-trained model is refused unless asked for: a script's `predict
    $(ls -d runs/* | tail -1)` after a preempted job would ship it without a sign."""
    why = unfinished_run(folder, meta)
    if why is None or allow:
        return
    holder = lock_holder(folder)
    if holder is not None:
        raise RunFolderError(f"'{folder}' is a run still going ({holder}): its model is not "
                             "trained yet. Wait for the run to end (it prints its verdict), or "
                             "pass --allow-unfinished (allow_unfinished=True in Python) to use "
                             "its best weights so far.")
    raise RunFolderError(
        f"'{folder}' is an unfinished run: {why} (it was killed, interrupted or crashed; "
        f"meta.json has no verdict). Finish it with trainwise run --resume {folder} (it goes "
        "on from its last checkpoint), then use it; or pass --allow-unfinished "
        "(allow_unfinished=True in Python) to use its model as it is.")


def read_findings(run_path: str | Path) -> list[Finding]:
    path = Path(run_path) / "findings.json"
    if not path.exists():
        return []
    return [Finding.from_dict(row) for row in json.loads(path.read_text(encoding="utf-8"))]
