"""`predict --out` refuses to destroy what it was given (audit s16 S5): the input file itself
(its feature columns were replaced by the predictions) or a file inside a run folder
(--out RUN/meta.json broke the run), unless --force; a folder named with a trailing slash
that does not exist yet is a clean message, not IsADirectoryError. All before the model runs."""

from __future__ import annotations

from trainwise.cli import main

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
