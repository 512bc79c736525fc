"""Look at the data before training: balance, missing values, constants, duplicates, conflicts."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from trainwise.data.duplicates import duplicate_findings, key_clash_findings
from trainwise.data.extremes import extreme_value_findings
from trainwise.data.image_checks import image_findings
from trainwise.data.in_memory import as_task_data
from trainwise.data.label_leak import leak_findings
from trainwise.data.missing import TOP_K, missing_warning
from trainwise.data.task import TaskData
from trainwise.data.token_stats import token_findings
from trainwise.findings import Finding, Severity, error, explained, info, warning

IMBALANCE_RATIO = 0.2  # smallest / largest class below this: accuracy hides the rare classes
OUTLIER_IQRS = 10.0  # a regression target this many interquartile ranges from its median is
# extreme: Tukey's "far out" fence is 3 IQRs past the quartiles; 10 from the median leaves a
# normal target alone (P < 1e-20) and still flags a value typed in the wrong unit (x1000),
# which scaled by the target's std squeezes every other target to near one value


def _rows(n: int) -> str:
    return f"{n} row{'s' * (n != 1)}"


def _imbalance_fix(class_weights: str) -> str:
    """The fix, aware of train.class_weights: advising "balanced" when it is already set told
    the user nothing (audit s9 I11)."""
    judge = ("Keep the split stratified; judge the model by balanced accuracy, per-class recall "
             "and the confusion matrix (the report's Test result), not accuracy alone; ")
    if class_weights == "balanced":
        return judge + ("train.class_weights = \"balanced\" is already set, so the rare "
                        "classes weigh as much as the large ones in the loss, but they still "
                        "hold few rows: collect more rare-class rows, or merge a rare class "
                        "into a related one (data stage).")
    return judge + ("consider train.class_weights = \"balanced\" or collecting more "
                    "rare-class rows.")


def class_findings(y: np.ndarray, class_names: list[str], class_weights: str = "none",
                   min_class_rows: int | None = None,
                   target: str = "") -> tuple[list[Finding], list[int]]:
    """Class counts and, below IMBALANCE_RATIO, a warning whose fix knows train.class_weights;
    a warning for classes too small to sit in every part (`min_class_rows`: from the split in
    use, class_rows_needed; MIN_CLASS_ROWS at the default fractions); an error for a target
    with about as many classes as rows (`target`: its column, for the message)."""
    counts = np.bincount(y.astype(np.int64), minlength=len(class_names)).tolist()
    names = class_names + [str(i) for i in range(len(class_names), len(counts))]
    too_many = _classes_like_rows(counts, target, min_class_rows or MIN_CLASS_ROWS)
    if too_many:
        return too_many, counts
    found = _balance_findings(dict(zip(names, counts, strict=True)), len(y), class_weights)
    if found[0].severity.value == "error":
        return found, counts
    single_named = found[0].code == "class_imbalance"  # it names the 1-row classes already
    return found + _few_row_classes(dict(zip(names, counts, strict=True)), single_named,
                                    min_class_rows or MIN_CLASS_ROWS), counts


def class_rows_needed(val_fraction: float = 0.1, test_fraction: float = 0.2,
                      num_folds: int = 1, own_test: bool = False) -> int:
    """Rows a class needs to expect one row in the smallest scored part of the split in use
    (review s11 VD12): validation takes val_fraction (1 / num_folds under cross-validation)
    of what the carved test part leaves, test takes test_fraction. Defaults: 0.1 * 0.8 = 0.08
    of the rows, so 13; a source's own test part leaves validation alone (0.1: 10)."""
    val_share = 1 / num_folds if num_folds > 1 else val_fraction
    shares = [val_share] if own_test else [val_share * (1 - test_fraction), test_fraction]
    return math.ceil(1 / min(shares) - 1e-9)  # 1 / 0.08 = 12.5 -> 13; 1 / 0.1 = 10 stays 10


MIN_CLASS_ROWS = class_rows_needed()  # 13: below it a class expects < 1 validation row at the
# default fractions (0.7 / 0.1 / 0.2); a 2-row class ended with 2 train rows, none validated
# or tested (audit s11 M13); 12 classes of 7 rows got no warning, then half had no
# validation row (review s11 VD12)


