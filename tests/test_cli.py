"""The command line's own behaviour: exit codes, messages, help texts, interrupts."""

import os
from pathlib import Path

import pytest
import torch

from trainwise.cli import _parser, main
from trainwise.config import from_dict, to_toml


class RunsCode:  # a tampered checkpoint: unpickling it with weights_only=False would run code
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _run_folder(tmp_path, checkpoint_bytes):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    config = from_dict({"data": {"source": "digits"}, "run": {"out_dir": str(tmp_path)}})
    (run / "config.toml").write_text(to_toml(config))
    (run / "checkpoints/last.pt").write_bytes(checkpoint_bytes)
    return run


def test_damaged_or_tampered_checkpoint_exits_1_with_a_clean_message(tmp_path, capsys,
                                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"format": "trainwise-checkpoint", "w": torch.ones(2)}, tmp_path / "whole.pt")
    truncated = (tmp_path / "whole.pt").read_bytes()[:300]
    torch.save({"format": "trainwise-checkpoint", "w": RunsCode()}, tmp_path / "tampered.pt")
    tampered = (tmp_path / "tampered.pt").read_bytes()
    for payload, cause in ((truncated, "failed finding central directory"),
                           (tampered, "unsupported GLOBAL")):
        run = _run_folder(tmp_path / str(len(payload)), payload)
        assert main(["run", "--resume", str(run), "--no-report"]) == 1  # 2 means a bad config
        message = " ".join(capsys.readouterr().err.split())
        assert "damaged or not a trainwise checkpoint" in message
        assert "point --resume at another run folder" in message
        assert cause in message and "weights_only" not in message
    assert not (tmp_path / "PWNED").exists()


def _interrupt(ctx):
    raise KeyboardInterrupt  # what Ctrl-C raises in the main thread, here inside a stage


def _interrupted_run(tmp_path, monkeypatch, capsys, command):
    import trainwise.recipe as recipe

    monkeypatch.setattr(recipe, "STAGES", [("data", _interrupt)])
    code = main([command, "--set", 'data.source="digits"', "--set",
                 f'run.out_dir="{tmp_path}"', "--no-report"])
    [run] = [p for p in tmp_path.iterdir() if p.is_dir()]
    return code, run, _unwrapped(capsys.readouterr().err)


def _unwrapped(text):
    return "".join(text.split())  # the console wraps lines, even inside words


def test_ctrl_c_in_a_stage_exits_130_with_where_and_how_to_resume(tmp_path, monkeypatch,
                                                                   capsys):
    code, run, message = _interrupted_run(tmp_path, monkeypatch, capsys, "run")
    assert code == 130 and "Traceback" not in message
    assert _unwrapped(f"Interrupted during the data stage of run folder {run};") in message
    assert "notrainingcheckpointyet" in message
    assert message.endswith(_unwrapped(f"Continue with: trainwise run --resume {run} --no-report"))
    assert (run / "config.toml").is_file()  # what --resume reads


def test_ctrl_c_in_a_command_without_resume_says_to_run_it_again(tmp_path, monkeypatch, capsys):
    code, run, message = _interrupted_run(tmp_path, monkeypatch, capsys, "check")
    assert code == 130 and "--resume" not in message
    assert "Runthesamecommandagain" in message


def test_interrupt_message_names_the_checkpoints_step_and_epoch(tmp_path):
    from trainwise.resume import RunInterrupted, interrupted_message
    from trainwise.train.checkpoint import save_checkpoint

    (tmp_path / "checkpoints").mkdir()
    save_checkpoint({"train_state": {"step": 415, "epoch": 37}, "progress": {"epoch": 38}},
                    tmp_path / "checkpoints/last.pt")
    message = interrupted_message(RunInterrupted("train", tmp_path), "trainwise run --resume D")
    # the saved epoch (38) is the one in progress: between epochs, 37 is done (audit s10 S5)
    assert f"its last checkpoint {tmp_path}/checkpoints/last.pt is at step 415, the end of " \
        "epoch 37 (training after it is redone on resume" in message
    assert message.endswith("Continue with: trainwise run --resume D")
    save_checkpoint({"train_state": {"step": 450, "epoch": 38},
                     "progress": {"epoch": 38, "batches_done": 35}},
                    tmp_path / "checkpoints/last.pt")
    message = interrupted_message(RunInterrupted("train", tmp_path), "trainwise run --resume D")
    assert "is at step 450, 35 batches into epoch 38" in message


