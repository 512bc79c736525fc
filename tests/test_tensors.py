"""Normaliser statistics come from training rows only; the loader is complete and seeded."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from trainwise.data.split import split_indices
from trainwise.data.tensors import Normaliser, sample_rows, to_loader


def pool(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(3.0, 2.0, size=(400, 6)).astype(np.float32)
    return x, np.arange(400) % 4


def test_statistics_equal_numpy_on_train_rows():
    x, _ = pool()
    normaliser = Normaliser().fit(x[:300])
    assert np.allclose(normaliser.mean, x[:300].astype(np.float64).mean(axis=0))
    assert np.allclose(normaliser.std, x[:300].astype(np.float64).std(axis=0))
    z = normaliser.transform(x[:300])
    assert z.dtype == np.float32
    assert np.allclose(z.mean(axis=0), 0, atol=1e-5) and np.allclose(z.std(axis=0), 1, atol=1e-4)


def test_val_and_test_rows_do_not_influence_the_statistics():
    x, y = pool()
    split = split_indices(y, val_fraction=0.25, seed=0)
    fitted = Normaliser().fit(x[split.train])
    poisoned = x.copy()
    poisoned[split.val] = 1e6  # if any val row leaked into fitting, the mean would explode
    refitted = Normaliser().fit(poisoned[split.train])
    assert np.array_equal(fitted.mean, refitted.mean) and np.array_equal(fitted.std, refitted.std)
    on_everything = Normaliser().fit(poisoned)
    assert not np.allclose(on_everything.mean, fitted.mean)


def test_sequences_are_normalised_per_channel():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3, 20)) * np.array([1.0, 10.0, 100.0])[None, :, None]
    normaliser = Normaliser().fit(x)
    assert normaliser.mean.shape == (3,)
    assert np.allclose(normaliser.mean, x.mean(axis=(0, 2)))
    assert np.allclose(normaliser.std, x.std(axis=(0, 2)))
    assert normaliser.transform(x).shape == (50, 3, 20)


def test_missing_values_become_the_training_mean_and_zero_std_is_guarded():
    x, _ = pool()
    x[[3, 8], 1] = np.nan
    x[5, 2] = np.inf
    x[:, 4] = 2.5  # constant: std 0
    normaliser = Normaliser().fit(x)
    assert np.allclose(normaliser.mean[1], np.nanmean(x[:, 1].astype(np.float64)))
    assert np.allclose(normaliser.std[1], np.nanstd(x[:, 1].astype(np.float64)))
    assert normaliser.std[4] == 1.0
    z = normaliser.transform(x)
    assert np.isfinite(z).all()
    assert z[3, 1] == 0.0 and z[5, 2] == 0.0 and np.all(z[:, 4] == 0.0)


def test_state_dict_round_trips_through_json():
    x, _ = pool()
    normaliser = Normaliser().fit(x)
    state = json.loads(json.dumps(normaliser.state_dict()))
    restored = Normaliser().load_state_dict(state)
    assert np.array_equal(restored.transform(x), normaliser.transform(x))


def epoch_ids(loader) -> list[np.ndarray]:
    return [y.numpy() for _, y in loader]


@pytest.mark.parametrize(("batch_size", "drop_last"), [(32, False), (30, False), (30, True)])
def test_loader_covers_every_row_once_per_epoch(batch_size, drop_last):
    x, _ = pool()
    ids = np.arange(len(x))
    loader = to_loader(x, ids, batch_size, shuffle=True, seed=0, drop_last=drop_last)
    for _ in range(2):
        batches = [(bx, by) for bx, by in loader]
        seen = np.concatenate([by.numpy() for _, by in batches])
        for bx, by in batches:  # x travels with its own y
            assert torch.equal(bx, torch.from_numpy(x[by.numpy()]))
            assert bx.dtype == torch.float32 and by.dtype == torch.int64
        if drop_last:
            assert all(len(by) == batch_size for _, by in batches)
            assert len(seen) == len(x) // batch_size * batch_size
            assert len(np.unique(seen)) == len(seen)
        else:
            assert np.array_equal(np.sort(seen), ids)
        assert len(batches) == len(loader)


def test_loader_order_is_seeded_and_global_rng_untouched():
    x, _ = pool()
    torch.manual_seed(1)
    np.random.seed(1)
    before = (torch.get_rng_state(), np.random.get_state()[1].copy())
    first = to_loader(x, np.arange(400), 64, shuffle=True, seed=3)
    again = to_loader(x, np.arange(400), 64, shuffle=True, seed=3)
    other = to_loader(x, np.arange(400), 64, shuffle=True, seed=4)
    epochs = [np.concatenate(epoch_ids(first)) for _ in range(2)]
    assert np.array_equal(epochs[0], np.concatenate(epoch_ids(again)))
    assert np.array_equal(epochs[1], np.concatenate(epoch_ids(again)))  # same epoch sequence
    assert not np.array_equal(epochs[0], epochs[1])  # a new order each epoch
    assert not np.array_equal(epochs[0], np.concatenate(epoch_ids(other)))
    assert torch.equal(before[0], torch.get_rng_state())
    assert np.array_equal(before[1], np.random.get_state()[1])


def test_unshuffled_loader_keeps_order_and_regression_targets_are_float32():
    x, _ = pool()
    targets = np.linspace(0, 1, 400)  # float64
    batches = list(to_loader(x, targets, 128, shuffle=False, seed=0))
    assert [len(by) for _, by in batches] == [128, 128, 128, 16]
    assert batches[0][1].dtype == torch.float32
    assert np.allclose(np.concatenate([by.numpy() for _, by in batches]), targets)


def test_check_sample_of_a_label_sorted_split_holds_every_class_in_proportion():
    y = np.repeat([0, 1, 2], [700, 270, 30])  # sorted by label, as a file can be
    state = np.random.get_state()[1].copy()
    rows = sample_rows(y, 256, seed=0, stratify=True)
    assert len(set(rows.tolist())) == 256
    # proportional by hand: 256 * (0.70, 0.27, 0.03) = (179.2, 69.1, 7.7), each within one row
    assert np.abs(np.bincount(y[rows]) - np.array([179.2, 69.1, 7.7])).max() <= 1
    assert np.array_equal(rows, sample_rows(y, 256, seed=0, stratify=True))  # run.seed
    assert not np.array_equal(rows, sample_rows(y, 256, seed=1, stratify=True))
    assert np.array_equal(np.random.get_state()[1], state)
    assert set(np.bincount(y[sample_rows(y, 3, seed=0, stratify=True)])) == {1}  # K rows: K classes
    plain = sample_rows(y, 256, seed=0, stratify=False)  # regression: a seeded random subset
    assert len(set(plain.tolist())) == 256 and plain.max() > 256
    assert np.array_equal(np.sort(sample_rows(y[:10], 256, seed=0, stratify=True)),
                          np.arange(10))  # fewer rows than asked: all of them


def test_the_check_stage_gets_a_seeded_stratified_sample_not_the_first_rows(monkeypatch):
    from types import SimpleNamespace

    import trainwise.stages_training as stages_training
    from trainwise.stages import Arrays

    seen = []
    monkeypatch.setattr(stages_training, "preflight", lambda model, loss_fn, x, y, **kwargs:
                        seen.append((x, y)) or [])
    label = np.repeat([0, 1], [400, 200])  # a label-sorted file: the first 256 rows are class 0
    x = np.arange(600, dtype=np.float32)[:, None]  # x = row number, to see which rows came
    config = SimpleNamespace(run=SimpleNamespace(checks=True, seed=3),
                             train=SimpleNamespace(lr="auto"),
                             model=SimpleNamespace(name="mlp", init="auto"))
    ctx = SimpleNamespace(config=config, model=object(), loss_fn=object(), user_model=None,
                          data=SimpleNamespace(task="classification", num_classes=2),
                          splits={"train": Arrays(x, label)}, make_optimizer=None)
    stages_training.stage_check(ctx)
    [(xs, ys)] = seen
    rows = sample_rows(label, 256, seed=3, stratify=True)
    assert np.array_equal(xs[:, 0].numpy(), rows) and np.array_equal(ys.numpy(), label[rows])
    assert abs(int(ys.sum()) - 256 / 3) <= 1  # class 1: a third of the rows, as in the split
