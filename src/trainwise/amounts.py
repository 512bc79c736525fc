"""Numbers as people read them: a price error of 128,400, not 1.284e+05 (audit s10 A17).

Python's `:.4g` switches to scientific notation from 10,000 up, which is where regression
errors in money, counts or populations live; plain digits with thousands separators read at a
glance, and the four significant digits keep `.4g`'s precision.
"""

from __future__ import annotations

import math

SIGNIFICANT = 4
PLAIN_FROM, PLAIN_BELOW = 1e4, 1e15  # below 1e4 `.4g` is plain already; from 1e15 digits blur


def amount(value: float) -> str:
    """`value` to 4 significant digits: 0.6114, 1284, 9999.5 -> '10,000', 128437.2 -> '128,400',
    5.99e7 -> '59,920,000'; very small or huge values (and NaN, inf) as `.4g` gives them."""
    short = f"{value:.{SIGNIFICANT}g}"
    rounded = float(short)  # 9999.5 rounds to 1e+04: judged after rounding
    if not math.isfinite(rounded) or not PLAIN_FROM <= abs(rounded) < PLAIN_BELOW:
        return short
    return f"{rounded:,.0f}"


def loss_text(value: float) -> str:
    """A loss in the console's fixed 4 decimals (aligned epoch after epoch), but with 4
    significant digits below 0.001, where 4 decimals print a best loss of 1.4e-05 as
    "0.0000", a perfect score it is not (audit s13 P12)."""
    return f"{value:.4f}" if not math.isfinite(value) or abs(value) >= 1e-3 or value == 0 \
        else f"{value:.4g}"
