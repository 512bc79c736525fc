"""The report stage: a run folder -> figures/*.png + one self-contained report.html."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from matplotlib.figure import Figure

from trainwise.model.init_default import DEFAULT_SHRINK
from trainwise.reporting import confidence, metric_curves
from trainwise.reporting.context import report_context
from trainwise.reporting.figures import class_balance_figure, data_uri, figure_png
from trainwise.reporting.formats import fmt_evidence, fmt_number, fmt_seconds, fmt_shape
from trainwise.reporting.lr_range import lr_range_figure, used_lr
from trainwise.reporting.missing import say_missing
from trainwise.reporting.model_tables import INIT_CODES, batch_first, traced_batch
from trainwise.reporting.precision_recall import precision_recall_figure, two_class_predictions
from trainwise.reporting.predictions import predicted_vs_actual_figure
from trainwise.reporting.reliability import reliability_figure
from trainwise.reporting.report_argument import run_folder_argument
from trainwise.reporting.run_data import (
    RunData,
    class_counts,
    load_run,
    prior_counts,
    standardised_target,
)
from trainwise.reporting.training_figures import CONFIDENCE_KEY, curve_panels, has
from trainwise.reporting.tuning import short_runs_figure
from trainwise.rundir import report_folder
from trainwise.safe_write import inside, write_replacing
from trainwise.train.regression_predictions import PREDICTIONS_CSV, read_predictions

_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}


@dataclass(frozen=True)
class EmbeddedFigure:
    title: str
    uri: str  # a data: URI, so report.html needs no file beside it
    path: str  # where the PNG also lies, relative to the run folder
    caption: str = ""


# Captions for the stage figures of run folders written before meta.json carried one (their
# "figures" entries were bare paths): keyed by the file's stem.
STAGE_CAPTIONS = {"samples": "Typical samples of the data, as loaded, drawn by the data stage "
                             "before training: the first rows of each class."}


def figure_builders(run: RunData) -> dict[str, tuple[str, Callable[[], Figure]]]:
    """name -> (title, build) for each figure the run has data for, in report order."""
    builders: dict[str, tuple[str, Callable[[], Figure]]] = {}
    counts = class_counts(run)
    if counts:
        names = run.data.get("class_names")
        title = "Class balance per split" if run.data.get("class_counts") else \
            "Class balance before the split"
        builders["class_balance"] = ("Class balance",
                                     lambda: class_balance_figure(counts, names, title))
    if run.lr_range and run.lr_range.get("curves"):
        builders["lr_range"] = ("LR range test", lambda: lr_range_figure(
            run.lr_range or {}, run.tune, used_lr(run.tune, run.findings),
            trained=bool(run.steps or run.epochs)))
    if run.tune and run.tune.get("candidates"):
        builders["short_runs"] = ("Short runs", lambda: short_runs_figure(run.tune or {}))
    num_classes = run.data.get("num_classes") if run.classification else None
    builders.update(curve_panels(run.steps, run.epochs, run.findings, num_classes,
                                 train_class_counts=prior_counts(run),
                                 standardised_target=standardised_target(run)))
    builders.update(_task_builders(run))
    return builders


def _task_builders(run: RunData) -> dict[str, tuple[str, Callable[[], Figure]]]:
    if not run.classification:
        return _regression_builders(run)
    builders = {}
    if has(run.epochs, "val_accuracy"):
        builders["accuracy"] = ("Accuracy", lambda: metric_curves.metric_figure(
            run.epochs, ["train_accuracy", "val_accuracy", "val_mean_confidence",
                         "val_balanced_accuracy"],
            "Accuracy and mean confidence per epoch", run.findings))
    if has(run.epochs, CONFIDENCE_KEY):
        builders["confidence"] = ("Confidence", lambda: confidence.confidence_figure(run.epochs))
    if has(run.epochs, "val_reliability") or (run.test or {}).get("test_reliability"):
        builders["reliability"] = ("Reliability diagram",
                                   lambda: reliability_figure(run.epochs, run.test))
    try:  # a malformed file costs this figure, as a note, not the report (audit s16 S10)
        kept = two_class_predictions(run.path / PREDICTIONS_CSV,
                                     run.meta.get("decision_threshold"), _test_rarer(run))
    except Exception as exc:  # noqa: BLE001 - render_figures shows it, see its docstring
        return {**builders, "precision_recall": ("Precision-recall", _failed(exc))}
    if kept is not None:
        builders["precision_recall"] = ("Precision-recall",
                                        lambda: precision_recall_figure(**kept))
    return builders


def _failed(exc: Exception) -> Callable[[], Figure]:
    """A builder that raises what reading its inputs raised: render_figures' try turns it
    into the figure's note, as it does for a failure while drawing."""
    def build() -> Figure:
        raise exc
    return build


def _test_rarer(run: RunData) -> str | None:
    """The class the test split's AP is for (ranking.py: the test split's rarer), by name."""
    index = (run.test or {}).get("test_positive_class")
    names = run.data.get("class_names") or []
    return str(names[index]) if isinstance(index, int) and 0 <= index < len(names) else None


