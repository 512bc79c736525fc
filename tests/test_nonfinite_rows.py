"""A NaN batch's samples are named as rows of the data: the training part's positions mapped
through the split's train rows (Arrays.rows, what split.npz's 'train' holds)."""

from types import SimpleNamespace

import numpy as np

from trainwise.stages import Arrays
from trainwise.training_setup import nonfinite_finding


def test_the_batch_positions_become_rows_of_the_data(tmp_path):
    written = {}
    train = Arrays(np.zeros((4, 2), np.float32), np.zeros(4, np.int64),
                   rows=np.array([10, 3, 7, 42]))
    ctx = SimpleNamespace(splits={"train": train}, fabric=SimpleNamespace(is_global_zero=True),
                          run=SimpleNamespace(write_json=lambda name, r: written.update({name: r})))
    found = nonfinite_finding(ctx, {"step": 5, "epoch": 1, "sample_indices": [3, 0]}, 4)
    assert found.evidence["data_rows"] == [42, 10]
    assert written["nonfinite_batch.json"]["data_rows"] == [42, 10]
    assert "(42, 10)" in found.message
