"""`trainwise.predict(run_dir, x)`: a finished run's best weights on new rows, in the user's
units. The rows are normalised with the training split's statistics (preprocess.npz), and the
model's answers are turned back: class codes into class names, standardised regression
outputs into the target's units.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from trainwise.caller_line import warn_at_caller
from trainwise.command_line import shell_word
from trainwise.config import DataConfig, data_suffix
from trainwise.config_sections import TABLE_FILES
from trainwise.data.arrays import shape_inputs
from trainwise.data.errors import DataError
from trainwise.data.tensors import to_loader
from trainwise.findings import Finding
from trainwise.prediction_images import (
    IMAGE_INPUTS,
    as_run_images,
    is_image_input,
    read_images,
)
from trainwise.prediction_table import (
    TableInput,
    constant_features,
    imputed_cells,
    key_columns,
    table_features,
)
from trainwise.prediction_text import fit_length, text_ids
from trainwise.preprocessing import Preprocessing
from trainwise.rundir import read_findings, read_meta, refuse_unfinished
from trainwise.stages import EVAL_BATCH_SIZE
from trainwise.train.decision_threshold import (
    THRESHOLD_GAIN,
    apply_threshold,
    on_corrected_scale,
    run_threshold,
    threshold_recommended,
)
from trainwise.train.evaluate import predict as loader_outputs  # not this module's predict
from trainwise.train.label_issues import probabilities
from trainwise.train.prior_correction import (
    WEIGHTED_PROBABILITIES,
    is_class_weighted,
    training_counts,
)
from trainwise.train.prior_correction import prior_corrected as _prior_corrected
from trainwise.train.regression_predictions import TargetUnits
from trainwise.trained_run import run_files, trained_model


def predict(run_dir: str | Path, x: Any, *, model: nn.Module | None = None,
            threshold: str = "argmax", prior_corrected: bool = False,
            allow_unfinished: bool = False, trust_code: bool = False) -> pd.DataFrame:
    """Predictions of the run's best weights (checkpoints/best.pt) for the rows of `x`.

    `x`: an array or tensor shaped as the run's inputs ((N, F), (N, C, T), (N, C, H, W) or
    (N, T) token ids) in the units of the data the run loaded (not normalised: this does it);
    a DataFrame holding the training table's columns as the run read them (text columns are
    one-hot encoded again, in any order; extra columns ignored); a .npz (its X), .csv
    or .parquet file; or, for an image run, also a folder, an image file or a list of them.
    `model`: for a run of your own nn.Module (run(model=net)), a module built the same way;
    the checkpoint's weights are loaded into it. Otherwise the run's own baseline is rebuilt
    from its config.toml.

    Returns a DataFrame, one row per input row: `prediction` (the class name, or the value in
    the target's units) and, for classification, `probability_<class>` per class.

    `threshold`: "argmax" (the default) answers the most probable class; "best", for two
    classes, answers the positive class when its probability reaches the decision threshold
    the run picked on validation (meta.json's "decision_threshold", scored on test in the
    report), which recovers a rare class the argmax never answers.

    `prior_corrected`: for a run trained with train.class_weights = "balanced", whose
    probabilities over-state the rarer classes, the probability columns with the weights
    undone (each class times its training count, renormalised); `prediction` is decided as
    without it (the argmax on the probabilities the model was trained to give; with
    threshold="best", the run's threshold moved to the corrected scale, so the same rows
    pass and each prediction is probability_<positive> >= the threshold said on stderr).

    `allow_unfinished`: a run that never finished (killed mid-training: meta.json has no
    verdict) is refused, naming where it stopped; True predicts with its best.pt as it is.

    `trust_code`: a config.toml naming model.name = "module:Class" makes the run folder code
    (importing the module runs it): without True (or `model`) it is imported only when Python
    finds it outside the working folder and the run folder, and refused otherwise, naming the
    file. Pass True only for a run folder you would run as a script.
    """
    folder, prep, config = run_files(run_dir)
    meta, findings = read_meta(folder), read_findings(folder)  # read once, passed along
    refuse_unfinished(folder, allow_unfinished, meta)
    _refuse_unsaved_encoding(x, folder, *unsaved_encoding(prep, config.data.source, findings))
    net = trained_model(folder, prep, config.model, model,  # no best.pt: before x is read
                        trust_code)
    table = TableInput(f"file '{x}'" if isinstance(x, str | Path) else "DataFrame",
                       constant_features(findings))  # named in errors; filled if missing
    x, files = _read_input(x, prep, config.data)
    inputs = _as_array(x, prep, _as_read(config.data, findings), _padding_side(findings),
                       folder=folder, table=table)
    imputed = imputed_cells(inputs, prep)  # warns of gaps the run never had; refuses inf
    outputs = _forward(net, prep.normalise(inputs))
    index = x.index if isinstance(x, pd.DataFrame) else None
    if prep.task != "classification":
        values = outputs.double().reshape(len(outputs)).numpy()
        units = TargetUnits(prep.target_mean, prep.target_scale,  # the log undone too
                            log=prep.target_function(config.data.target_transform))
        return _beside(pd.DataFrame({"prediction": units(values)}, index=index), x, meta,
                       imputed, files)
    probs = probabilities(outputs).astype(np.float64)  # the label check's, as in float32
    counts = _counts(meta, prior_corrected)
    shown = probs if counts is None else _prior_corrected(probs, counts)
    record = _threshold(folder, meta, prep, threshold, counts)
    decided = probs.argmax(axis=1) if record is None else apply_threshold(shown, record)
    frame = pd.DataFrame({"prediction": _label_values(prep.class_names)[decided]}, index=index)
    for k, name in enumerate(prep.class_names):
        frame[f"probability_{name}"] = shown[:, k]
    return _beside(frame, x, meta, imputed, files)


def _read_input(x: Any, prep: Preprocessing, data: DataConfig) -> tuple[Any, list[str] | None]:
    """The rows of `x` (read from its file or files), and for an image run given image files
    or a folder, the file of each row (decoded as the run's folder loader decoded its own)."""
    if prep.kind == "image" and is_image_input(x):
        images = read_images(x, prep.input_shape)
        return images.pixels, images.files
    return (_read_file(Path(x), data, prep) if isinstance(x, str | Path) else x), None


def _beside(frame: pd.DataFrame, x: Any, meta: dict[str, Any], imputed: np.ndarray | None,
            files: list[str] | None = None) -> pd.DataFrame:
    """The predictions with what joins them back to the rows: the image file of each row, or
    the input's identifier, time key and group columns first (the ones the run set aside as
    no feature), and num_imputed (missing cells filled with the training mean) when any row
    had one."""
    if imputed is not None and imputed.any():
        frame["num_imputed"] = imputed
    if files is not None:
        frame.insert(0, "file", files)
    if not isinstance(x, pd.DataFrame):
        return frame
    keys = [c for c in key_columns(meta) if c in x.columns and c not in frame.columns]
    for position, key in enumerate(keys):
        frame.insert(position, key, x[key].to_numpy())
    return frame


def _counts(meta: dict[str, Any], corrected: bool) -> np.ndarray | None:
    """The training counts that undo the balanced class weights when `corrected`, else None;
    a note (stderr) when class-weighted probabilities are written as they are."""
    weighted = is_class_weighted(meta)
    if corrected and not weighted:
        raise DataError(
            "prior_corrected=True undoes train.class_weights = \"balanced\", but this run "
            "trained without class weights: its probabilities already follow the training "
            "split's class shares. Leave prior_corrected (--prior-corrected) out.")
    if weighted and not corrected:
        warn_at_caller(f"{WEIGHTED_PROBABILITIES}: trainwise predict --prior-corrected "
                       "(prior_corrected=True) writes them with the weights undone.")
    return training_counts(meta) if corrected else None


def _threshold(folder: Path, meta: dict[str, Any], prep: Preprocessing, threshold: str,
               counts: np.ndarray | None) -> dict[str, Any] | None:
    """The threshold record that decides ("best"), on the written probabilities' scale (the
    prior-corrected one when `counts`), or None for the argmax; with the argmax, a note
    (stderr) when the run's threshold is recommended (threshold_recommended) and not applied."""
    if threshold not in ("argmax", "best"):
        raise DataError(f"threshold={threshold!r} is not known: give \"argmax\" (the default: "
                        "the most probable class) or \"best\" (the run's validation-picked "
                        "decision threshold, for two classes).")
    record = run_threshold(folder, prep.class_names, meta)
    if threshold == "best" and record is None:
        not_kept = (meta.get("decision_threshold") or {}).get("not_kept")
        why = (f"it kept none: {not_kept}; hold out more validation rows (split.val_fraction) "
               "or cross-validate (split.num_folds = 5)" if not_kept else
               "only two-class runs pick one, and only when the validation split holds both "
               "classes")
        raise DataError(
            "threshold=\"best\" asks for the decision threshold the run picked on validation, "
            f"but '{folder}' recorded none ({why}). Predict with the argmax (leave threshold "
            "out), or pick one from the probability_ columns yourself.")
    if threshold == "best":
        return record if counts is None else _corrected_threshold(record, counts)
    if record is not None and threshold_recommended(meta.get("test") or {}):
        warn_at_caller(
            f"prediction is the argmax; the run picked a decision threshold on validation, "
            f"P('{record['positive_class']}') >= {record['threshold']:.3g}, which adds "
            f"{THRESHOLD_GAIN:.0%} or more of test balanced accuracy (its scores are in the "
            "report) and is not applied. To apply it: trainwise predict --threshold best "
            "(trainwise.predict(..., threshold=\"best\")).")
    return None


def _corrected_threshold(record: dict[str, Any], counts: np.ndarray) -> dict[str, Any]:
    """The run's threshold (on the weighted probabilities the model gives) moved to the
    corrected scale the written probabilities are on, so that each written prediction is
    probability_<positive> >= the threshold said here (the same rows pass, but for
    float32 rounding at the threshold itself)."""
    moved = on_corrected_scale(record, counts)
    warn_at_caller(
        f"--threshold best with --prior-corrected: decided at P('{record['positive_class']}') "
        f">= {moved['threshold']:.3g} on the corrected scale written in the probability "
        f"columns (the run's threshold {record['threshold']:.3g} on the class-weighted scale; "
        "the same rows pass, but for rounding at the threshold itself).")
    return moved


def load_model(run_dir: str | Path, *, model: nn.Module | None = None,
               allow_unfinished: bool = False, trust_code: bool = False) -> nn.Module:
    """The run's trained nn.Module: the model the run built (from config.toml and the input
    shapes saved in preprocess.npz, so the data need not be at hand) with checkpoints/best.pt's
    weights, on the CPU in eval mode: for export (ONNX, TorchScript), serving or fine-tuning.
    It reads inputs normalised as preprocess.npz says (trainwise.predict does that for you).
    `model`: for a run of your own module, one built the same way; its weights are replaced.
    `allow_unfinished`, `trust_code`: as for predict (a killed run's half-trained model is
    refused; a config naming 'module:Class' is code)."""
    folder, prep, config = run_files(run_dir)
    refuse_unfinished(folder, allow_unfinished)
    return trained_model(folder, prep, config.model, model, trust_code).eval()


def _label_values(class_names: list[str]) -> np.ndarray:
    """The class names as the user's labels: integer labels (1..3) were saved as text ("1"),
    and text "1" compared with y = 1 is never equal, the very trap of answering codes."""
    try:
        as_int = [int(name) for name in class_names]
    except ValueError:
        return np.asarray(class_names, dtype=object)
    if [str(v) for v in as_int] != class_names:  # "01", "+1": keep the text as it was
        return np.asarray(class_names, dtype=object)
    return np.asarray(as_int, dtype=np.int64)


def _forward(net: nn.Module, inputs: np.ndarray) -> torch.Tensor:
    """(N, K) outputs on the host, batched as the evaluate stage batches its test part; the
    targets are stand-ins, as the loader yields (x, y) pairs."""
    loader = to_loader(inputs, np.zeros(len(inputs), np.float32), EVAL_BATCH_SIZE,
                       shuffle=False, seed=0)
    return loader_outputs(net, loader)[0]


def unsaved_encoding(prep: Preprocessing, source: object, findings: list[Finding]
                     ) -> tuple[str, bool]:
    """What the run's table encoding built from its own rows and did not save ('' if none),
    without which new rows cannot be encoded as training encoded them; and whether an array
    encoded by hand can still be scored (date features yes, word ids no). `source`: the run's
    data.source. The one rule for predict and for the report's Reproduce box (review s13 VA1:
    the box kept its own copy and told a text run with its vocabulary it could not be scored)."""
    if prep.kind == "tokens" and not prep.vocabulary and \
            data_suffix(Path(str(source))) in (".csv", ".parquet"):
        return ("its text was read as word ids through a vocabulary built from the table's "
                "rows, and this run folder, written by an earlier trainwise, does not hold "
                "that vocabulary"), False
    dates = [f"'{f.evidence.get('column')}' ({f.evidence.get('described')})"
             for f in findings if f.code == "date_feature"]
    if dates:
        return (f"its dates became numbers, {', '.join(dates[:4])}, an encoding built from "
                "the table's own dates that predict does not redo"), True
    return "", True


def _refuse_unsaved_encoding(x: Any, folder: Path, why: str, arrays_ok: bool) -> None:
    """Say plainly that the rows cannot be scored, rather than advise an encoded array that
    no one can build (the vocabulary) or a table whose encoding predict does not redo; the
    --resume advice names `folder`, to be pasted as it is (review s13 VA12)."""
    as_table = isinstance(x, pd.DataFrame) or (
        isinstance(x, str | Path) and data_suffix(Path(x)) in (".csv", ".parquet"))
    if not why or (arrays_ok and not as_table):
        return
    if not arrays_ok:  # free text: dropping the text would leave nothing to train on
        raise DataError(
            f"this run's table cannot be scored by trainwise.predict: {why}, so new text "
            "cannot be tokenised as training tokenised it. Write the vocabulary into the run "
            f"folder without retraining: trainwise run --resume {shell_word(folder)} (it reloads "
            "the data, "
            "tokenises it again the same way and saves the vocabulary in preprocess.npz), "
            "then predict again.")
    raise DataError(
        f"this run's table cannot be scored by trainwise.predict yet: {why}, so new rows "
        "cannot be encoded as training encoded them. predict re-encodes number columns and "
        "text columns read as levels (one-hot), not dates nor free text read as word ids; to "
        "score these rows, train a run without them (go back to the data stage: drop or "
        "convert those columns, a date e.g. to days since a fixed date written in the file, "
        "before trainwise run).")


def _as_read(data: DataConfig, findings: list[Finding]) -> DataConfig:
    """The run's data config with the decimal mark its CSV was read with: data.decimal "" is
    sniffed per file (findings.json's csv_dialect says which), and a new table's '0,822' reads
    as 0.822 only with the run's ','."""
    sniffed = [f.evidence.get("decimal") for f in findings if f.code == "csv_dialect"]
    decimal = data.decimal or (sniffed[0] if sniffed and sniffed[0] else ".")
    return data.model_copy(update={"decimal": decimal})


def _padding_side(findings: list[Finding]) -> str:
    """Where the run's token rows were padded ("start" or "end"), from its token_lengths."""
    sides = [f.evidence.get("padding") for f in findings if f.code == "token_lengths"]
    return "start" if sides and sides[0] == "start" else "end"


def _as_array(x: Any, prep: Preprocessing, data: DataConfig, padding: str = "end", *,
              folder: str | Path, table: TableInput | None = None) -> np.ndarray:
    """`x` (predict read a file already) as rows of the run's shape, or an error that says
    what differs (naming the run `folder` where it advises a command)."""
    if isinstance(x, pd.DataFrame):
        x = text_ids(x, prep) if prep.kind == "tokens" else \
            table_features(x, prep, data, folder=folder, table=table)
    array = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if array.dtype.kind not in "biuf":
        raise DataError(f"the rows to predict hold {array.dtype} values; the model reads "
                        "numbers. Encode them as the run's data was encoded.")
    _refuse_rescaled_pixels(array, prep)
    shaped = _laid_out(array, prep, data)
    shape = tuple(prep.input_shape)
    if prep.kind == "image":
        shaped = _as_loaded_images(shaped, prep, data)
    if prep.kind == "tokens" and shaped.ndim == 2:
        shaped = fit_length(shaped, prep, padding)  # embedding_pool reads any T
    if shaped.ndim != len(shape) + 1 or shaped.shape[1:] != shape:
        _refuse_shape(array, shaped, prep, data)
    if len(shaped) == 0:
        raise DataError("there are no rows to predict (0 rows given). Pass at least one row.")
    if prep.kind == "tokens":
        return _token_ids(shaped, prep)
    return shaped


def _as_loaded_images(shaped: np.ndarray, prep: Preprocessing, data: DataConfig
                      ) -> np.ndarray:
    """Images given the conversions the run's own loader applied, no others (review s13 VA2:
    a (3, 32, 32, 3) colour batch was scored by an 8x8 gray .npz run at 0.93): a folder run
    (load_image_folder) converts channels and sizes; a run of a .npz (or of data=(x, y),
    saved as one) converts no channels and resizes only to data.image_size, so other arrays
    meet the shape check, which names the run's layout."""
    shape = tuple(prep.input_shape)
    if not _reads_arrays(data):
        return as_run_images(shaped, shape)
    return as_run_images(shaped, shape, channels=False) if data.image_size else shaped


def _reads_arrays(data: DataConfig) -> bool:
    """The run read a .npz (data=(x, y) is saved as one); an image run otherwise read a
    folder (no built-in set holds images)."""
    return str(data.source).lower().endswith(".npz")


def _refuse_shape(array: np.ndarray, shaped: np.ndarray, prep: Preprocessing,
                  data: DataConfig) -> None:
    """What differs between the rows given and the run's rows; one row given without its
    row axis is said as such (not as two equal shapes)."""
    shape = tuple(prep.input_shape)
    if array.shape == shape:
        raise DataError(f"the rows to predict are one row shaped {shape} without the row "
                        f"axis; the model reads (N, {', '.join(map(str, shape))}), N rows: add "
                        "the row axis, x[None].")
    read = f" (read as {shaped.shape})" if shaped.shape != array.shape else ""
    raise DataError(f"the rows to predict are shaped {array.shape}{read}, but the run's "
                    f"model reads rows shaped {shape} ({prep.kind} data). "
                    f"{_layout_advice(array.shape, prep, data)}")


def _refuse_rescaled_pixels(array: np.ndarray, prep: Preprocessing) -> None:
    """A run that read uint8 pixels was normalised with 0..255 statistics: floats in [0, 1]
    (torchvision's ToTensor) would pass every shape check and be scored as near-black images,
    all one class. Whole numbers in 0..255 are the same pixels as floats, so they pass."""
    if np.dtype(prep.input_dtype) != np.uint8 or array.dtype.kind != "f" or not array.size:
        return
    low, high = float(np.nanmin(array)), float(np.nanmax(array))
    whole = bool(np.all(np.isfinite(array)) and np.all(array == np.round(array)))
    if whole and low >= 0 and high <= 255:
        return
    raise DataError(
        f"the run read its pixels as whole numbers 0..255 (uint8) and normalised them so; "
        f"these rows are floats in [{low:.4g}, {high:.4g}] (ToTensor scales to [0, 1]), which "
        "the model would read as other images and answer wrongly. Pass them as the run read "
        "its data: (x * 255).round().astype(np.uint8) for [0, 1] floats.")


def _laid_out(array: np.ndarray, prep: Preprocessing, data: DataConfig) -> np.ndarray:
    """A run that read arrays (a .npz, or data=(x, y)) changed their layout (a 3-D array is
    (N, T, C) -> (N, C, T), an (N, H, W, C) image -> (N, C, H, W)): new rows are laid out the
    same way. Other sources (tables, image folders, built-in sets) load in the model's layout.
    Afterwards a folder run's images also get its channels and size, a .npz run's only its
    data.image_size (_as_loaded_images)."""
    shaped = array
    if _reads_arrays(data):
        try:
            shaped = shape_inputs(array, _array_kind(prep.kind))[0]
        except DataError:
            if array.ndim == len(prep.input_shape) + 1:  # the right rank: wrong values (ids)
                raise
    elif prep.kind != "tokens" and not (prep.kind == "image" and array.dtype == np.uint8):
        shaped = array.astype(np.float32, copy=False)  # ids and pixels stay as they are
        if _one_channel(prep) and shaped.ndim == 2 and shaped.shape[1] == prep.input_shape[1]:
            shaped = shaped[:, None, :]  # (N, T) -> (N, 1, T), as an .npz run reads it
    return shaped


def _one_channel(prep: Preprocessing) -> bool:
    return prep.kind == "sequence" and len(prep.input_shape) == 2 and prep.input_shape[0] == 1


def _layout_advice(given: tuple[int, ...], prep: Preprocessing, data: DataConfig) -> str:
    """The layout this run takes, and the reshape from the one given where one fits: a run of
    arrays (an .npz, or data=(x, y)) lays out new rows as it laid out its own (a 3-D array
    read as (N, T, C)); other sources (built-in sets, tables, image folders) take the model's
    layout, channels first."""
    shape = tuple(prep.input_shape)
    if _reads_arrays(data):
        stored = f"(N, {shape[1]}, {shape[0]}) = (N, T, C)" if prep.kind == "sequence" else \
            f"(N, {', '.join(map(str, shape))})"
        return (f"Give the rows as the run's arrays were given, {stored}"
                f"{_unnormalised(prep).replace(';', ',')}: the run lays them out for the "
                "model itself.")
    wanted = f"(N, {', '.join(map(str, shape))})"
    also = f" or (N, {shape[1]})" if _one_channel(prep) else ""
    how = ""
    if len(given) == 3 and given[1:] == shape[::-1]:
        how = f"; from {given}: x.transpose(0, 2, 1)"
    elif len(given) == 4 and given[1:] == (*shape[1:], shape[0]):
        how = f"; from {given}: x.transpose(0, 3, 1, 2)"
    first = ", channels first" if prep.kind in ("sequence", "image") else ""
    return f"This run reads its rows as {wanted}{also}{first}{how}{_unnormalised(prep)}."


def _unnormalised(prep: Preprocessing) -> str:
    """The advice to give rows unnormalised, for runs that normalise (token ids are not)."""
    return "" if prep.mean is None else "; give them before normalisation"


def _array_kind(kind: str) -> str:
    """shape_inputs' name for a kind: a table's encoded columns are (N, F) like vectors."""
    return "vector" if kind == "table" else kind


def _token_ids(array: np.ndarray, prep: Preprocessing) -> np.ndarray:
    if array.size and (array.min() < 0 or array.max() >= prep.vocab_size):
        raise DataError(f"token ids must lie in 0..{prep.vocab_size - 1} (the run's "
                        f"vocabulary); got {int(array.min())}..{int(array.max())}. Map unseen "
                        "tokens to an id the run knew.")
    return array.astype(np.int64)


def _read_file(path: Path, data: DataConfig, prep: Preprocessing) -> Any:
    """The rows in a file; a CSV is read as the run read its own (its config's data.sep,
    data.encoding and data.decimal), since `trainwise predict` takes no such options."""
    if not path.is_file() or not data_suffix(path):
        _refuse_unread(path, prep)
    if data_suffix(path) == ".npz":
        with np.load(path, allow_pickle=False) as saved:
            key = next((k for k in ("X", "x") if k in saved.files), None)
            if key is None:
                raise DataError(f"'{path}' holds {saved.files}; name the inputs X.")
            try:
                return saved[key]
            except ValueError as exc:  # an object array: loading it would run pickle's code
                raise DataError(f"'{path}': its {key} is an object array ({exc}); save it as "
                                f"numbers: np.savez(path, {key}=np.asarray(x, dtype=np.float32))"
                                ) from None
    from trainwise.data.tables import read_table

    return read_table(path, data.sep, data.encoding, data.decimal)[0]


def _refuse_unread(path: Path, prep: Preprocessing) -> None:
    """A path predict cannot read, and what it reads for this run: an image run reads images
    too (review s13 VA3: it was told folders are "for runs on images only")."""
    what = f"has suffix '{path.suffix}', which predict does not read" if path.is_file() else \
        ("is a folder" if path.is_dir() else "does not exist")
    if prep.kind == "image":  # a folder was read as images before this
        raise DataError(f"'{path}' {what}. {IMAGE_INPUTS}")
    raise DataError(f"'{path}' {what}; this run read {prep.kind} data, whose rows predict "
                    f"reads from one file: a .npz (with X) or a table, {TABLE_FILES} (folders "
                    "and image files are read for runs on images only).")
