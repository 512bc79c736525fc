"""How often the range test's `no_descent` label is wrong, on curves whose truth is known.

    python bench/range_noise.py [--curves 300] [--no-record]

Pure noise (no fall at all: Gaussian, exponential, t3 and chi-square noise, flat or growing 4x
or 10x with the lr; 30, 100 and 300 steps): the share of curves our rule still calls a fall
(the label missing). And small-table curves (the shape of examples/churn.toml's test: a fall
of 0.13 from ln 2 whose bottom scatters 5x more than its start): the share it calls "did not
fall". Each with the bottom's test alone (before session 8) and with the stretch test added.
No torch training: the curves are drawn, so the figures are exact for the rule, not a model.
"""

from __future__ import annotations

import argparse

import numpy as np
from _record import append

from trainwise.tune import lr_rule
from trainwise.tune.lr_rule import suggest_range

NOISE = {"gaussian": lambda g, n: g.standard_normal(n), "exponential": lambda g, n: g.exponential(
    size=n), "t3": lambda g, n: g.standard_t(3, n), "chi-square(2)": lambda g, n: g.chisquare(2, n)}
GROWTH = {"flat": lambda t: 1.0, "4x": lambda t: 1 + 3 * t ** 2, "10x": lambda t: 1 + 9 * t}


def small_table_curve(g: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    lrs = np.geomspace(1e-6, 1, 100)
    x = np.log10(lrs)
    step = 1 / (1 + np.exp(-5 * (x + 1.9)))
    mean = 0.69 - 0.13 * step + 0.5 * np.clip(x + 0.8, 0, None) ** 2
    return lrs, mean + (0.01 + 0.05 * step) * g.standard_normal(100)


def flagged(curves: list[tuple[np.ndarray, np.ndarray]]) -> float:
    return float(np.mean(["no_descent" in suggest_range(*c).flags for c in curves]))


def both_ways(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """(flagged share with the bottom's test alone, with the stretch test too)."""
    kept = lr_rule.MIN_STRETCH_DROP_IN_SE
    lr_rule.MIN_STRETCH_DROP_IN_SE = np.inf
    try:
        alone = flagged(curves)
    finally:
        lr_rule.MIN_STRETCH_DROP_IN_SE = kept
    return alone, flagged(curves)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--curves", type=int, default=300, help="curves per cell")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    g = np.random.default_rng(0)
    rows, noise_alone, noise_both, total = [], 0.0, 0.0, 0
    for steps in (30, 100, 300):
        lrs, t = np.geomspace(1e-6, 1, steps), np.linspace(0, 1, steps)
        for name, draw in NOISE.items():
            for growth, scale in GROWTH.items():
                curves = [(lrs, 1 + 0.05 * scale(t) * draw(g, steps)) for _ in range(args.curves)]
                alone, both = both_ways(curves)
                noise_alone += (1 - alone) * len(curves)
                noise_both += (1 - both) * len(curves)
                total += len(curves)
                rows.append(f"| {steps} | {name} | {growth} | {1 - alone:.1%} | {1 - both:.1%} |")
    fell_alone, fell_both = both_ways([small_table_curve(g) for _ in range(args.curves)])
    body = "\n".join([
        f"Command: `python bench/range_noise.py --curves {args.curves}` (drawn curves, no "
        "training). `no_descent` is a label only: the range test's lr, lr_low and lr_high "
        "never depend on it.",
        "",
        f"Pure noise, {total:,} curves: called a fall (label missing, wrong) in "
        f"**{noise_alone / total:.2%}** with the bottom's test alone, **{noise_both / total:.2%}** "
        "with the stretch test added (MIN_STRETCH_DROP_IN_SE = "
        f"{lr_rule.MIN_STRETCH_DROP_IN_SE:g}).",
        f"Small-table curves that do fall ({args.curves}): called 'did not fall' (wrong) in "
        f"**{fell_alone:.0%}** with the bottom's test alone, **{fell_both:.0%}** with both.",
        "",
        "| steps | noise | noise growth over the lrs | called a fall, bottom's test | with the "
        "stretch test |",
        "|---|---|---|---|---|", *rows])
    print(body)
    if not args.no_record:
        append("Range test: the no_descent label on curves of known truth (audit s8 R4)", body)


if __name__ == "__main__":
    main()