def _regression_builders(run: RunData) -> dict[str, tuple[str, Callable[[], Figure]]]:
    builders: dict[str, tuple[str, Callable[[], Figure]]] = {}
    keys = [k for k in ("val_mae", "val_rmse") if has(run.epochs, k)]
    if keys:
        builders["val_error"] = ("Validation error", lambda: metric_curves.metric_figure(
            run.epochs, keys, "Validation error per epoch"))
    try:  # the evaluate stage's, not redone; malformed: a note (audit s16 S10)
        kept = read_predictions(run.path / PREDICTIONS_CSV)
    except Exception as exc:  # noqa: BLE001 - render_figures shows it, see its docstring
        return {**builders, "predictions": ("Predicted vs actual", _failed(exc))}
    if kept is not None:
        builders["predictions"] = ("Predicted vs actual",
                                   lambda: predicted_vs_actual_figure(*kept))
    return builders


def render_figures(run: RunData) -> tuple[dict[str, EmbeddedFigure], list[str]]:
    """Draw, save under figures/ and inline every figure; a figure that fails becomes a note.

    One malformed row must not cost the whole report: the report of a broken run is the one
    the user needs most, so the failure is shown in it instead of raised.
    """
    out_dir = inside(run.path / "figures", run.path)  # not a link out (audit s16 S3)
    embedded, problems = {}, []
    for name, (title, build) in figure_builders(run).items():
        try:
            png = figure_png(build())
        except Exception as exc:  # noqa: BLE001 - shown in the report, see docstring
            problems.append(f"figure '{name}' could not be drawn: {type(exc).__name__}: {exc}")
            continue
        target = out_dir / f"report_{name}.png"  # prefix: never overwrite a stage's figure
        write_replacing(target, png)  # a link named so is replaced, not written through
        embedded[name] = EmbeddedFigure(title, data_uri(png), f"figures/{target.name}")
    return embedded, problems


def extra_figures(run: RunData) -> tuple[list[EmbeddedFigure], list[str]]:
    """Inline the figures stages listed in meta.figures: each a path relative to the run
    folder, or {"path", "title", "caption"}."""
    embedded, problems = [], []
    for entry in run.meta.get("figures") or []:
        figure, problem = embed_saved(run, entry if isinstance(entry, dict) else {"path": entry})
        embedded += [figure] if figure else []
        problems += [problem] if problem else []
    return embedded, problems


def embed_saved(run: RunData, described: dict[str, Any]) -> tuple[EmbeddedFigure | None, str]:
    """A figure a stage saved in the run folder, inlined; or None and why it was not."""
    root = run.path.resolve()
    rel = str(described.get("path", ""))
    path = (root / rel).resolve()
    mime = _MIME.get(path.suffix.lower())
    if not path.is_relative_to(root) or mime is None:
        return None, f"extra figure '{rel}' skipped: expected a PNG/JPEG/SVG inside the run folder"
    if not path.is_file():
        return None, f"extra figure '{rel}' is listed in meta.json but missing"
    title = described.get("title") or path.stem.replace("_", " ").replace("-", " ")
    caption = described.get("caption") or STAGE_CAPTIONS.get(
        path.stem, f"A figure the run saved as {rel}.")
    return EmbeddedFigure(str(title), data_uri(path.read_bytes(), mime), rel, str(caption)), ""


def _environment() -> jinja2.Environment:
    # Autoescape everything: finding messages and config values are user-controlled text.
    # Default (lenient) Undefined: every meta.json field is optional, a missing one is blank.
    env = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=fmt_number, seconds=fmt_seconds, shape=fmt_shape,
                       evidence=fmt_evidence, batch_first=batch_first)
    # one list of the codes whose "layers" the Model section tables, one shrink factor
    env.globals.update(traced_batch=traced_batch, init_codes=INIT_CODES,
                       default_shrink=DEFAULT_SHRINK)
    return env


def render_html(context: dict[str, Any]) -> str:
    source = resources.files("trainwise.reporting").joinpath("report.html.j2")
    template = _environment().from_string(source.read_text(encoding="utf-8"))
    return template.render(**context)


def _stage_figure(run: RunData, key: str) -> tuple[EmbeddedFigure | None, str]:
    """meta[key]["figure"], a stage's saved figure (a path, or {path, title, caption}),
    inlined; (None, "") when the stage drew none."""
    figure = (run.meta.get(key) or {}).get("figure")
    if not figure:
        return None, ""
    return embed_saved(run, {"path": figure} if isinstance(figure, str) else figure)


def build_report(run_path: str | Path) -> Path:
    """Render the run folder's report.html (one self-contained file) and return its path."""
    path = report_folder(run_folder_argument(run_path))  # refused before writing: no
    # report.html in a non-run folder, and a TrainState/Monitor is told what report() takes
    run = load_run(path)
    figures, figure_problems = render_figures(run)
    extras, extra_problems = extra_figures(run)
    suspects_figure, suspects_problem = _stage_figure(run, "label_issues")
    mistakes_figure, mistakes_problem = _stage_figure(run, "mistakes")
    crossval_figure, crossval_problem = _stage_figure(run, "cross_validation")
    context = report_context(run)
    context.update(figures=figures, extra_figures=extras, suspects_figure=suspects_figure,
                   crossval_figure=crossval_figure, mistakes_figure=mistakes_figure,
                   problems=figure_problems + extra_problems
                   + [p for p in (suspects_problem, crossval_problem, mistakes_problem) if p])
    say_missing(context["missing"])  # stderr too: a batch job never opens the report
    return write_replacing(path / "report.html", render_html(context))  # see safe_write
