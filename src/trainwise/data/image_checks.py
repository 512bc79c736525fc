"""Per-image checks of an image set: blank images, and what the folder loader changed
(channels, sizes) tied to the files and classes it changed (audit s13 I8, I9).

The loader's notes counted its changes ("182 gray images repeated to RGB", "18 images
resized") but named no file and no class: every gray image of the audit's imgs4/ was class
c1 and every colour one c0, a shortcut any model takes; 4:1 images were squashed to 1:1.
"""

from __future__ import annotations

import numpy as np

from trainwise.data.naming import name_files
from trainwise.data.task import TaskData
from trainwise.findings import Finding, info, warning

NUM_NAMED = 3  # files named in a message (the evidence holds up to NUM_LISTED)
NUM_LISTED = 20
SQUASH = 1.5  # an aspect ratio changed by more than this factor distorts shapes visibly (a
# circle drawn 1.5x wider); below it, resizing barely changes what a CNN sees
RESIZED = "resized images (the others kept their size)"  # a key of _changes, and its wording
MIN_CHANGED = 5  # fewer changed images say nothing reliable about the classes
MAX_P, MIN_V = 1e-3, 0.3  # chi-square p and Cramer's V: significant AND large (V 0.3 is a
# "medium" association; with 50k images a 2-point difference in shares is already p < 1e-3)


def _named(data: TaskData, rows: np.ndarray, sizes: list[str] | None = None) -> list[str]:
    """Files (relative to their shared folder) or 'row k' of `rows`, with a size if given."""
    rows = rows[:NUM_LISTED]
    names = ([n for [n] in name_files(data.files, [[r] for r in rows])] if data.files
             else [f"row {r}" for r in data.source(rows).tolist()])
    return names if sizes is None else [f"{n} ({s})" for n, s in zip(names, sizes, strict=True)]


def image_findings(data: TaskData) -> list[Finding]:
    """Constant images always; resizes and conversions when the loader kept stored shapes."""
    findings = _constant_images(data)
    if data.stored_shapes is None or not len(data.stored_shapes):
        return findings
    changes = _changes(data)
    return (findings + _resized(data, changes[RESIZED]) + _squashed(data, changes[RESIZED])
            + _converted_by_class(data, changes))


def _constant_images(data: TaskData) -> list[Finding]:
    flat = np.asarray(data.x).reshape(len(data.x), -1)
    rows = np.flatnonzero(flat.min(axis=1) == flat.max(axis=1))  # std 0: one value everywhere
    if not len(rows):
        return []
    named = _named(data, rows, [f"{float(flat[r, 0]):g} everywhere" for r in rows[:NUM_LISTED]])
    return [warning(
        "data", "constant_images",
        f"{len(rows)} image{'s are' if len(rows) > 1 else ' is'} one value everywhere, e.g. "
        f"{', '.join(named[:NUM_NAMED])}: a blank, failed or placeholder capture shows the "
        "model nothing but its label.",
        "Open these files: delete them, or replace them with the real images, then rerun from "
        "the data stage.", num_images=int(len(rows)), examples=named)]


def _resized(data: TaskData, resized: np.ndarray) -> list[Finding]:
    """An info naming the resized files; it says when most images were stretched alike (a
    16:9 set resized to 64x64): a uniform distortion, no outlier to warn about (VD7)."""
    rows = np.flatnonzero(resized)
    if not len(rows):
        return []
    stored, common = _aspects(data)
    height, width = data.x.shape[2:]
    sizes = [f"{int(h)}x{int(w)}" for h, w in stored[rows[:NUM_LISTED]]]
    named = _named(data, rows, sizes)
    alike = resized & (_factor(stored, common) <= SQUASH) \
        & (_factor(stored, width / height) > SQUASH)  # stretched, like the median image
    note = (f" {int(alike.sum())} of them, of the common aspect ratio {common:.2f}:1 (width:"
            f"height), were stretched alike to {width / height:.2f}:1; pad or crop them "
            "instead if shapes matter." if alike.any() else "")
    return [info("data", "resized_images",
                 f"{len(rows)} images were resized to {height}x{width} from other sizes, e.g. "
                 f"{', '.join(named[:NUM_NAMED])}.{note}",
                 num_images=int(len(rows)), examples=named,
                 median_aspect_ratio=round(common, 4), num_stretched_alike=int(alike.sum()))]