def test_an_unreadable_checkpoint_after_ctrl_c_says_what_resume_says(tmp_path):
    from trainwise.resume import RunInterrupted, interrupted_message
    from trainwise.train.checkpoint import CheckpointError, load_checkpoint

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints/last.pt").write_bytes(b"cut short")
    message = interrupted_message(RunInterrupted("train", tmp_path), "trainwise run --resume D")
    assert message.endswith("unreadable, so training cannot continue from it: delete it and "
                            "`trainwise run --resume D` reruns the run from the data stage "
                            "(every stage is seeded), or start a new run.")
    with pytest.raises(CheckpointError) as caught:  # what --resume itself says of the file
        load_checkpoint(tmp_path / "checkpoints/last.pt")
    assert "delete it and `trainwise run --resume" in str(caught.value)
    assert "reruns the run from the data stage (every stage is seeded)" in str(caught.value)


def test_ctrl_c_between_stages_offers_resume(tmp_path, monkeypatch, capsys):
    import trainwise.recipe as recipe

    def record_then_interrupt(ctx, findings):
        raise KeyboardInterrupt  # Ctrl-C after the data stage, before the split stage

    monkeypatch.setattr(recipe, "STAGES", [("data", lambda ctx: []), ("split", _interrupt)])
    monkeypatch.setattr(recipe, "_record", record_then_interrupt)
    code = main(["run", "--set", 'data.source="digits"', "--set",
                 f'run.out_dir="{tmp_path}"', "--no-report"])
    [run] = [p for p in tmp_path.iterdir() if p.is_dir()]
    message = _unwrapped(capsys.readouterr().err)
    assert code == 130
    assert _unwrapped(f"Interrupted during the split stage of run folder {run};") in message
    assert message.endswith(_unwrapped(f"Continue with: trainwise run --resume {run} --no-report"))


def test_resume_says_on_the_console_from_which_step_and_epoch(tmp_path, monkeypatch, capsys):
    import trainwise.recipe as recipe
    from trainwise.config import load_config
    from trainwise.resume import config_tag, training_config
    from trainwise.train.checkpoint import save_checkpoint

    _, run, _ = _interrupted_run(tmp_path, monkeypatch, capsys, "run")  # leaves a run folder
    assert main(["run", "--resume", str(run), "--no-report"]) == 130  # interrupted again
    assert _unwrapped(f"Resuming {run}: no training checkpoint, so the run restarts from the "
                      "data stage.") in _unwrapped(capsys.readouterr().err)
    config = load_config(run / "config.toml")
    (run / "checkpoints").mkdir()  # stopped before training: no checkpoint, no folder
    save_checkpoint({"train_state": {"step": 415, "epoch": 37}, "progress": {"epoch": 38},
                     "extra": {"tag": config_tag(config), "config": training_config(config)}},
                    run / "checkpoints/last.pt")
    monkeypatch.setattr(recipe, "RESUME_STAGES", [("data", _interrupt)])
    assert main(["run", "--resume", str(run), "--no-report"]) == 130
    assert _unwrapped(f"Resuming {run} from step 415, the end of epoch 37;") in \
        _unwrapped(capsys.readouterr().err)


@pytest.mark.parametrize("command", ["run", "audit"])
def test_a_missing_data_file_argument_exits_2_before_any_run_folder(tmp_path, capsys,
                                                                   monkeypatch, command):
    # `trainwise run nosuch.csv` made runs/<...>-nosuch/ with a report, exited 1 and said
    # "Check data.source in your config" to a user with no config (audit s13 P6)
    monkeypatch.chdir(tmp_path)
    assert main([command, "nosuch.csv"]) == 2
    message = _unwrapped(capsys.readouterr().err)
    assert _unwrapped("data file 'nosuch.csv' (the file named on the command line) does not "
                      f"exist (looked for from '{tmp_path}')") in message
    assert list(tmp_path.iterdir()) == []  # no runs/ folder, no report


