"""Regression errors in plain digits: 128,400, not 1.284e+05 (audit s10 A17)."""

import math

import pytest

from trainwise.amounts import amount
from trainwise.reporting.formats import fmt_number
from trainwise.train.regression_metrics import baselines_text


@pytest.mark.parametrize("value,text", [
    (128437.2, "128,400"), (-128437.2, "-128,400"), (59915047.8, "59,920,000"),
    (9999.5, "10,000"),  # .4g rounds it to 1e+04: judged after rounding
    (1284.0, "1284"), (0.6114, "0.6114"), (5.996e-05, "5.996e-05"), (0.0, "0"),
    (3e16, "3e+16"),  # past 1e15 plain digits are a blur of zeros
])
def test_amounts_keep_four_significant_digits_in_plain_digits(value, text):
    assert amount(value) == text
    assert float(text.replace(",", "")) == pytest.approx(value, rel=5e-4)


def test_non_finite_amounts_and_the_report_filter():
    assert amount(math.nan) == "nan" and amount(math.inf) == "inf"
    assert fmt_number(128437.2) == "128,400" and fmt_number(1284) == "1,284"


def test_the_baselines_line_reads_in_plain_digits():
    row = {"test_mean_rmse": 245012.0, "test_mean_mae": 67710.0}
    assert baselines_text(row) == "predicting the training mean: RMSE 245,000, MAE 67,710"


def test_a_tiny_loss_keeps_its_digits_where_four_decimals_print_zero():
    """Audit s13 P12: wine's best validation loss 1.4058e-05 printed "0.0000" on the console
    and "1.406e-05" in the report; aligned 4 decimals stay for ordinary losses."""
    from trainwise.amounts import loss_text

    assert loss_text(1.4058e-05) == "1.406e-05"
    assert loss_text(0.2040) == "0.2040" and loss_text(2.35) == "2.3500"
    assert loss_text(0.0) == "0.0000" and loss_text(float("nan")) == "nan"