def _aspects(data: TaskData) -> tuple[np.ndarray, float]:
    """((N, 2) H, W as stored, the W / H most images share): what both aspect checks read."""
    stored = data.stored_shapes[:, 1:].astype(np.float64)
    return stored, float(np.median(stored[:, 1] / stored[:, 0]))


def _factor(stored: np.ndarray, ratio: float) -> np.ndarray:
    """(N,) how far each stored W / H is from `ratio`, as a factor >= 1 either way."""
    change = (stored[:, 1] / stored[:, 0]) / ratio
    return np.maximum(change, 1 / change)


def _squashed(data: TaskData, resized: np.ndarray) -> list[Finding]:
    """A warning for resized images whose aspect ratio differs from the median image's: after
    the resize their shapes are distorted unlike the others' (measured against the other
    images, not the target size: all 60 of a 16:9 set were called outliers, VD7)."""
    stored, common = _aspects(data)
    height, width = data.x.shape[2:]
    squashed = np.flatnonzero(resized & (_factor(stored, common) > SQUASH))
    if not len(squashed):
        return []
    sizes = [f"{int(h)}x{int(w)}" for h, w in stored[squashed[:NUM_LISTED]]]
    named = _named(data, squashed, sizes)
    return [warning(
        "data", "squashed_images",
        f"{len(squashed)} images had an aspect ratio unlike most images' ({common:.2f}:1, "
        f"width:height; by more than {SQUASH}x) and were stretched to {height}x{width}, e.g. "
        f"{', '.join(named[:NUM_NAMED])}: their shapes are distorted unlike the other images'.",
        "Crop or pad these images to the common aspect ratio yourself (or delete them if "
        "they do not belong), then rerun from the data stage.",
        num_images=int(len(squashed)), max_factor=SQUASH, median_aspect_ratio=round(common, 4),
        examples=named)]


def _changes(data: TaskData) -> dict[str, np.ndarray]:
    """What the loader changed, per pool row: the changes a model can see in the pixels."""
    stored, channels = data.stored_shapes, data.x.shape[1]
    return {"gray images repeated to RGB (the others are colour)":
            (stored[:, 0] == 1) & (channels == 3),
            RESIZED: (stored[:, 1:] != data.x.shape[2:]).any(axis=1)}


def _converted_by_class(data: TaskData, changes: dict[str, np.ndarray]) -> list[Finding]:
    """A warning per change whose rows fall on the classes unlike the rest: the loader's
    conversion then marks the class (one scanner or camera per class), a shortcut."""
    if data.task != "classification":
        return []
    from scipy.stats import chi2_contingency

    y = np.asarray(data.y, dtype=np.int64).reshape(-1)
    found = []
    for what, changed in changes.items():
        if changed.sum() < MIN_CHANGED or changed.all():
            continue
        table = np.stack([np.bincount(y[changed], minlength=data.num_classes),
                          np.bincount(y[~changed], minlength=data.num_classes)])
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[1] < 2:
            continue
        chi2, p = chi2_contingency(table, correction=False)[:2]
        v = float(np.sqrt(chi2 / table.sum()))  # Cramer's V of a 2 x C table
        if p < MAX_P and v >= MIN_V:
            found.append(_shortcut(data, what, changed, y, (float(p), v)))
    return found


def _shortcut(data: TaskData, what: str, changed: np.ndarray, y: np.ndarray,
              test: tuple[float, float]) -> Finding:
    names = data.class_names
    counts = {names[c]: [int((changed & (y == c)).sum()), int((y == c).sum())]
              for c in range(data.num_classes) if (y == c).any()}
    shares = ", ".join(f"{n} {k} of {total}" for n, (k, total) in counts.items())
    only = [n for n, (k, _) in counts.items() if k]
    alone = f"; all of them are class {only[0]}" if len(only) == 1 else ""
    named = _named(data, np.flatnonzero(changed))
    return warning(
        "data", "conversion_by_class",
        f"The {int(changed.sum())} {what} fall on the classes unlike the other images: {shares} "
        f"(chi-square p = {test[0]:.1e}, Cramer's V = {test[1]:.2f}{alone}; e.g. "
        f"{', '.join(named[:NUM_NAMED])}): a model can tell "
        "the classes apart by that alone, not by what the images show (one camera, scanner or "
        "source per class).",
        "Make the images alike across classes: re-save them all in one format (all gray or "
        "all colour, one size), or collect each class from every source; then rerun from the "
        "data stage, and check the model on images of the other kind.",
        counts_per_class=counts, p_value=test[0], cramers_v=round(test[1], 4),
        examples=named)