def test_report_of_a_folder_of_runs_names_the_newest_run_and_writes_nothing(tmp_path, capsys):
    runs = tmp_path / "runs"
    for name in ("20260101-120000-wine", "20260102-120000-wine"):
        (runs / name).mkdir(parents=True)
        (runs / name / "meta.json").write_text("{}")
    os.utime(runs / "20260101-120000-wine/meta.json", (2e9, 2e9))  # the newer one, by time
    assert main(["report", str(runs)]) == 1  # was 0, with an empty report and figures/
    message = _unwrapped(capsys.readouterr().err)
    assert "expectedarunfolderwithmeta.json" in message
    assert _unwrapped(f"trainwise report {runs / '20260101-120000-wine'}") in message
    assert sorted(p.name for p in runs.iterdir()) == ["20260101-120000-wine",
                                                      "20260102-120000-wine"]
    assert main(["report", str(tmp_path / "missing")]) == 1
    assert _unwrapped(f"there is no folder '{tmp_path / 'missing'}'") in \
        _unwrapped(capsys.readouterr().err)


def _subcommands():
    [group] = [a for a in _parser()._actions if a.dest == "command"]
    return group.choices


def test_readme_command_table_lists_every_subcommand():
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    table = [line for line in readme.splitlines() if line.startswith("| `trainwise ")]
    assert sorted(line.split()[2].rstrip("`") for line in table) == sorted(_subcommands())


@pytest.mark.parametrize("name", ["report", "config"])
def test_every_subcommand_help_has_a_description_and_explains_each_argument(name, capsys):
    with pytest.raises(SystemExit) as done:
        main([name, "--help"])
    assert done.value.code == 0
    parser = _subcommands()[name]
    assert parser.description
    undocumented = [a.dest for a in parser._actions if not a.help]
    assert undocumented == []
    assert parser.description.split()[0] in capsys.readouterr().out


def test_the_interrupt_reads_the_checkpoint_once_memory_mapped_and_only_when_shown(
        tmp_path, monkeypatch):
    import torch

    from trainwise.resume import RunInterrupted
    from trainwise.train.checkpoint import save_checkpoint

    (tmp_path / "checkpoints").mkdir()
    save_checkpoint({"train_state": {"step": 415, "epoch": 37}, "progress": {"epoch": 38},
                     "model": {"weight": torch.zeros(3)}}, tmp_path / "checkpoints/last.pt")
    loads, real_load = [], torch.load

    def counted_load(*args, **kwargs):
        loads.append(kwargs.get("mmap", False))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", counted_load)
    exc = RunInterrupted("train", tmp_path)  # raised on Ctrl-C: a second one must not wait
    assert loads == []
    assert "step 415, the end of epoch 37" in str(exc)
    assert loads == [True]  # once, its tensors left on disk


def _refuse(ctx):
    from trainwise.findings import error

    return [error("data", "refused", "No data today.", "Bring data.")]


def test_the_run_folder_is_named_with_no_report_and_json_gives_it_to_scripts(tmp_path,
                                                                           monkeypatch, capsys):
    """Audit s11 R3: with --no-report no line named the run folder; a CI script had to guess."""
    import json

    import trainwise.recipe as recipe

    monkeypatch.setattr(recipe, "STAGES", [("data", _refuse)])
    code = main(["run", "--set", 'data.source="digits"', "--set", f'run.out_dir="{tmp_path}"',
                 "--no-report", "--json"])
    [run] = [p for p in tmp_path.iterdir() if p.is_dir()]
    out, err = capsys.readouterr()
    assert code == 1
    assert err.count(f"Run folder: {run}\n") == 2  # at the start and at the end, one line each
    summary = json.loads(out)  # stdout holds the JSON object alone
    assert summary == {"run_dir": str(run), "ok": False, "stopped_at": "data",
                       "verdict": summary["verdict"], "test": {}, "tune": {}, "report": None}
    assert (Path(summary["run_dir"]) / "meta.json").exists()


def test_json_gives_find_lr_range_and_spread(tmp_path, monkeypatch, capsys):
    """Audit s13 T1: --json had the verdict sentence only; a script had to parse tune.json
    for the range and the spread."""
    import json

    import trainwise.recipe as recipe
    from trainwise.findings import info
    from trainwise.run_result import RunResult

    chosen = info("tune", "lr_chosen", "...", lr=0.0175, lr_low=0.0087, lr_high=0.57,
                  spread_decades=0.85, source="range_test")
    monkeypatch.setattr(recipe, "run", lambda *a, **k: RunResult(
        path=tmp_path, findings=[chosen], verdict=""))
    assert main(["find-lr", "--json", "--no-report"]) == 0
    assert json.loads(capsys.readouterr().out)["tune"] == {
        "lr": 0.0175, "lr_low": 0.0087, "lr_high": 0.57, "spread_decades": 0.85,
        "source": "range_test"}