# Fewer rows than this per class on average (over the classes present) in the train/val pool
# is a target that is not a class label: at the default split (0.7 of the rows train) it
# leaves under 2 training rows a class, and no class both trained on and validated. 15,000
# classes of 2 rows (an id-like column named as the target) trained for 69 s, then ran out
# of memory in evaluate on 30,000 x 15,000 probabilities (audit s16 S9). The demo sets hold
# 50+ rows a class; a few-shot set (5 a class) passes.
MIN_MEAN_CLASS_ROWS = 3


def _classes_like_rows(counts: list[int], target: str, min_rows: int) -> list[Finding]:
    """An error when the classes present average under MIN_MEAN_CLASS_ROWS rows each."""
    present = [c for c in counts if c > 0]
    num_rows = sum(present)
    if len(present) < 2 or num_rows >= MIN_MEAN_CLASS_ROWS * len(present):
        return []
    column, it = (f"column '{target}'", f"'{target}'") if target else ("(data.target)", "it")
    singles, mean = sum(1 for c in present if c == 1), num_rows / len(present)
    return [error(
        "data", "classes_like_rows",
        f"The target {column} has {len(present)} classes among {num_rows} rows ({mean:.2g} "
        f"rows per class on average{f', {singles} with a single row' if singles else ''}): "
        "a class cannot be learned from one or two rows, nor validated and tested on them, "
        f"and the model would output {len(present)} probabilities per row. Is {it} an identifier "
        "(a row id, a name, a code) or a number to regress?",
        "If it is an identifier, name the column to predict: --set data.target=COLUMN (and "
        "list the identifier in data.drop_columns if it is kept as a feature); if it is a "
        "quantity, --set data.task=regression; if the classes are real, collect at least "
        f"{min_rows} rows of each, or merge them into fewer classes (data stage).",
        num_classes=len(present), num_rows=num_rows, single_row_classes=singles,
        mean_class_rows=round(mean, 3))]


def _few_row_classes(by_name: dict[str, int], single_named: bool,
                     min_rows: int) -> list[Finding]:
    few = {name: n for name, n in by_name.items()
           if 0 < n < min_rows and (n > 1 or not single_named)}
    if not few:
        return []
    listed = ", ".join(f"'{name}' ({_rows(n)})" for name, n in list(few.items())[:TOP_K])
    more = f" (and {len(few) - TOP_K} more)" if len(few) > TOP_K else ""
    return [warning(
        "data", "few_rows_in_class",
        f"Some classes have fewer than {min_rows} rows: {listed}{more}. A class needs "
        f"{min_rows} rows to expect one row in the smallest scored part of this split "
        "(split.val_fraction or num_folds, and test_fraction); these will be trained on but "
        "hardly or never validated or tested, so their scores are missing or rest on one row.",
        f"Collect more rows of these classes ({min_rows} or more each), or merge each "
        "into a related class or drop it (data stage); otherwise read their per-class scores "
        "as anecdotes.", classes=few, min_rows=min_rows)]


def _balance_findings(by_name: dict[str, int], num_rows: int,
                      class_weights: str) -> list[Finding]:
    names, counts = list(by_name), list(by_name.values())
    present = [c for c in counts if c > 0]
    if len(present) < 2:
        return [error("data", "single_class",
                      f"only {len(present)} class occurs among {num_rows} rows: nothing to tell "
                      "apart.", "Check the target column (data.target) and any row filter; "
                      "classification needs at least two classes.", class_counts=by_name)]
    ratio = min(present) / max(present)
    if ratio >= IMBALANCE_RATIO:
        return [info("data", "class_balance",
                     f"classes are balanced enough: smallest/largest = {ratio:.2f}.",
                     class_counts=by_name, ratio=round(ratio, 4))]
    smallest, largest = names[counts.index(min(present))], names[counts.index(max(present))]
    # "1 rows, 0.00 x the 899" read as nothing: say how many times fewer (>= 5 here)
    message = (f"class '{smallest}' has {_rows(min(present))}, {1 / ratio:.3g}x fewer than "
               f"the {max(present)} of class '{largest}': accuracy will mostly reflect the "
               "large classes.")
    single = [name for name, count in by_name.items() if count == 1]
    if single:
        listed = ", ".join(f"'{name}'" for name in single[:TOP_K])
        message += (f" {listed} {'has' if len(single) == 1 else 'have'} a single row: it can "
                    "be trained on or scored, never both (a stratified split keeps it in train).")
    return [warning("data", "class_imbalance", message, _imbalance_fix(class_weights),
                    class_counts=by_name, ratio=round(ratio, 4))]


