"""split.npz maps its indices to the source's rows when the run left rows out (audit s13 P11):
with data.max_samples, `train`/`val`/`test` index the 150 rows kept, not the 1,797 of the file,
and a supervisor recomputing the score from the folder indexed the wrong rows."""

from __future__ import annotations

import numpy as np

from trainwise.cli import main
from trainwise.config import load_config
from trainwise.data.task import TaskData
from trainwise.stages import (
    load_configured,
    max_samples_subset,
    per_class_quota,
)


def test_split_npz_names_the_source_rows_of_a_max_samples_run(tmp_path):
    settings = ['data.source="digits"', "data.max_samples=150", f'run.out_dir="{tmp_path}"']
    assert main(["split", *sum((["--set", s] for s in settings), []), "--no-report"]) == 0
    (folder,) = tmp_path.iterdir()
    saved = np.load(folder / "split.npz")
    config = load_config(None, settings)
    kept = max_samples_subset(config, load_configured(config))
    np.testing.assert_array_equal(saved["source_rows"], kept)
    parts = np.concatenate([saved["train"], saved["val"], saved["test"]])
    assert sorted(saved["source_rows"][parts].tolist()) == kept.tolist()


def test_a_run_that_left_no_row_out_saves_no_source_rows(tmp_path):
    settings = ['data.source="wine"', f'run.out_dir="{tmp_path}"']
    assert main(["split", *sum((["--set", s] for s in settings), []), "--no-report"]) == 0
    (folder,) = tmp_path.iterdir()
    assert "source_rows" not in np.load(folder / "split.npz").files


def test_max_samples_keeps_every_class_of_a_classification_set():
    """Audit s14 C13: 300 of 6,000 rows drawn uniformly kept 6 of 60 positives, 100 kept 1.
    Per class, in proportion (300 * 60 / 6,000 = 3 positives) but at least the 13 rows a class
    needs at the default split (class_rows_needed): 13 positives and 287 others."""
    y = np.array([0] * 5940 + [1] * 60)
    data = TaskData("f", "table", "classification", np.zeros((6000, 2), np.float32), y,
                    class_names=["ok", "fraud"])
    for limit, positives in [(300, 13), (100, 13), (20, 10)]:
        config = load_config(None, [f"data.max_samples={limit}"])
        kept = max_samples_subset(config, data)
        assert len(kept) == limit and len(set(kept.tolist())) == limit
        assert int(y[kept].sum()) == positives
    np.testing.assert_array_equal(per_class_quota(np.array([5940, 60]), 300, 13), [287, 13])
    # above the floor, in proportion: 1,000 rows of 3 classes 50 / 30 / 20%
    np.testing.assert_array_equal(per_class_quota(np.array([500, 300, 200]), 100, 13), [50, 30, 20])
    # a class smaller than the floor keeps all it has; more classes than rows: one each
    np.testing.assert_array_equal(per_class_quota(np.array([500, 3, 97]), 50, 10), [37, 3, 10])
    assert per_class_quota(np.array([9, 9, 9, 9]), 3, 13).tolist() == [0, 1, 1, 1]
