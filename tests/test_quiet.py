"""`--quiet` for CI logs (audit s15 O12): the progress lines go, what a script or a reader needs
stays (the run folder, the warnings and errors with their fixes, the verdict)."""

from __future__ import annotations

from trainwise.cli import main

QUICK = ["train.max_epochs=2", "train.lr=0.01", "run.threads=1", "run.checks=false",
         "data.max_samples=300", "split.num_folds=2"]


def _run(tmp_path, capsys, *extra: str) -> tuple[int, str]:
    overrides = [x for key in QUICK for x in ("--set", key)]
    code = main(["run", "digits", "--set", f'run.out_dir="{tmp_path}"', *overrides,
                 "--no-report", *extra])
    return code, capsys.readouterr().err


def test_quiet_keeps_the_folder_the_findings_and_the_verdict_and_drops_the_progress(
        tmp_path, capsys):
    code, loud = _run(tmp_path / "loud", capsys)
    assert code == 0
    chatter = ("epoch 1 ", "stage done in", "fold 0 (1 of 2)", "┃ stage")
    assert all(line in loud for line in chatter)  # what --quiet must leave out is there
    code, quiet = _run(tmp_path / "quiet", capsys, "--quiet")
    assert code == 0
    assert not [line for line in chatter if line in quiet]
    assert quiet.count("Run folder: ") == 2 and "Test accuracy" in quiet
    warned = [line for line in loud.splitlines() if line.startswith(("warning ", "error "))]
    assert warned == [line for line in quiet.splitlines()
                      if line.startswith(("warning ", "error "))]


def test_quiet_is_undone_after_the_command(tmp_path, capsys):
    from trainwise.console import CHATTER

    _run(tmp_path, capsys, "--quiet")
    assert CHATTER.get() is True  # a notebook's next run prints its progress again
