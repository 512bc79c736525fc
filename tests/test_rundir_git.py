"""meta.json's git keys name the code that ran (audit s11 R6)."""

import os
import subprocess
from pathlib import Path

import pytest

import trainwise
from trainwise.rundir import code_revisions


def _git(folder, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          cwd=folder, check=True, capture_output=True, text=True).stdout.strip()


def test_a_dirty_working_tree_is_recorded_beside_the_revision(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "model.py").write_text("WIDTH = 64\n")
    _git(tmp_path, "add", "model.py")
    _git(tmp_path, "commit", "-q", "-m", "model")
    head = _git(tmp_path, "rev-parse", "HEAD")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs/meta.json").write_text("{}")  # a run's own output: untracked, not dirty
    clean = code_revisions(tmp_path)
    assert (clean["git_revision"], clean["git_dirty"]) == (head, False)
    (tmp_path / "model.py").write_text("WIDTH = 128\n")  # edited since the commit
    dirty = code_revisions(tmp_path)
    assert (dirty["git_revision"], dirty["git_dirty"]) == (head, True)


def test_outside_a_repository_nothing_is_claimed(tmp_path):
    revisions = code_revisions(tmp_path)
    assert revisions["git_revision"] is None and revisions["git_dirty"] is None


def test_trainwise_run_from_a_checkout_records_its_own_revision(tmp_path):
    package = Path(trainwise.__file__).resolve().parent
    if not (package.parents[1] / ".git").exists():
        pytest.skip("trainwise is installed from a wheel here, not run from its checkout")
    head = _git(package, "rev-parse", "HEAD")
    revisions = code_revisions(tmp_path)
    assert revisions["trainwise_revision"] == head
    assert revisions["trainwise_dirty"] == bool(
        _git(package, "status", "--porcelain", "--untracked-files=no"))


def test_run_from_trainwise_checkout_asks_git_twice_not_five_times(monkeypatch):
    """Review s11 VA11: rev-parse HEAD and status ran twice on the same repository when the
    working folder was trainwise's checkout (the developer's and CI's case)."""
    import trainwise.rundir as rundir

    package = Path(trainwise.__file__).resolve().parent
    if not (package.parents[1] / ".git").exists():
        pytest.skip("trainwise is installed from a wheel here, not run from its checkout")
    calls, real = [], rundir._git
    monkeypatch.setattr(rundir, "_git", lambda args, cwd, *stdin: calls.append(args)
                        or real(args, cwd, *stdin))
    revisions = code_revisions(package.parents[1])
    # rev-parse and diff-index; a checkout with stat-stale files adds one hash-object (audit
    # s16 S13), with edits check-attr and config to tell git's conversions apart (VS3)
    assert [c[0] for c in calls] in (["rev-parse", "diff-index"],
                                     ["rev-parse", "diff-index", "hash-object"],
                                     ["rev-parse", "diff-index", "hash-object", "check-attr",
                                      "config"])
    assert revisions["trainwise_revision"] == revisions["git_revision"] == \
        _git(package, "rev-parse", "HEAD")
    assert revisions["trainwise_dirty"] == revisions["git_dirty"]


def test_recording_the_revision_runs_no_program_the_repository_names(tmp_path):
    # audit s16 S13: an unpacked project whose .git/config set core.fsmonitor = "touch ..."
    # ran it on every run (`git status`); a clean filter named by .gitattributes ran too
    _git(tmp_path, "init", "-q")
    (tmp_path / "model.py").write_text("WIDTH = 64\n")
    (tmp_path / ".gitattributes").write_text("*.py filter=unpacked\n")
    _git(tmp_path, "add", "model.py", ".gitattributes")
    _git(tmp_path, "commit", "-q", "-m", "model")
    ran = tmp_path.parent / f"{tmp_path.name}_ran"
    _git(tmp_path, "config", "core.fsmonitor", f"touch {ran}_fsmonitor; false")
    _git(tmp_path, "config", "filter.unpacked.clean", f"touch {ran}_filter; cat")
    _git(tmp_path, "config", "core.hooksPath", str(tmp_path))
    os.utime(tmp_path / "model.py", (0, 0))  # unpacked: the index's stat data is stale
    assert code_revisions(tmp_path)["git_dirty"] is False  # same bytes as HEAD
    (tmp_path / "model.py").write_text("WIDTH = 128\n")
    # a file under a clean filter is not hashed as git would store it (that runs the
    # filter), so its edit reads as unknown, never as a claim (review s16 VS3)
    assert code_revisions(tmp_path)["git_dirty"] is None
    assert not list(tmp_path.parent.glob(f"{tmp_path.name}_ran*"))


def _stale(folder: Path) -> None:
    """Every file's stat data unlike the index's, as after unpacking an archive."""
    for path in folder.rglob("*"):
        if ".git" not in path.parts and not path.is_symlink():
            os.utime(path, (0, 0))


def _status_dirty(folder: Path) -> bool:
    return bool(_git(folder, "status", "--porcelain", "--untracked-files=no"))


def _committed(folder: Path, files: dict[str, str], *config: str) -> None:
    _git(folder, "init", "-q")
    for name, text in files.items():
        (folder / name).write_text(text)
    _git(folder, *config, "add", "-A")
    _git(folder, "commit", "-q", "-m", "code")


def test_git_dirty_agrees_with_git_status_on_clean_checkouts(tmp_path):
    """Review s16 VS3: a re-made link, an eol=crlf checkout and 9,000 long paths (one argv
    too long for hash-object) were called dirty where `git status` says clean."""
    link = tmp_path / "link"
    link.mkdir()
    _committed(link, {"model.py": "W = 1\n"})
    (link / "alias.py").symlink_to("model.py")
    _git(link, "add", "alias.py")
    _git(link, "commit", "-q", "-m", "link")
    (link / "alias.py").unlink()
    (link / "alias.py").symlink_to("model.py")  # re-made: new stat data, same target
    eol = tmp_path / "eol"
    eol.mkdir()
    _committed(eol, {".gitattributes": "*.py text eol=crlf\n", "model.py": "W = 1\n"})
    (eol / "model.py").unlink()
    _git(eol, "checkout", "--", "model.py")  # written with CRLF
    many = tmp_path / "many"
    many.mkdir()
    _committed(many, {f"{i:05d}{'x' * 230}.txt": "a\n" for i in range(9000)})
    for folder in (link, eol, many):
        _stale(folder)
        assert code_revisions(folder)["git_dirty"] is False, folder.name
        assert not _status_dirty(folder)
    (eol / "model.py").write_bytes(b"W = 2\r\n")
    assert code_revisions(eol)["git_dirty"] is True
    (link / "alias.py").unlink()
    (link / "alias.py").symlink_to("elsewhere.py")
    assert code_revisions(link)["git_dirty"] is True


def test_a_filtered_file_is_unknown_and_a_plain_edit_beside_it_is_dirty(tmp_path):
    """An LFS-like clean filter stores other bytes than the disk holds: without running the
    filter trainwise cannot tell, so it says None, not a false 'dirty' (review s16 VS3)."""
    _committed(tmp_path, {".gitattributes": "*.bin filter=upper\n", "w.bin": "abc\n",
                          "model.py": "W = 1\n"}, "-c", "filter.upper.clean=tr a-z A-Z")
    _stale(tmp_path)
    assert code_revisions(tmp_path)["git_dirty"] is None
    (tmp_path / "model.py").write_text("W = 2\n")
    assert code_revisions(tmp_path)["git_dirty"] is True
