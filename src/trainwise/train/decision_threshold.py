"""The decision threshold a two-class run picked on validation, as data the run folder keeps.

The argmax answers the rare class only when its probability passes 0.5; on 5% positives a
model that ranks them well may never get there (user audit s12 S2: every one of 100,000 rows
answered '0'). The run picks the F1-best threshold on the validation split each epoch
(ranking.best_f1_threshold); this module turns the best epoch's into meta.json's
"decision_threshold", scores the test rows once at it (legitimate: it was picked on
validation only, never on test) and applies it to new rows (trainwise.predict).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from trainwise.train.class_names import class_name

META_KEY = "decision_threshold"
# the test row's keys for the scores at the threshold, beside the argmax's test_* numbers
AT_THRESHOLD_KEYS = ("test_threshold", "test_threshold_precision", "test_threshold_recall",
                     "test_threshold_f1", "test_threshold_balanced_accuracy")


def threshold_record(picked: dict[str, Any] | None, names: list[str]) -> dict[str, Any] | None:
    """meta.json's "decision_threshold" from ranking_verdict.validation_threshold's dict:
    predict class `positive_class` when its probability is >= `threshold`, else the other."""
    if picked is None or len(names) != 2:
        return None
    return {"positive_class": class_name(names, picked["class"]),
            "positive_index": int(picked["class"]), "threshold": float(picked["threshold"]),
            "picked_on": "validation", "metric": "F1",
            "validation": {**{k: float(picked[k]) for k in ("f1", "precision", "recall")},
                           **({"positives": int(picked["positives"])}
                              if "positives" in picked else {})}}


# As part_findings.MIN_SCORED_ROWS for a part: under 30 rows of the class a threshold rests
# on, one row moves its recall by over 3 points (9 rows: 11 points) and the F1-best cut
# follows a row or two (audit s13 F11: picked on 9 positives, recall 22% = 2 rows)
MIN_THRESHOLD_POSITIVES = 30
# Under this many validation rows of the class, no threshold is kept at all: the F1-best cut
# on 1 positive is that row's own probability (audit s14 C6: picked at 0.29 on 1 row, "F1
# 1.00 on validation", then recall 0 on the 2 test positives), and 5 is where one row moves
# recall by 20 points, the least a cut can be read at
MIN_PICK_POSITIVES = 5
# what to do when a threshold rests on too few validation rows of its class
MORE_VALIDATION_ROWS = ("hold out more validation rows (split.val_fraction) or cross-validate "
                        "(split.num_folds = 5)")


def kept(positives: int | None) -> bool:
    """Whether a threshold picked on `positives` validation rows of its class is kept: from
    MIN_PICK_POSITIVES on, or when the count was not recorded (a run from before it was)."""
    return positives is None or positives >= MIN_PICK_POSITIVES


def rows_under(positives: int, floor: int, of: str = "that class") -> str:
    """'1 validation row of that class, under 5': the one phrase for a threshold's too few
    rows, whichever floor (MIN_PICK_POSITIVES, MIN_THRESHOLD_POSITIVES) it is under."""
    return (f"{positives} validation row{'s' if positives != 1 else ''} of {of}, under "
            f"{floor}")


def not_kept(positives: int, positive_class: str) -> str:
    """meta.json's why no threshold was kept: 'picked on 1 validation row of class 'Fraud ✓',
    under 5: ...'."""
    of = f"class '{positive_class}'"
    return (f"picked on {rows_under(positives, MIN_PICK_POSITIVES, of)}: the F1-best cut then "
            "is a row's own probability, not a rule")


def positives_caution(positives: int | None) -> str:
    """'; it rests on 9 validation rows of that class, under 30: ...' with what to set, or ''
    from MIN_THRESHOLD_POSITIVES on (or when the count was not recorded)."""
    if positives is None or positives >= MIN_THRESHOLD_POSITIVES:
        return ""
    return (f"; it rests on {rows_under(positives, MIN_THRESHOLD_POSITIVES)}: one row more or "
            f"less moves its recall by {100 / max(positives, 1):.0f} points, so "
            f"{MORE_VALIDATION_ROWS} before relying on it")


def apply_threshold(probs: np.ndarray, record: dict[str, Any]) -> np.ndarray:
    """(N,) class indices: the positive class where P(positive) >= threshold, else the other
    (two classes: index 1 - positive)."""
    positive = int(record["positive_index"])
    hit = np.asarray(probs)[:, positive] >= record["threshold"]
    return np.where(hit, positive, 1 - positive)


def scores_at_threshold(probs: np.ndarray, targets: np.ndarray,
                        record: dict[str, Any]) -> dict[str, float]:
    """Precision, recall and F1 of the positive class and the balanced accuracy on the rows
    when the threshold decides; 0 precision when no row passes it (sklearn's zero_division)."""
    y = np.asarray(targets).reshape(-1).astype(np.int64)
    keep = (y >= 0) & (y < 2)  # an ignore_index (-100) is left out, as by the loss
    y, predicted = y[keep], apply_threshold(np.asarray(probs)[keep], record)
    positive = int(record["positive_index"])
    true_pos = int(((predicted == positive) & (y == positive)).sum())
    said, actual = int((predicted == positive).sum()), int((y == positive).sum())
    negatives = int((y != positive).sum())
    precision = true_pos / said if said else 0.0
    recall = true_pos / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    true_neg = int(((predicted != positive) & (y != positive)).sum())
    specificity = true_neg / negatives if negatives else 0.0
    return dict(zip(AT_THRESHOLD_KEYS, (record["threshold"], precision, recall, f1,
                                        (recall + specificity) / 2), strict=True))