CLASS_SIZE_CODES = ("class_imbalance", "few_rows_in_class")


def held_back_for_task(found: list[Finding], loaded: list[Finding]) -> list[Finding]:
    """The class-size warnings as notes while the loader's task_inferred doubts that the
    target's whole numbers are classes: a count (claims 0..11, falling off) read as 12
    classes had its tail called rare classes to weight or collect, advice for a
    classification the audit itself doubted (audit s14 R12). Settling the task comes first."""
    if not any(f.code == "task_inferred" and f.evidence.get("task") == "classification"
               for f in loaded):
        return found
    note = ("(A note, not a warning, while the task is in doubt: task_inferred says these "
            "whole numbers may be counts, which as a regression have no classes to balance.)")
    fix = ("Settle the task first (see task_inferred): counts -> --set data.task=regression, "
           "and this goes away; classes -> --set data.task=classification, and then: ")
    return [explained(f, note, fix + f.fix[:1].lower() + f.fix[1:])
            if f.code in CLASS_SIZE_CODES and f.severity is Severity.WARNING else f
            for f in found]


def _missing_findings(x: np.ndarray, names: list[str], text_missing: dict[str, int],
                      table: bool = True) -> tuple[list[Finding], dict[str, int]]:
    """`text_missing`: missing cells per text column (TaskData.text_missing), whose one-hot
    columns have none: their missing cells are a level of their own (audit s12 K9); `table`:
    False for arrays, whose advice is numpy code, not data.drop_columns (review VD12)."""
    missing = np.zeros(x.shape[1], dtype=np.int64) if x.dtype.kind in "biu" else \
        (~np.isfinite(x)).sum(axis=0)  # (D,) NaN or +-inf per feature; integers: none
    counts = {names[i]: int(missing[i]) for i in np.flatnonzero(missing)}
    counts.update({name: n for name, n in text_missing.items() if n})
    if not counts:
        return [], {}
    positions = None if table else {name: i for i, name in enumerate(names)}
    found = missing_warning(counts, len(x), frozenset(text_missing), positions)
    return [found], found.evidence["top_features"]  # the ranking missing_warning made


def _constant_mask(x: np.ndarray) -> np.ndarray:
    """(N, D) -> (D,) bool: features with one value (up to round-off) over every row."""
    if x.dtype.kind in "biu":  # no float64 copy of (N, C*H*W) pixels: they are all finite
        finite = np.ones(x.shape[1], dtype=bool)
        high, low = x.max(axis=0).astype(np.float64), x.min(axis=0).astype(np.float64)
    else:
        finite, high, low = _finite_range(x)
    scale = np.maximum(1.0, np.maximum(np.abs(high), np.abs(low)))
    # near-constant: the spread is float round-off, not signal; all-missing features are
    # reported by the missing-values check instead
    return finite & (high - low <= 1e-6 * scale)


