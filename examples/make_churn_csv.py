"""Writes churn.csv: a small synthetic customer table with numeric and categorical features.

Churn depends on tenure, support calls, contract type and spend, with label noise, so a
model can learn it but not perfectly. Regenerate with `python examples/make_churn_csv.py`.
"""

from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.default_rng(7)
n = 800
contract = rng.choice(["monthly", "yearly", "two-year"], size=n, p=[0.55, 0.3, 0.15])
region = rng.choice(["north", "south", "east", "west"], size=n)
tenure = rng.gamma(2.0, 12.0, size=n).round(1)
calls = rng.poisson(1.5, size=n)
spend = (40 + 0.8 * tenure + rng.normal(0, 12, size=n)).round(2)
logit = (1.2 - 0.06 * tenure + 0.55 * calls + 0.012 * (spend - 60)
         + np.select([contract == "yearly", contract == "two-year"], [-1.2, -2.4], 0.0))
churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
frame = pd.DataFrame({"customer_id": [f"C{i:04d}" for i in range(n)], "tenure_months": tenure,
                      "support_calls": calls, "monthly_spend": spend, "contract": contract,
                      "region": region, "churned": churned})
frame.loc[rng.choice(n, 12, replace=False), "monthly_spend"] = np.nan  # real tables have holes
frame.drop(columns="customer_id").to_csv(Path(__file__).with_name("churn.csv"), index=False)
