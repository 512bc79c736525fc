"""The code that fit's refusals give for an unusual model output or batch works when pasted
(audit s14 G14: `self.model(x)[0]` of a dataclass output raised "'Out' object is not
subscriptable")."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
import torch

from trainwise.findings import TrainwiseError
from trainwise.train.evaluate import inputs_and_targets, one_output

LOGITS = torch.randn(4, 3)


@dataclass
class Out:
    logits: torch.Tensor
    hidden: torch.Tensor | None = None


class Scores:
    def __init__(self):
        self.name, self.scores = "head", LOGITS


@dataclass
class Batch:
    images: torch.Tensor
    mask: torch.Tensor
    labels: torch.Tensor


@pytest.mark.parametrize(("output", "article"), [
    (Out(LOGITS, torch.zeros(4, 8)), "an Out"), (Scores(), "a Scores"),
    ({"loss": torch.tensor(1.0), "logits": LOGITS}, "a dict"), ((LOGITS, None), "a tuple")])
def test_the_wrapper_the_output_refusal_gives_picks_the_predictions(output, article):
    with pytest.raises(TrainwiseError, match=f"returned {article}, not one tensor") as refusal:
        one_output(output)
    accessor = re.search(r"return self\.model\(x\)(\S+?)\. An auxiliary", str(refusal.value))[1]
    picked = eval("output" + accessor, {}, {"output": output})  # as the pasted forward runs it
    assert picked is LOGITS


def test_the_collate_fn_the_batch_refusal_gives_returns_inputs_and_targets():
    images, mask, labels = torch.randn(4, 3), torch.ones(4, 3), torch.tensor([0, 1, 2, 0])

    def your_collate(items):
        return Batch(images, mask, labels)

    with pytest.raises(TrainwiseError, match="yielded a Batch .*made by its collate_fn") as refusal:
        inputs_and_targets(your_collate(None))
    code = re.search(r"collate_fn=(lambda items: .*?\(your_collate\(items\)\))",
                     str(refusal.value))[1]
    x, y = inputs_and_targets(eval(code, {"your_collate": your_collate})(None))
    assert x[0] is images and x[1] is mask and y is labels


def test_a_batch_of_one_tensor_is_told_to_return_pairs():
    with pytest.raises(TrainwiseError, match="yielded a Tensor, not an .inputs, targets. pair"):
        inputs_and_targets(torch.zeros(4, 3))
