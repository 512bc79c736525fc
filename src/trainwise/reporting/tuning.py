"""The short real runs of `trainwise tune`: validation loss per epoch for each candidate rate."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from trainwise.reporting.curves import integer_x
from trainwise.reporting.figures import PALETTE, finite, legend, new_axes, styled

LOG_SPAN = 10  # losses spanning more than 10x get a log axis


@styled
def short_runs_figure(tune: dict[str, Any]) -> Figure:
    """One line per candidate peak lr; the chosen rate's line is drawn bold."""
    fig, ax = new_axes("Short real runs: validation loss per epoch")
    chosen = tune.get("best_lr") or tune.get("chosen_lr")
    values = np.concatenate([finite(c.get("curve", [])) for c in tune.get("candidates", [])]
                            or [np.array([])])
    values = values[np.isfinite(values)]
    if len(values) and values.min() > 0 and values.max() > LOG_SPAN * values.min():
        ax.set_yscale("log")  # one early blow-up would flatten the endings that decide
    # In lr order, as in the table: widened candidates come last in tune.json, and a legend
    # reading 0.01, 0.0221, 0.0486, 0.107, 0.00453 hid where the low end was (audit s7 #21)
    for i, candidate in enumerate(sorted(tune.get("candidates", []), key=lambda c: c["lr"])):
        curve = finite(candidate.get("curve", []))
        is_best = chosen is not None and math.isclose(candidate["lr"], chosen, rel_tol=1e-6)
        ax.plot(range(1, len(curve) + 1), curve, color=PALETTE[i % len(PALETTE)],
                linewidth=2.5 if is_best else 1.2, marker="o", markersize=3,
                label=f"lr {candidate['lr']:.3g}" + (" (best)" if is_best else ""))
    integer_x(ax, "epoch of the short run")  # 2 epochs had ticks 1.0, 1.2, ... 2.0 (P13)
    ax.set_ylabel("validation loss (log scale)" if ax.get_yscale() == "log" else
                  "validation loss")
    legend(ax)
    return fig


def candidate_rows(tune: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Table rows sorted by learning rate, with the winner marked; `spread` is the lowest and
    highest of the validation losses a run was scored over (None when one loss scored it, or
    when the run did not finish with finite losses: it has no score to spread)."""
    if not tune:
        return []
    best = tune.get("best_lr")
    rows = []
    for candidate in sorted(tune.get("candidates", []), key=lambda c: c["lr"]):
        tail = finite(candidate.get("tail") or [])
        scored = candidate.get("val_loss") is not None and bool(np.isfinite(tail).all())
        rows.append({"lr": candidate["lr"], "val_loss": candidate.get("val_loss"),
                     "seconds": candidate.get("seconds"), "round": candidate.get("round", 0),
                     "repeat": candidate.get("repeat"),  # scored over 2 data orders
                     "best": best is not None and math.isclose(candidate["lr"], best,
                                                               rel_tol=1e-6),
                     "spread": (float(tail.min()), float(tail.max()))
                     if scored and len(tail) > 1 else None})
    return rows


def within_noise(rows: list[dict[str, Any]]) -> bool:
    """The best run's score lies inside the range of the runner-up's scored losses."""
    scored = sorted((r for r in rows if r["val_loss"] is not None), key=lambda r: r["val_loss"])
    return (len(scored) > 1 and scored[1]["spread"] is not None
            and scored[1]["spread"][0] <= scored[0]["val_loss"])