def test_json_is_printed_by_rank_zero_only(tmp_path, monkeypatch, capsys):
    """Review s11 VA2: with --devices N every process printed the JSON object, so
    `jq -r .run_dir` gave the path N times. Rank 1's result must print nothing."""
    import trainwise.recipe as recipe
    from trainwise.run_result import RunResult

    def rank_one(*args, **kwargs):
        return RunResult(path=tmp_path, findings=[], verdict="", is_global_zero=False)

    monkeypatch.setattr(recipe, "run", rank_one)
    assert main(["train", "--json", "--no-report"]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("command", ["run", "config"])
def test_a_run_folder_given_as_the_config_says_how_to_rerun_it(command, tmp_path, monkeypatch,
                                                               capsys):
    """Audit s11 R4: it was read as an image folder ("remove the folder", of checkpoints/).
    Review s11 VA5: `trainwise config RUN_DIR` still printed `source = "RUN_DIR"`, rc 0."""
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "runs/20260101-120000-wine"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.toml").write_text(to_toml(from_dict({"data": {"source": "wine"}})))
    (run / "meta.json").write_text("{}")
    code = main([command, str(run), "--set", 'run.out_dir="elsewhere"',
                 *(["--no-report"] if command == "run" else [])])
    out, err = capsys.readouterr()
    message = _unwrapped(err)
    assert code == 2 and out == ""  # the command line is wrong, not the run
    assert _unwrapped(f"trainwise run {run / 'config.toml'}") in message
    assert _unwrapped(f"trainwise run --resume {run}") in message
    assert "remove" not in message
    assert not (tmp_path / "elsewhere").exists()  # no junk run folder


def test_an_out_dir_that_cannot_be_created_is_a_config_error_before_the_data(tmp_path,
                                                                             monkeypatch, capsys):
    """Audit s11 R8: a file in the way of run.out_dir gave a NotADirectoryError traceback."""
    import trainwise.recipe as recipe

    loaded = []
    monkeypatch.setattr(recipe, "STAGES", [("data", lambda ctx: loaded.append(1) or [])])
    (tmp_path / "afile").write_text("")
    code = main(["run", "--set", 'data.source="digits"', "--set",
                 f'run.out_dir="{tmp_path / "afile/runs"}"', "--no-report"])
    message = _unwrapped(capsys.readouterr().err)
    assert code == 2 and loaded == []
    assert _unwrapped(f"run.out_dir '{tmp_path / 'afile/runs'}' cannot hold a run folder") \
        in message
    assert _unwrapped(f"'{tmp_path / 'afile'}' is a file, not a folder") in message
    assert "Setrun.out_dirtoawritablefolder" in message


def test_an_out_dir_through_a_dangling_symlink_names_it(tmp_path):
    """Audit s15 O11: a symlink to a removed folder was reported as "(File exists)"."""
    from trainwise.config import ConfigError
    from trainwise.rundir import make_out_dir

    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    with pytest.raises(ConfigError) as caught:
        make_out_dir(tmp_path / "dangling", tmp_path / "dangling")
    assert f"'{tmp_path / 'dangling'}' is a symlink to '{tmp_path / 'gone'}', which does not " \
        "exist" in str(caught.value)


def test_an_out_dir_naming_an_existing_file_is_a_config_error_not_a_hang(tmp_path):
    """Review s11 VA1: run.out_dir=<a file> spun forever in RunDir.create's same-second retry.
    The call runs in a daemon thread with a deadline, so the old code fails instead of hanging."""
    import threading

    from trainwise.config import ConfigError
    from trainwise.rundir import RunDir, make_out_dir

    (tmp_path / "afile").write_text("")
    with pytest.raises(ConfigError, match="cannot hold a run folder"):
        make_out_dir(tmp_path / "afile", tmp_path / "afile")
    raised = []

    def create():
        try:
            RunDir.create(tmp_path / "afile", "wine")
        except ConfigError as exc:
            raised.append(str(exc))

    worker = threading.Thread(target=create, daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "RunDir.create loops on an out_dir that is a file"
    assert raised and "Set run.out_dir to a writable folder" in raised[0]


def test_predict_checks_out_before_it_runs_the_model(tmp_path, capsys):
    """Audit s11 R8: --out in a missing folder failed in pandas after the model had run."""
    code = main(["predict", str(tmp_path / "any_run"), "new.csv",
                 "--out", str(tmp_path / "missing/p.csv")])
    message = _unwrapped(capsys.readouterr().err)
    assert code == 2
    assert _unwrapped(f"the folder '{tmp_path / 'missing'}' does not exist") in message
    assert "mkdir-p" in message
    # review s11 VA10: --out naming a folder passed, and pandas ended it with a traceback
    assert main(["predict", str(tmp_path / "any_run"), "new.csv", "--out", str(tmp_path)]) == 2
    assert _unwrapped(f"give a file such as {tmp_path / 'predictions.csv'}") in \
        _unwrapped(capsys.readouterr().err)


def test_a_resume_without_the_report_removes_the_stale_one(tmp_path, monkeypatch, capsys):
    """Audit s11 R10: `run --resume RUN --no-report` after `find-lr` left find-lr's report.html
    (no model trained) beside the finished run."""
    import trainwise.recipe as recipe

    monkeypatch.setattr(recipe, "STAGES", [("data", lambda ctx: [])])
    assert main(["run", "--set", 'data.source="digits"', "--set", f'run.out_dir="{tmp_path}"',
                 "--no-report"]) == 0
    [run] = [p for p in tmp_path.iterdir() if p.is_dir()]
    (run / "report.html").write_text("<p>Learning rate 0.0404 chosen</p>")  # the earlier one
    capsys.readouterr()
    assert main(["run", "--resume", str(run), "--no-report"]) == 0
    assert not (run / "report.html").exists()
    assert _unwrapped(f"Rebuild it with trainwise report {run}") in \
        _unwrapped(capsys.readouterr().err)


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_subcommand_help_ends_with_examples_and_the_exit_codes(name, capsys):
    """Audit s11 R13: --help had no example and no exit codes (only README prose had them)."""
    with pytest.raises(SystemExit):
        main([name, "--help"])
    out = capsys.readouterr().out
    examples = out.split("examples:\n")[1].split("\n\n")[0].splitlines()
    assert examples and all(line.startswith(f"  trainwise {name} ") for line in examples)
    assert "2 a bad config or command line" in out and "130 Ctrl-C" in out
    assert max(len(line) for line in out.splitlines()) <= 90  # raw text: wrapped by hand
    if name in ("run", "train"):
        assert "--json" in out and "run.out_dir" in out
    # review s11 VA4: predict and report said "every run prints its path: Run folder: RUN_DIR"
    commands_without_run = ("predict", "report", "config", "compare")
    assert ("Run folder: RUN_DIR" in out) == (name not in commands_without_run)


def test_a_misspelt_subcommand_gets_a_did_you_mean(capsys):
    # argparse said only "invalid choice: 'rnu' (choose from ...)" (audit s13 P14)
    with pytest.raises(SystemExit) as done:
        main(["rnu"])
    assert done.value.code == 2
    assert "Did you mean 'run'? (trainwise run --help)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["find_lr"])
    assert "Did you mean 'find-lr'?" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["xyzzy"])
    assert "Did you mean" not in capsys.readouterr().err  # nothing close: no guess


def test_stage_subcommands_show_their_own_examples(capsys):
    # `trainwise audit --help` offered "trainwise audit RUN_DIR/config.toml # rerun"
    for name, rerun in [("audit", False), ("find-lr", False), ("run", True), ("train", True)]:
        with pytest.raises(SystemExit):
            main([name, "--help"])
        out = capsys.readouterr().out
        assert f"trainwise {name} data.csv" in out
        assert (f"trainwise {name} RUN_DIR/config.toml" in out) == rerun


def test_an_audit_leaves_no_checkpoints_folder_and_folders_are_named_as_documented(tmp_path):
    import re

    from trainwise.config import RunConfig, field_notes

    assert main(["audit", "wine", "--no-report", "--set", f'run.out_dir="{tmp_path}"']) == 0
    [run] = list(tmp_path.iterdir())
    assert not (run / "checkpoints").exists()  # was an empty checkpoints/ (audit s13 P14)
    # `trainwise config` said <date>-<name>; folders are <date>-<time>-<name>
    assert "<out_dir>/<date>-<time>-<name>/" in field_notes(RunConfig)["out_dir"]
    assert re.fullmatch(r"\d{8}-\d{6}-wine", run.name)