def _finite_range(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """((D,) whether each column holds a finite value, its max and min over finite values).
    A plain max / min first: where both are finite the column holds no NaN or inf, and only
    the other columns are masked; masking all of (1M, 154) float32 (np.isfinite and two
    np.where copies, 1.3 GB) took 0.6-1.2 s, and a table's x is mostly finite."""
    high, low = x.max(axis=0), x.min(axis=0)
    other = np.flatnonzero(~(np.isfinite(high) & np.isfinite(low)))
    finite = np.ones(x.shape[1], dtype=bool)
    if len(other):
        part = x[:, other]
        held = np.isfinite(part)
        finite[other] = held.any(axis=0)
        high[other] = np.where(held, part, -np.inf).max(axis=0)
        low[other] = np.where(held, part, np.inf).min(axis=0)
    return finite, high, low


def _constant_findings(x: np.ndarray, names: list[str]) -> tuple[list[Finding], list[str]]:
    constant = [names[i] for i in np.flatnonzero(_constant_mask(x))]
    if not constant:
        return [], []
    more = " ..." if len(constant) > TOP_K else ""
    return [warning("data", "constant_features",
                    f"{len(constant)} features are constant (or vary only by round-off): "
                    f"{', '.join(constant[:TOP_K])}{more}.",
                    "Drop them: they carry no information (normalisation guards their zero "
                    "spread, so they are harmless but wasted inputs).",
                    num_features=len(constant), features=constant[:TOP_K])], constant


def _constant_pixels(images: np.ndarray) -> tuple[list[Finding], list[str]]:
    """(N, C, H, W): a plain border is normal (MNIST: ~67 of 784 pixels are 0 in every
    image) and a CNN cannot drop pixels, so constant positions are an info, named (c, h, w);
    only a channel (or every pixel) with one value in all images is a warning."""
    num_channels = images.shape[1]
    flat = _constant_mask(images.reshape(len(images), -1)).reshape(images.shape[1:])
    if not flat.any():
        return [], []
    positions = [f"({c}, {h}, {w})" for c, h, w in np.argwhere(flat).tolist()]
    whole = [c for c in range(num_channels) if flat[c].all()]
    evidence = {"num_positions": len(positions), "positions": positions[:TOP_K],
                "constant_channels": whole}
    if whole:
        which = "every pixel" if len(whole) == num_channels else \
            f"channel {', '.join(map(str, whole))} of {num_channels}"
        return [warning(
            "data", "constant_channels",
            f"{which} has one value in all {len(images)} images (e.g. "
            f"{float(images[0, whole[0], 0, 0]):g}): it carries no information.",
            "Check how the images were made or decoded (a blank colour plane, an empty alpha "
            "channel, all-black files); re-save them without it, or ignore this if intended.",
            **evidence)], positions
    more = " ..." if len(positions) > 3 else ""
    return [info("data", "constant_features",
                 f"{len(positions)} of {flat.size} pixel positions (c, h, w) have one value in "
                 f"every image, e.g. {', '.join(positions[:3])}{more}: usually a plain border "
                 "or background, which a CNN learns to ignore.", **evidence)], positions


def extreme_targets(y: np.ndarray) -> np.ndarray:
    """Row positions of regression targets more than OUTLIER_IQRS interquartile ranges from
    the median (none when the IQR is 0); scale-free, so standardised targets give the same."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    q25, q50, q75 = np.percentile(y, [25, 50, 75])
    if not q75 > q25:
        return np.array([], dtype=np.int64)
    return np.flatnonzero(np.abs(y - q50) > OUTLIER_IQRS * (q75 - q25))


def _unusable_target(y: np.ndarray, source: Callable[[np.ndarray], np.ndarray]
                     ) -> list[Finding]:
    """An error for NaN / infinite targets, named by row (audit s14 Z9: "1 targets are NaN or
    infinite" left a user of 100k rows to search), or for one value in every row (Z18: a
    constant target trained on nothing, then crashed in the evaluate stage)."""
    bad = np.flatnonzero(~np.isfinite(y))
    if len(bad):
        rows = [int(r) for r in source(bad[:TOP_K])]
        shown = ", ".join(f"row {r}: {y[i]:g}" for r, i in zip(rows, bad[:TOP_K], strict=True))
        more = f" (and {len(bad) - TOP_K} more)" if len(bad) > TOP_K else ""
        return [error("data", "target_not_finite",
                      f"{len(bad)} target value{'s are' if len(bad) > 1 else ' is'} NaN or "
                      f"infinite: {shown}{more} (rows counted from 0 at the first row under "
                      "the header).",
                      "Drop those rows or fix their target cells (a loss over them is NaN), "
                      "then rerun from the data stage.", num_rows=len(bad), rows=rows)]
    if len(y) and y.min() == y.max():
        return [error("data", "target_constant",
                      f"the regression target is {y[0]:g} in all {len(y)} rows: there is "
                      "nothing to learn, and every score would divide by its variance 0.",
                      "Check that data.target names the column to predict (--set "
                      "data.target='\"COLUMN\"'). If it does, the data holds one outcome "
                      "only: add rows with other values. data.task = \"regression\" does "
                      "not help: as a classification this column is one class, refused too.",
                      value=float(y[0]), num_rows=len(y))]
    return []


def _target_findings(y: np.ndarray, source: Callable[[np.ndarray], np.ndarray]
                     ) -> tuple[list[Finding], dict[str, Any]]:
    """`source`: positions -> rows of the source file (TaskData.source), for the evidence."""
    unusable = _unusable_target(y, source)
    if unusable:
        return unusable, {}
    q5, q25, q50, q75, q95 = np.percentile(y, [5, 25, 50, 75, 95])
    stats = {"mean": float(y.mean()), "std": float(y.std()), "min": float(y.min()),
             "max": float(y.max()), "q5": float(q5), "q50": float(q50), "q95": float(q95)}
    findings = [info("data", "target_stats",
                     f"target mean {stats['mean']:.4g}, std {stats['std']:.4g}, range "
                     f"[{stats['min']:.4g}, {stats['max']:.4g}].", **stats)]
    far = extreme_targets(y)
    if len(far):
        extreme = far[np.argsort(-np.abs(y[far] - q50))][:TOP_K]
        findings.append(warning(
            "data", "target_outliers",
            f"{len(far)} target values lie more than {OUTLIER_IQRS:g} interquartile ranges "
            f"from the median {q50:.4g} (the most extreme: {y[extreme[0]]:.4g}): a squared "
            "loss is dominated by them, and scaling the target by its std squeezes all other "
            "values together; training may diverge or fit only them.",
            "Look at those rows (evidence: rows, counted from 0 at the first row under the "
            "header): fix values entered in the wrong unit or drop them; for a skewed positive "
            "target, train on its log instead: --set data.target_transform='\"log\"' (errors "
            "are still reported in its units).",
            num_rows=len(far), rows=[int(i) for i in source(extreme)],
            values=[float(y[i]) for i in extreme], median=float(q50),
            iqr=float(q75 - q25)))
    return findings, stats


def _feature_names(data: TaskData, width: int) -> list[str]:
    if len(data.feature_names) == width:
        return list(data.feature_names)
    return [f"x{i}" for i in range(width)]  # sequences with C > 1 flatten to C*T columns


def audit(data: Any, target: str = "", class_weights: str = "none",
          min_class_rows: int | None = None) -> tuple[list[Finding], dict[str, Any]]:
    """Audit the train/val pool of `data` (the test part is checked for leaks by the split).
    `class_weights`: the run's train.class_weights, which the class-imbalance fix takes into
    account. `min_class_rows`: rows a class needs under the run's split (class_rows_needed;
    default: the default fractions).

    `data`: a TaskData (load_data, table_data, array_data) or what run(data=...) takes: a
    DataFrame with `target` naming its target column, an (x, y) pair, a dict of arrays.
    Returns findings (stage "data") and a JSON-able summary for meta.json. Pure: nothing is
    written and no random state is touched.
    """
    data = as_task_data(data, target)
    x = np.asarray(data.x).reshape(len(data.x), -1)  # (N, D): sequence steps count as features
    y = np.asarray(data.y).reshape(-1)
    names = _feature_names(data, x.shape[1])
    findings: list[Finding] = list(data.findings)  # from loading: they shape what follows
    summary: dict[str, Any] = {"num_samples": len(x), "num_features": int(x.shape[1]),
                               "input_shape": list(data.input_shape), "task": data.task}
    if data.task == "classification":
        found, summary["class_counts"] = class_findings(y, list(data.class_names),
                                                        class_weights, min_class_rows, target)
        found = held_back_for_task(found, data.findings)
        if data.y_test is not None:
            test = np.asarray(data.y_test).astype(np.int64).reshape(-1)
            summary["test_class_counts"] = np.bincount(
                test, minlength=len(data.class_names)).tolist()
    else:
        found, summary["target"] = _target_findings(y.astype(np.float64), data.source)
    findings += found
    found, summary["missing"] = _missing_findings(x, names, data.text_missing_counts(),
                                                  data.kind == "table")
    findings += found
    image = data.kind == "image" and np.ndim(data.x) == 4
    # token positions are no features to drop: padding columns are token_lengths' to explain
    found, constant = _constant_pixels(np.asarray(data.x)) if image else \
        ([], []) if data.kind == "tokens" else _constant_findings(x, names)
    findings += found + (image_findings(data) if image else [])  # blank, resized images
    summary["constant_features"] = constant[:TOP_K]
    if data.kind in ("table", "vector"):  # a few huge cells squash a column once standardised
        findings += extreme_value_findings(x, names, data.source)
    if data.kind == "tokens":  # lengths, empty rows, shortcut ids: what positions cannot say
        findings += token_findings(x, y, data.task, list(data.class_names),
                                   data.tokeniser.get("cut_share"))  # None: a user's ids
    if data.kind in ("vector", "sequence"):  # tables: checked on their columns when read
        findings += leak_findings({name: x[:, i] for i, name in enumerate(names)}, y,
                                  data.task, times=data.times, groups=data.groups,
                                  arrays=True)
    findings += wide_table(len(x), x.shape[1], data.kind)
    key_hash, row_hash = _key_hashes(data), data.row_hashes()  # once: its cache key costs a
    # whole-buffer xxh3 (task.py)
    found, counts = duplicate_findings(row_hash, y, data.task, files=data.files,
                                       source_rows=data.source_rows, key_hash=key_hash)
    findings += found
    if key_hash is not None and data.groups is not None:
        columns = [getattr(data.key(role), "column", role) for role in ("group", "time")]
        key_names = f"({', '.join(columns)})"
        findings += key_clash_findings(key_hash, row_hash, y, key_names, data.source_rows)
    summary.update(counts)
    findings.append(summary_finding(summary, findings))
    return findings, summary


def _key_hashes(data: Any) -> np.ndarray | None:
    """(N,) hash of each row's time and group, when a time key is known: a copy must share them."""
    if data.times is None or len(data.times) != len(data.y):
        return None
    from trainwise.data.copies import stamp_hashes

    return stamp_hashes(np.zeros(len(data.y), dtype=np.uint64), data.times, data.groups)