THRESHOLD_GAIN = 0.05  # test balanced accuracy the threshold must add over the argmax before
# predict's note and the verdict recommend it: a balanced binary run's threshold scores within
# a point or two of the argmax (t3: 0.812 at the threshold vs 0.843 argmax, where "apply it"
# was wrong advice); a missed rare class moves it by far more (0.5 -> 0.79 on 8% positives)


def threshold_recommended(test: dict[str, Any]) -> bool:
    """The one rule for recommending the threshold (predict's stderr note, the verdict): the
    test rows, scored once at the validation-picked threshold, gain >= THRESHOLD_GAIN of
    balanced accuracy over the argmax. Balanced accuracy, not F1: it is the score a missed
    class drags to 0.5, the failure the threshold exists to mend, and the F1 the threshold
    was picked for would always favour it."""
    return ("test_threshold_balanced_accuracy" in test
            and test["test_threshold_balanced_accuracy"]
            - test.get("test_balanced_accuracy", 0.0) >= THRESHOLD_GAIN)


def advised_threshold(picked: dict[str, Any] | None, row: dict[str, Any]
                      ) -> dict[str, Any] | None:
    """The validation threshold for the verdict's advice, with `unreliable` (why not to use
    it) when it rests on under MIN_PICK_POSITIVES rows or the test rows scored at it are not
    THRESHOLD_GAIN of balanced accuracy above the argmax (threshold_recommended): then the
    advice leads with more validation rows or cross-validation, not with the threshold (audit
    s14 C6)."""
    if picked is None:
        return None
    positives = picked.get("positives")
    if not kept(positives):
        return {**picked, "unreliable": f"it rests on "
                f"{rows_under(positives, MIN_PICK_POSITIVES)}, so the run kept none"}
    at, argmax = row.get("test_threshold_balanced_accuracy"), row.get("test_balanced_accuracy")
    if at is None or argmax is None or threshold_recommended(row):
        return picked
    # threshold_recommended, the one rule predict's note and the verdict follow (review s14
    # VE2: a 3-point gain was advised here while neither of them recommended it)
    how = "did no better than the argmax" if at <= argmax else \
        f"added under {THRESHOLD_GAIN:.0%} of balanced accuracy to the argmax's"
    return {**picked, "unreliable": f"on the test rows it {how} (balanced accuracy {at:.1%} "
            f"against {argmax:.1%}, recall {row['test_threshold_recall']:.0%})"}


def threshold_text(row: dict[str, Any], record: dict[str, Any] | None,
                   brief: bool = False) -> str:
    """'at the decision threshold picked on validation, P('1') >= 0.268: precision 38%,
    recall 45%, F1 0.42, balanced accuracy 70.6% (...)', or '' when the run has none; the
    evaluate finding's and the verdict's one wording, the verdict's `brief` on few rows (a
    one-line verdict of 1,095 characters buried its own headline)."""
    if record is None or "test_threshold_f1" not in row:
        return ""
    positives = (record.get("validation") or {}).get("positives")
    rows = "" if positives is None else \
        f" ({positives} rows of class '{record['positive_class']}')"
    return (f"at the decision threshold picked on validation{rows}, "
            f"P('{record['positive_class']}') >= {record['threshold']:.3g}: precision "
            f"{row['test_threshold_precision']:.0%}, recall {row['test_threshold_recall']:.0%}, "
            f"F1 {row['test_threshold_f1']:.2f}, balanced accuracy "
            f"{row['test_threshold_balanced_accuracy']:.1%} (trainwise predict --threshold "
            f"best applies it{_shaky(positives) if brief else positives_caution(positives)})")


def _shaky(positives: int | None) -> str:
    """positives_caution's short form; the test_result finding carries the whole advice."""
    if positives is None or positives >= MIN_THRESHOLD_POSITIVES:
        return ""
    return f"; shaky on {positives} rows, under {MIN_THRESHOLD_POSITIVES}: see the findings"


def on_corrected_scale(record: dict[str, Any], counts: np.ndarray) -> dict[str, Any]:
    """The record with its threshold moved to the prior-corrected probabilities' scale. Two
    classes: p' = p n_pos / (p n_pos + (1 - p) n_neg) rises with p, so p >= t exactly when
    p' >= t' = t n_pos / (t n_pos + (1 - t) n_neg): the same rows pass, and a written
    probability_<positive> >= t' says which. But for a row at t itself (the validation row
    that set it): float32 softmax rows sum to 1 +- 3e-8, which the correction's renormalising
    reads, so that row may land a hair on either side of t' (1 of 37 on review s12's pc run);
    the written probability decides, so the CSV always agrees with itself."""
    positive, t = int(record["positive_index"]), float(record["threshold"])
    n_pos, n_neg = float(counts[positive]), float(counts[1 - positive])
    return {**record, "threshold": t * n_pos / (t * n_pos + (1 - t) * n_neg),
            "scale": "prior_corrected"}


def run_threshold(folder: Path, names: list[str], meta: dict[str, Any] | None = None
                  ) -> dict[str, Any] | None:
    """A finished run's threshold: meta.json's (`meta`, when the caller read it), else (a run
    from before meta.json kept it) the best epoch's validation pick in history.jsonl, the one
    the evaluate stage read. None without two classes, before history.jsonl is parsed."""
    from trainwise.rundir import read_history, read_meta
    from trainwise.train.ranking_verdict import validation_threshold

    if len(names) != 2:
        return None
    record = (read_meta(folder) if meta is None else meta).get(META_KEY)
    if isinstance(record, dict):  # threshold None: not kept, and `not_kept` says why
        return record if record.get("threshold") is not None else None
    return threshold_record(validation_threshold(read_history(folder)), names)
