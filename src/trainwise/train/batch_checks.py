"""What a batch must be and the errors of a training step that `check` names, said the same
way by fit, evaluation, the tuning probes and shape_trace: a batch of 3+ items or a dict (and
the one declared extra item, sample indices: SampleIndexed), a loss that is not one number,
inputs of another dtype than the model."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import nn

from trainwise.findings import Finding, TrainwiseError, error

# a namedtuple's 3rd field under one of these names is sample indices, by the Dataset's word
INDEX_FIELDS = ("index", "indices", "idx", "sample_index", "sample_indices")


class SampleIndexed(NamedTuple):
    """A Dataset item (or, collated, a batch) whose 3rd item is the sample's index: return
    SampleIndexed(x, y, index) from __getitem__ to have fit, find_lr and Monitor.evaluate
    take (x, y) and leave the index (default_collate and pin_memory keep a namedtuple)."""

    inputs: Any
    targets: Any
    index: Any


def is_sample_indexed(batch: Any) -> bool:
    """A 3-item namedtuple whose 3rd field is named as sample indices (INDEX_FIELDS): the
    Dataset's own declaration, the one source that tells indices from lengths or labels."""
    fields = getattr(type(batch), "_fields", None)
    return isinstance(batch, tuple) and fields is not None and len(batch) == 3 \
        and fields[2] in INDEX_FIELDS


def many_items_message(batch: Any) -> str:
    """What a batch of 3+ items must become, for inputs_and_targets' error."""
    kinds = ", ".join(type(item).__name__ for item in batch)
    return (f"the loader yielded a batch of {len(batch)} items ({kinds}); trainwise reads a "
            "batch as (inputs, targets) and will not guess which item is the target. Return "
            "((x1, x2), y) from the Dataset or collate_fn, e.g. (padded, lengths, y) -> "
            "((padded, lengths), y), with a model whose forward(self, inputs) unpacks its "
            "input (padded, lengths = inputs). Sample indices as a 3rd item are taken only "
            "when the Dataset names them: return trainwise.train.batch_checks.SampleIndexed("
            "x, y, index) from __getitem__ (a namedtuple whose 3rd field is 'index'; "
            "default_collate keeps it); or drop them (fit finds a batch's samples itself), "
            "e.g. collate_fn=lambda items: torch.utils.data.default_collate(items)[:2].")


TARGET_KEYS = ("labels", "label", "targets", "target", "y")  # HF's and the usual names


def dict_batch_message(batch: dict) -> str:
    """How to split a dict batch into (inputs, targets), for inputs_and_targets' error."""
    target = next((key for key in TARGET_KEYS if key in batch), "<target key>")
    inputs = [key for key in batch if key != target]
    return (f"the loader yielded a dict (keys {list(batch)}); trainwise reads a batch as "
            f"(inputs, targets). Split it in a collate_fn: def collate(items): "
            f"b = torch.utils.data.default_collate(items); return {{k: b[k] for k in "
            f"{inputs}}}, b[{target!r}]; with a model whose forward(self, inputs) calls your "
            "model(**inputs) and returns the logits alone. With trainwise.Monitor in your own "
            "loop, compute the outputs yourself and call monitor.end_epoch(outputs=..., "
            "targets=..., loss_fn=...) instead of monitor.evaluate.")


def scalar_loss(loss: torch.Tensor, step: int) -> torch.Tensor:
    """The loss, when it is one number; raise otherwise (a per-sample loss cannot be
    backpropagated as it is, and its mean may not be what the user trains on)."""
    if loss.numel() != 1:
        raise TrainwiseError(_not_one_number(loss, step))
    return loss


def _not_one_number(loss: torch.Tensor, step: int) -> str:
    return (f"loss_fn returned a tensor of shape {tuple(loss.shape)} at step {step}; it must "
            "return one number (use reduction='mean').")


def _first_float(x: Any) -> torch.Tensor | None:
    """The first floating-point tensor of inputs: a tensor, or a tuple, list or dict of them."""
    if torch.is_tensor(x):
        return x if x.is_floating_point() else None
    items = x.values() if isinstance(x, dict) else x if isinstance(x, (tuple, list)) else ()
    return next((t for t in map(_first_float, items) if t is not None), None)


def input_dtype_finding(model: nn.Module, x: Any, failure: Exception | None = None
                        ) -> Finding | None:
    """check's inputs_wrong_dtype error when the inputs' floating dtype is not the model's;
    given the failure, also for integer inputs that torch names in a dtype error."""
    from trainwise.checks.data_checks import input_dtype_findings  # check's own message;
    # imported when a step failed: the checks package imports much of train/ itself

    first = _first_float(x)
    found = input_dtype_findings(model, first) if first is not None else []
    if not found and failure is not None:
        return integer_input_finding(model, x, failure)
    return found[0] if found else None


# torch's names of an integer dtype in a dtype clash: "mat1 and mat2 must have the same dtype,
# but got Long and Float" (Linear), "Input type (long int) and bias type (float) should be the
# same" (Conv); torch 2.14's wording for int64, int32, int16, int8 and uint8
_INTEGER_NAMES = {torch.int64: ("Long", "long int"), torch.int32: ("Int", "int"),
                  torch.int16: ("Short", "short int"), torch.int8: ("Char", "signed char"),
                  torch.uint8: ("Byte", "unsigned char")}


def _names_integer(failure: Exception, dtype: torch.dtype) -> bool:
    """Whether torch's message names this integer dtype ("got Long and Float"): a clash of
    the model's own (Float and Double, deeper in) is not the inputs' (review s16 VF2)."""
    names = _INTEGER_NAMES.get(dtype, ())
    return any(re.search(rf"(?<![\w.]){name}(?!\w)", str(failure)) for name in names)


