"""`predict --out` refuses to destroy what it was given (audit s16 S5): the input file itself
(its feature columns were replaced by the predictions) or a file inside a run folder
(--out RUN/meta.json broke the run), unless --force; a folder named with a trailing slash
that does not exist yet is a clean message, not IsADirectoryError. All before the model runs."""

from __future__ import annotations

import os
import shlex

from trainwise.cli import main
from trainwise.console import console

ROWS = "a,b\n1,2\n"


def _said(capsys) -> str:
    return "".join(capsys.readouterr().err.split())  # rich wraps long lines


def test_out_equal_to_the_input_is_refused_unless_forced(tmp_path, capsys) -> None:
    given = tmp_path / "new.csv"
    given.write_text(ROWS)
    args = ["predict", str(tmp_path / "any_run"), str(given), "--out"]
    assert main([*args, str(given)]) == 2
    assert "".join(f"--out '{given}' is the input '{given}'".split()) in _said(capsys)
    assert given.read_text() == ROWS
    main([*args, str(given), "--force"])  # on to the (missing) run: a different complaint
    assert "istheinput" not in _said(capsys)


def test_out_inside_a_run_folder_is_refused(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    (run / "figures").mkdir(parents=True)
    (run / "meta.json").write_text("{}")
    (tmp_path / "new.csv").write_text(ROWS)
    for out in (run / "meta.json", run / "figures" / "p.csv"):
        assert main(["predict", str(run), str(tmp_path / "new.csv"), "--out", str(out)]) == 2
        assert "".join(f"lies inside the run folder '{run}'".split()) in _said(capsys)
    assert (run / "meta.json").read_text() == "{}"


def test_a_missing_folder_with_a_trailing_slash_is_named_a_folder(tmp_path, capsys) -> None:
    out = f"{tmp_path / 'outdir'}/"
    assert main(["predict", str(tmp_path / "any_run"), "new.csv", "--out", out]) == 2
    said = _said(capsys)
    assert "".join(f"--out '{out}' names a folder".split()) in said and "mkdir-p" in said


def _suggested_out(capsys) -> str:
    said = capsys.readouterr().err.replace("\n", " ")
    if "e.g. --out " in said:
        return shlex.split(said.split("e.g. --out ", 1)[1].split(", or add")[0])[0]
    advice = said.split("give a file such as ", 1)[1]  # a folder given as --out
    return shlex.split(advice.split(" (mkdir")[0].rstrip(". \n"))[0]


def test_a_project_meta_json_above_is_no_run_folder(tmp_path, monkeypatch, capsys) -> None:
    """Review s16 VS2: a project's own meta.json (no config.toml) made the default --out be
    refused in every sub-folder, with the refused path as the advice."""
    (tmp_path / "meta.json").write_text('{"dataset": "x"}')
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    (tmp_path / "sub" / "new.csv").write_text(ROWS)
    main(["predict", str(tmp_path / "any_run"), "new.csv"])  # on to the missing run
    assert "liesinsidetherunfolder" not in _said(capsys)


def test_another_run_folder_is_refused_and_the_advice_lies_outside_it(tmp_path, capsys,
                                                                        monkeypatch) -> None:
    monkeypatch.setattr(console, "width", 10_000)  # one line: shlex reads the advice
    other = tmp_path / "o'brien" / "other"  # a quote: shell-quoted
    (other / "figures").mkdir(parents=True)
    (other / "meta.json").write_text("{}")
    (other / "config.toml").write_text("")
    (tmp_path / "new.csv").write_text(ROWS)
    out = other / "figures" / "p.csv"
    assert main(["predict", str(tmp_path / "any_run"), str(tmp_path / "new.csv"), "--out",
                 str(out)]) == 2
    assert _suggested_out(capsys) == str(tmp_path / "o'brien" / "predictions.csv")


def test_the_folder_hints_are_one_shell_word(tmp_path, capsys, monkeypatch) -> None:
    """Review s16 VS8: '(mkdir -p my out/ first)', pasted, made two folders."""
    monkeypatch.setattr(console, "width", 10_000)
    out = f"{tmp_path / 'my out'}/"
    assert main(["predict", str(tmp_path / "any_run"), "new.csv", "--out", out]) == 2
    said = capsys.readouterr().err.replace("\n", " ")
    assert shlex.split(said.split("mkdir -p ", 1)[1].split(" first)")[0]) == [out]


def _monitor_folder(path):
    """A real Monitor's folder: meta.json, findings.json, history.jsonl and no config.toml."""
    import trainwise

    monitor = trainwise.Monitor(path, console=False, report=False, tensorboard=False)
    for loss in (1.0, 0.9, 0.8):
        monitor.step(loss)
    monitor.end_epoch(0.85)
    monitor.close()
    assert not (path / "config.toml").exists() and (path / "findings.json").is_file()
    return path


def test_a_monitor_folder_is_a_run_folder_to_out(tmp_path, capsys) -> None:
    """Review s16 VX2: --out MONITOR/findings.json replaced the Monitor's findings with the
    predictions (rc 0), and `trainwise report` then died with a JSONDecodeError traceback."""
    run = _monitor_folder(tmp_path / "mon")
    kept = (run / "findings.json").read_text()
    (tmp_path / "new.csv").write_text(ROWS)
    out = run / "findings.json"
    assert main(["predict", str(tmp_path / "any_run"), str(tmp_path / "new.csv"), "--out",
                 str(out)]) == 2
    assert "".join(f"lies inside the run folder '{run}'".split()) in _said(capsys)
    assert (run / "findings.json").read_text() == kept


def test_trainwise_run_on_a_monitor_folder_names_no_config_toml(tmp_path, capsys) -> None:
    run = _monitor_folder(tmp_path / "mon")
    assert main(["run", str(run), "--no-report"]) == 2
    said = _said(capsys)
    assert "".join(f"trainwise run {run / 'config.toml'}".split()) not in said  # none there
    assert "".join(f"trainwise report {run}".split()) in said


def test_a_report_on_an_overwritten_findings_json_names_the_file(tmp_path, capsys) -> None:
    run = _monitor_folder(tmp_path / "mon")
    (run / "findings.json").write_text("row,prediction\n0,1\n")
    assert main(["report", str(run)]) == 2  # a clean error, as for a bad history.jsonl
    said = _said(capsys)
    assert "".join(f"{run / 'findings.json'} is not the findings list".split()) in said
    assert "Traceback" not in said


def _refused(args, capsys) -> str:
    """The --out a refusal advises, after checking that the command was refused."""
    assert main(args) == 2
    return _suggested_out(capsys)


def test_every_advised_out_passes_the_same_checks(tmp_path, monkeypatch, capsys) -> None:
    """Review s16 VX5: the input predictions.csv (the default --out) was told "--out
    predictions.csv"; VX7: --out RUN was told RUN/predictions.csv, which the run-folder check
    then refused. Each advised path, given as --out, gets past every check (on to the missing
    run's own complaint)."""
    monkeypatch.setattr(console, "width", 10_000)
    monkeypatch.chdir(tmp_path)
    run = _monitor_folder(tmp_path / "mon")
    (tmp_path / "predictions.csv").write_text(ROWS)
    (run / "figures").mkdir(exist_ok=True)
    cases = [["predictions.csv", "predictions.csv"], [str(run), "predictions.csv"],
             [str(run / "figures"), "predictions.csv"], [f"{run}/", "predictions.csv"],
             [str(run / "p.csv"), "predictions.csv"]]
    for out, given in cases:
        advised = _refused(["predict", str(run), given, "--out", out], capsys)
        assert os.path.abspath(advised) != os.path.abspath(out)
        main(["predict", str(run), given, "--out", advised])
        said = _said(capsys)
        assert "--out" not in said, (out, advised, said)  # no --out refusal this time


def test_the_input_refusal_advises_a_path_beside_the_input(tmp_path, monkeypatch, capsys
                                                           ) -> None:
    monkeypatch.setattr(console, "width", 10_000)
    given = tmp_path / "my rows.csv"
    given.write_text(ROWS)
    advised = _refused(["predict", str(tmp_path / "any_run"), str(given), "--out", str(given)],
                       capsys)
    assert advised == str(tmp_path / "my rows_predictions.csv")
