"""split.npz maps its indices to the source's rows when the run left rows out (audit s13 P11):
with data.max_samples, `train`/`val`/`test` index the 150 rows kept, not the 1,797 of the file,
and a supervisor recomputing the score from the folder indexed the wrong rows."""

from __future__ import annotations

import numpy as np

from trainwise.cli import main
from trainwise.config import load_config
from trainwise.stages import max_samples_subset


def test_split_npz_names_the_source_rows_of_a_max_samples_run(tmp_path):
    settings = ['data.source="digits"', "data.max_samples=150", f'run.out_dir="{tmp_path}"']
    assert main(["split", *sum((["--set", s] for s in settings), []), "--no-report"]) == 0
    (folder,) = tmp_path.iterdir()
    saved = np.load(folder / "split.npz")
    kept = max_samples_subset(load_config(None, settings), 1797)
    np.testing.assert_array_equal(saved["source_rows"], kept)
    parts = np.concatenate([saved["train"], saved["val"], saved["test"]])
    assert sorted(saved["source_rows"][parts].tolist()) == kept.tolist()


def test_a_run_that_left_no_row_out_saves_no_source_rows(tmp_path):
    settings = ['data.source="wine"', f'run.out_dir="{tmp_path}"']
    assert main(["split", *sum((["--set", s] for s in settings), []), "--no-report"]) == 0
    (folder,) = tmp_path.iterdir()
    assert "source_rows" not in np.load(folder / "split.npz").files