def wide_table(num_rows: int, num_features: int, kind: str) -> list[Finding]:
    """A note when a table or vector set has at least as many features as rows (p >= n): any
    n points in p >= n - 1 dimensions can be split by a hyperplane, so a network fits every
    training row whatever the labels (a 100 x 500 table: train loss 0.70 -> 0.09 while the
    validation loss never beat ln 2, audit s11 M2). Sequences and images share weights over
    their steps and pixels: their width is no count of free inputs."""
    if kind not in ("table", "vector") or num_features < num_rows:
        return []
    return [Finding(
        "data", Severity.INFO, "more_features_than_rows",
        f"More features than rows: {num_features:,} features for {num_rows:,} rows (fewer "
        "still train after the split). A model can then fit every training row by memorising "
        "them, so only the validation loss says whether it learns anything.",
        {"num_rows": num_rows, "num_features": num_features},
        "Keep the model small and regularised: raise train.weight_decay (e.g. 0.1), set a "
        "smaller model.width, or keep fewer features (data.drop_columns, or a selection made "
        "on the training rows); compare with a linear model on the same split.")]


def summary_finding(summary: dict[str, Any], findings: list[Finding]) -> Finding:
    flagged = sorted({f.code for f in findings if f.severity.value != "info"})
    verdict = f"flagged: {', '.join(flagged)}" if flagged else "nothing flagged"
    return info("data", "data_audit",
                f"audited {summary['num_samples']} rows x {summary['num_features']} features; "
                f"{verdict}.", num_samples=summary["num_samples"],
                num_features=summary["num_features"], flagged=flagged)
