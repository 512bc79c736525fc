"""Class weights for imbalanced classification (train.class_weights = "balanced").

Each class weighs n / (k * n_c) on the training split (scikit-learn's "balanced"), so the k
present classes contribute equally to the loss however rare they are.

The loss is torch's CrossEntropyLoss(weight=...): the weighted terms divided by the batch's sum
of weights, a weighted average of per-row cross-entropies. Its scale does not depend on how many
rare rows a batch holds: log C at initialisation in every batch (the preflight check's
expectation), and a range-test curve as smooth as unweighted while the weights stay within
MAX_WEIGHT_RATIO of each other (beyond, a few rows steer their batches: extreme_weights). A
plain mean of weighted terms (Keras' class_weight) added up exactly over micro-batches and
processes, but on data with 4% positives (weight ~11) each batch's loss scaled with its count
of positives (first range-test losses 0.43-1.06 against 0.72-0.73 unweighted), and the range
test then read noise: seeds 2.6-6 decades apart. Micro-batches (train.accumulate_grad_batches)
and DDP processes now each divide by their own sum of weights, which differs from the whole
batch's only by how the rare rows fall.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from trainwise.findings import Finding, warning
from trainwise.train.decision_threshold import MIN_PICK_POSITIVES, MORE_VALIDATION_ROWS

# The largest balanced weight over the smallest is the largest class's row count over the
# rarest's. At 49x (2% positives, 80 training rows, weight 25) the range test stayed as smooth
# as unweighted; at 154x (classes of 7 and 9 training rows, weights 51 and 40) and 405x (a class
# of 2 rows, weight 135) a rare row steered every batch it landed in: gradient spikes in
# training, and a range test whose loss did not clearly fall, which then picked a 7x lower lr
# (audit s9 I8). The weights are kept as set, not capped: "balanced" keeps scikit-learn's
# meaning, and no cap makes a class of a few rows learnable; the warning says what does.
MAX_WEIGHT_RATIO = 50.0


def balanced_class_weights(train_targets: np.ndarray, num_classes: int) -> torch.Tensor:
    """(C,) float32: n / (k * n_c) for the k classes present in the training split; 0 for a
    class with no training row (no row can carry it there)."""
    counts = np.bincount(np.asarray(train_targets, dtype=np.int64), minlength=num_classes)
    present = counts > 0
    weights = np.zeros(num_classes, dtype=np.float64)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return torch.tensor(weights, dtype=torch.float32)


class ClassWeightedCrossEntropy(nn.Module):
    """sum_i w[y_i] * CE(logits_i, y_i) / sum_i w[y_i] on logits (B, C) and labels (B,)."""

    def __init__(self, weights: torch.Tensor):
        super().__init__()
        self.register_buffer("weights", weights.float())
        self._copies: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(output, target, weight=self._weights_for(output))

    def _weights_for(self, output: torch.Tensor) -> torch.Tensor:
        """The weights on the outputs' device and dtype, copied once (a host-to-device copy
        each step would sync an accelerator; evaluation gathers outputs on the host)."""
        key = (output.device, output.dtype)
        if key not in self._copies:
            self._copies[key] = self.weights.to(output.device, output.dtype)
        return self._copies[key]


@dataclass(frozen=True)
class ExtremeWeights:
    """The classes weighing more than MAX_WEIGHT_RATIO times the lightest one."""

    heavy: list[tuple[str, float, int]]  # (class, weight, training rows), heaviest first
    lightest: tuple[str, float]
    ratio: float  # heaviest / lightest
    num_classes: int = 0  # present in training; 2: the heavy class is the task itself
    train_rows: int = 0  # the training split's: no batch holds more (0: not known)
    batch_size: int = 0  # train.batch_size in use (0: not known)

    @property
    def batch_for_two(self) -> int:
        """A train.batch_size (a power of 2, else the bare need when that power exceeds the
        training rows) whose batches hold ~2 rows of the heaviest class on average: its share
        of the rows is 1 / (k * weight), so B >= 2 k weight. One rare row in a batch of 16 at
        1% positives is a 100x weight alone in its batch. 0: no batch holds 2 (final review
        s14 VF1: 3 of 200 rows were told no batch size helps, where 134 does)."""
        need = int(np.ceil(2 * max(self.num_classes, 2) * self.heavy[0][1] - 1e-9))
        power = int(2 ** np.ceil(np.log2(max(need, 2))))
        if not self.train_rows or power <= self.train_rows:
            return power
        # the power of two overshoots the rows (3 of 200: need 134, power 256): the need
        # itself still fits; 0 when even the whole split holds fewer than 2 (one rare row)
        return need if need <= self.train_rows else 0

    def batch_clause(self) -> str:
        """' and raise train.batch_size to 256 or more, so each batch holds about 2 'fraud'
        rows'; '' when train.batch_size already does; the rows' shortage when batch_for_two
        reaches the training rows (review s14 VE3: 148 + 2 rows were told to raise it to 256,
        and a run at 512 to "raise" it to 256)."""
        name, _, rows = self.heavy[0]
        if self.train_rows and not self.batch_for_two:
            return (f"; its {rows} row{'s' * (rows != 1)} among the {self.train_rows} training "
                    "rows are too few for batches that each hold 2 of them, so no "
                    "train.batch_size helps")
        if self.batch_size >= self.batch_for_two:
            return ""
        return (f" and raise train.batch_size to {self.batch_for_two} or more, so each batch "
                f"holds about 2 '{name}' rows")

    def listed(self, limit: int = 3) -> str:
        """"'rare2' weighs 135 (2 training rows)", the heaviest `limit` classes."""
        words = [f"'{name}' weighs {weight:.3g} ({rows} training row{'s' * (rows != 1)})"
                 for name, weight, rows in self.heavy[:limit]]
        more = f" and {len(self.heavy) - limit} more" if len(self.heavy) > limit else ""
        return ", ".join(words) + more

    def blame(self, finding: Finding) -> Finding:
        """`finding` (a spike, an exploding loss, a range test that did not fall) with the
        weights named as a likely cause, before the data or the lr its fix names."""
        name, weight, rows = self.heavy[0]
        note = (f" The class weights are extreme: '{name}' weighs {weight:.3g}, "
                f"{self.ratio:.0f}x the lightest class, with {rows} training "
                f"row{'s' * (rows != 1)}; a batch holding such a row is steered by it, a likely "
                "cause.")
        first = ("First act on the model stage's class_weights_extreme warning (merge, drop or "
                 "collect rows of the heavy classes, or train.class_weights = \"none\"). Then: ")
        if self.num_classes == 2:  # the rare class is the task: the weights may be what works
            first = ("If the weighted run beats an unweighted one on balanced accuracy, keep "
                     f"the weights{self.batch_clause()} (the model stage's "
                     "class_weights_extreme warning). Otherwise: ")
        return replace(finding, message=finding.message + note, fix=first + finding.fix,
                       evidence={**finding.evidence, "class_weight_ratio": round(self.ratio, 3)})


def extreme_weights(weights: torch.Tensor, train_targets: np.ndarray,
                    class_names: list[str], batch_size: int = 0) -> ExtremeWeights | None:
    """The classes whose weight exceeds MAX_WEIGHT_RATIO x the lightest present class's
    (`batch_size`: train.batch_size in use, for the advice to raise it)."""
    values = weights.detach().cpu().double().numpy()
    present = np.flatnonzero(values > 0)
    if not len(present):
        return None
    light = present[np.argmin(values[present])]
    heavy = [k for k in present if values[k] > MAX_WEIGHT_RATIO * values[light]]
    if not heavy:
        return None
    counts = np.bincount(np.asarray(train_targets, dtype=np.int64), minlength=len(values))
    names = class_names or [str(k) for k in range(len(values))]
    heavy.sort(key=lambda k: -values[k])
    return ExtremeWeights([(names[k], float(values[k]), int(counts[k])) for k in heavy],
                          (names[light], float(values[light])),
                          float(values[heavy[0]] / values[light]), len(present),
                          int(counts.sum()), batch_size)


def extreme_weights_finding(extreme: ExtremeWeights) -> Finding:
    """The class_weights_extreme warning. Two classes: the rare class is the task, so neither
    merging nor dropping it, and the weights may be what makes it learnable (audit s14 C7: 1%
    positives, balanced accuracy 92.6% weighted against 50.0% unweighted); the fix is batches
    that hold its rows, and the decision threshold."""
    name, weight = extreme.lightest
    return warning(
        "model", "class_weights_extreme",
        f"Class weights span {extreme.ratio:.0f}x (train.class_weights = \"balanced\"): "
        f"{extreme.listed()}, against {weight:.3g} for '{name}'. Weighted beyond "
        f"{MAX_WEIGHT_RATIO:.0f}x, a rare row steers the whole batch it lands in, so the loss "
        "jumps from batch to batch: expect gradient spikes in training and a noisy lr range "
        "test that picks a low lr. The weights are kept as set (scikit-learn's \"balanced\").",
        _extreme_fix(extreme), ratio=round(extreme.ratio, 3),
        heavy={name: {"weight": round(w, 6), "train_rows": rows}
               for name, w, rows in extreme.heavy})


def _extreme_fix(extreme: ExtremeWeights) -> str:
    """Merge or drop the heavy classes where there are others to merge into; for two classes,
    larger batches and the threshold, keeping the weights."""
    if extreme.num_classes == 2:
        rare = extreme.heavy[0][0]
        # review s14 VE3: at > 50x (< 1.96% positives) a default split's validation part holds
        # under MIN_PICK_POSITIVES of them below ~3,200 rows, and then no threshold is kept
        return (f"Keep the weights if the run learns '{rare}' (compare balanced accuracy and "
                f"ROC-AUC with an unweighted run: unweighted, an argmax on so few '{rare}' rows "
                f"usually never answers it){extreme.batch_clause()}; collect more rows of it "
                "if you can (data stage). Unweighted, use the decision threshold the run picks "
                "on validation (trainwise predict --threshold best) instead of the argmax: the "
                f"run keeps one only when its validation part holds {MIN_PICK_POSITIVES} or "
                f"more '{rare}' rows; with fewer, {MORE_VALIDATION_ROWS}.")
    return ("Collect more rows of these classes, or merge each into a related class or drop it "
            "(data stage); or train with train.class_weights = \"none\" and judge the rare "
            "classes by per-class recall and balanced accuracy. Then rerun from the data (or "
            "model) stage.")
