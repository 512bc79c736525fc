"""still_improving's short path counts epochs, then the validated ones (audit s16 D7: a loop
validating epochs 2, 4 and 6 read "after only 3 epochs ... (epoch 6" and "the last epoch alone"
for epochs 4 -> 6)."""

from trainwise.train.diagnose_unfinished import rule_still_improving


def _epochs(validated: dict[int, float]) -> list[dict]:
    return [{"kind": "epoch", "epoch": e, "step": 10 * e, "val_loss": v}
            for e, v in validated.items()]


def test_a_loop_validating_every_second_epoch_is_counted_as_it_ran():
    [found] = rule_still_improving(_epochs({2: 9.0, 4: 7.056, 6: 4.837}))
    assert ("after only 6 epochs (3 validated) the best is the last (epoch 6, 4.837), and the "
            "last validation (epoch 4 -> 6) took it down 31.4% (7.056 -> 4.837)"
            in found.message)  # 2.219 / 7.056 = 31.4%


def test_every_epoch_validated_reads_as_before():
    [found] = rule_still_improving(_epochs({1: 0.40, 2: 0.2825, 3: 0.2055}))
    assert ("after only 3 epochs the best is the last (epoch 3, 0.2055), and the last epoch "
            "alone took it down 27.3% (0.2825 -> 0.2055)" in found.message)


def test_epochs_numbered_from_0_are_counted_as_the_rows():
    """Review s16 VF10: a history numbering epochs 0, 1, 2 (a hand-written `for epoch in
    range(n)`) read "after only 2 epochs (3 validated)", an impossible pair."""
    [found] = rule_still_improving(_epochs({0: 0.40, 1: 0.2825, 2: 0.2055}))
    assert "after only 3 epochs the best is the last (epoch 2, 0.2055)" in found.message