def _first_layer_takes_integers(model: nn.Module) -> bool:
    """The first module with weights (in registration order) takes integer ids: an
    nn.Embedding's inputs are meant to stay integer, whatever fails after it."""
    first = next((m for m in model.modules()
                  if next(m.parameters(recurse=False), None) is not None), None)
    return isinstance(first, (nn.Embedding, nn.EmbeddingBag))


def integer_input_finding(model: nn.Module, x: Any, failure: Exception) -> Finding | None:
    """inputs_wrong_dtype for integer inputs (int64 features from pandas or numpy) to a
    float model whose forward failed on their dtype (audit s16 N5): torch's message names the
    inputs' integer dtype and the first layer is not an nn.Embedding. Token ids whose model
    fails for another reason are left to torch's own error."""
    leaves = [x] if torch.is_tensor(x) else list(x.values()) if isinstance(x, dict) else \
        list(x) if isinstance(x, (tuple, list)) else []
    ints = [t for t in leaves if torch.is_tensor(t) and not t.is_floating_point()
            and t.dtype is not torch.bool]
    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    if not ints or param is None or not _names_integer(failure, ints[0].dtype) \
            or _first_layer_takes_integers(model):
        return None
    return error("check", "inputs_wrong_dtype",
                 f"inputs are {ints[0].dtype} but the model's weights are {param.dtype}: a "
                 "layer such as nn.Linear or nn.Conv multiplies floats.",
                 f"give float inputs: x.to({param.dtype}) (or x.float()) in the Dataset or "
                 "collate_fn; integer token ids go to an nn.Embedding as the model's first "
                 "layer instead.", input_dtype=str(ints[0].dtype), model_dtype=str(param.dtype))


def dtype_error(failure: Exception, finding: Finding) -> Exception:
    """A TrainwiseError with check's message, torch's own first line quoted ("mat1 and mat2
    must have the same dtype" alone does not say which to change)."""
    said = str(failure).strip().splitlines()[0][:200] if str(failure).strip() else ""
    return TrainwiseError(f"The forward pass failed ({type(failure).__name__}: {said}): "
                          f"{finding.message} Fix: {finding.fix}")


Explain = Callable[[Exception, Finding], Exception]  # (torch's error, check's) -> raised


def forward_or_explain(model: nn.Module, x: Any, forward: Callable[[Any], Any] | None = None,
                       explain: Explain = dtype_error) -> Any:
    """forward(x) (model(x) by default). A RuntimeError that the inputs' dtype explains is
    raised as explain_dtype's error: evaluation and shape_trace raise dtype_error, the probes
    (batch size, range test) a ProbeStop; fit's steps say it through raise_step_error. Checked
    on failure only, so a working forward pays nothing (Python 3.11's zero-cost try), and a
    dtype that Fabric's precision converts (bf16-true) is never blamed unless the forward
    failed."""
    try:
        return (forward or model)(x)
    except RuntimeError as failure:
        explained = explain_dtype(model, x, failure, explain)
        if explained is None:
            raise
        raise explained from failure


def explain_dtype(model: nn.Module, x: Any, failure: Exception,
                  explain: Explain = dtype_error) -> Exception | None:
    """explain(failure, check's inputs_wrong_dtype finding) for a RuntimeError that the
    inputs' dtype explains; None for any other failure. shape_trace calls it on the failure
    torchinfo caught, whose forward ran outside forward_or_explain."""
    if not isinstance(failure, RuntimeError):
        return None
    finding = input_dtype_finding(model, x, failure)
    return None if finding is None else explain(failure, finding)


def raise_step_error(failure: Exception, model: nn.Module, x: Any, loss: Any, step: int,
                     y: Any = None, width: int | None = None, ignore_index: int = -100) -> None:
    """After a training step raised `failure`: the error find_lr and check give for a loss
    that is not one number (autograd only says "grad can be implicitly created only for
    scalar outputs"), inputs of another dtype than the model, or labels beyond the output
    `width` fit read on its first validation batch. Run on failure only: the step itself pays
    nothing. Any other failure returns, for the caller to re-raise as it is."""
    if torch.is_tensor(loss) and loss.numel() != 1:
        raise TrainwiseError(_not_one_number(loss, step)) from failure
    finding = input_dtype_finding(model, x, failure)
    if finding is not None:
        raise dtype_error(failure, finding) from failure
    finding = _labels_beyond(failure, y, width, ignore_index)
    if finding is not None:
        said = str(failure).strip()[:120]
        raise TrainwiseError(
            f"[{finding.code}] training step {step} failed ({type(failure).__name__}: {said}): "
            f"this batch's {finding.message[0].lower()}{finding.message[1:]} The validation "
            f"batch fit checked held none of them. Fix: {finding.fix}") from failure


# torch's cross-entropy / NLL on a class index beyond the logits: "Target 5 is out of bounds."
_TARGET_OUT = re.compile(r"Target (-?\d+) is out of bounds")


def _labels_beyond(failure: Exception, y: Any, width: int | None,
                   ignore_index: int) -> Finding | None:
    """check's labels_out_of_range when torch's IndexError names a target that the output
    width really lacks (audit s16 N5); None for any other IndexError, a user's own indexing
    bug included (review s16 VF1)."""
    from trainwise.train.first_batch import labels_beyond_width  # first_batch imports
    # evaluate, which imports this module

    named = _TARGET_OUT.match(str(failure)) if isinstance(failure, IndexError) else None
    if named is None or width is None or not torch.is_tensor(y) or y.is_floating_point() \
            or 0 <= int(named.group(1)) < width:
        return None
    return labels_beyond_width(y, width, ignore_index)
