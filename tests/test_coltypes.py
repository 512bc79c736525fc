"""Column typing: number columns with a few missing-value markers stay numbers, with a warning
that names the markers; text stays text; a mostly-numeric column is never a key."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainwise.data.audit import audit
from trainwise.data.keys import plan_keys
from trainwise.data.sources import load_data
from trainwise.data.tables import table_data


@pytest.fixture
def markers(tmp_path):
    """800 rows as gen4.py of the audit writes them: 5 ages 'unknown', 15 incomes '?'."""
    rng = np.random.default_rng(4)
    n = 800
    frame = pd.DataFrame({"age": rng.integers(18, 80, n).astype(object),
                          "income": rng.gamma(2, 20000, n).round(0).astype(object),
                          "label": rng.integers(0, 2, n)})
    frame.loc[rng.choice(n, 15, replace=False), "income"] = "?"
    frame.loc[rng.choice(n, 5, replace=False), "age"] = "unknown"
    path = tmp_path / "markers.csv"
    frame.to_csv(path, index=False)
    return path


def test_markers_become_missing_numbers_with_a_warning(markers):
    raw = pd.read_csv(markers)
    assert raw["income"].dtype.kind not in "if"  # what pandas alone makes of it: text
    data = load_data(str(markers))
    assert data.feature_names == ["age", "income"] and data.keys == []
    expected = pd.to_numeric(raw["income"], errors="coerce").to_numpy(np.float32)
    np.testing.assert_array_equal(data.x[:, 1], expected)  # NaN where '?', equal elsewhere
    assert int(np.isnan(data.x[:, 1]).sum()) == 15 and int(np.isnan(data.x[:, 0]).sum()) == 5
    by_column = {f.evidence["column"]: f for f in data.findings
                 if f.code == "text_in_numeric_column"}
    assert by_column["income"].evidence["values"] == {"?": 15}
    assert "'?' x15" in by_column["income"].message
    assert "data.na_values" in by_column["income"].fix
    assert by_column["age"].evidence["values"] == {"unknown": 5}
    findings, _ = audit(data)  # loading's findings reach the audit, so the run shows them
    assert {f.code for f in findings} >= {"text_in_numeric_column"}


def test_declared_na_values_are_read_as_missing_without_a_warning(markers):
    data = load_data(str(markers), na_values=("?", "UNKNOWN"))  # any case, like the markers
    assert data.feature_names == ["age", "income"]
    assert not any(f.code == "text_in_numeric_column" for f in data.findings)
    assert int(np.isnan(data.x).sum()) == 20
    raw = pd.read_csv(markers)  # numbers, not codes of their text ('100000' < '9000')
    np.testing.assert_array_equal(data.x[:, 1], pd.to_numeric(raw["income"], errors="coerce"))


def test_common_markers_do_not_count_against_the_numeric_share():
    values = [str(v) for v in range(70)] + ["?"] * 30  # 30% markers: still a number column
    frame = pd.DataFrame({"size": values, "label": [0, 1] * 50})
    data = table_data(frame, "label")
    assert data.feature_names == ["size"] and int(np.isnan(data.x).sum()) == 30


def test_text_with_more_than_a_tenth_of_words_stays_text():
    values = [str(v % 5) for v in range(85)] + ["large"] * 15  # 85% numbers: below 90%
    frame = pd.DataFrame({"size": values, "label": [0, 1] * 50})
    data = table_data(frame, "label")
    assert "size_large" in data.feature_names  # one-hot: read as categories
    # said since audit s12 K4: from 50% numbers up, the text cells are named
    assert [(f.code, f.evidence["values"]) for f in data.findings] == [
        ("text_in_numeric_column", {"large": 15})]


def test_all_numeric_text_is_left_as_the_user_stored_it():
    frame = pd.DataFrame({"zip": pd.array(["02134", "10001"] * 50, dtype=object),
                          "label": [0, 0, 1, 1] * 25})  # not [0, 1] * 50: a copy of zip
    data = table_data(frame, "label")
    assert data.feature_names == ["zip_02134", "zip_10001"] and not data.findings


def test_a_mostly_numeric_text_column_is_never_a_key():
    rng = np.random.default_rng(0)
    ages = rng.integers(18, 80, 400).astype(object)  # 62 repeated values: would pass as a key
    ages[:4] = "unknown"
    frame = pd.DataFrame({"age": ages.astype(str), "label": rng.integers(0, 2, 400)})
    assert plan_keys(frame, "label").keys == []
    words = frame.assign(age="w" + frame["age"])  # the same values as words: a subject key
    assert [k.column for k in plan_keys(words, "label").keys] == ["age"]


def test_real_text_among_numbers_is_kept_as_text_with_a_warning():
    """'A3' among product codes, 'online' among store numbers: values, not markers. The
    column stays text (nothing emptied), and a declared key is never touched."""
    from trainwise.data.coltypes import coerce_numeric_text

    codes = [str(v % 40) for v in range(95)] + ["A3", "B7", "C1", "A3", "B7"]
    frame = pd.DataFrame({"product_code": codes, "label": [0, 1] * 50})
    read, findings = coerce_numeric_text(frame)
    pd.testing.assert_frame_equal(read, frame)  # no cell emptied, the codes still text
    (kept,) = [f for f in findings if f.code == "text_in_numeric_column"]
    assert kept.evidence["kept_as_text"] and kept.evidence["values"] == {"A3": 2, "B7": 2,
                                                                        "C1": 1}
    assert "kept as text" in kept.message and "data.na_values" in kept.fix
    stores = pd.DataFrame({"store": [str(v % 59 + 1) for v in range(570)] + ["online"] * 30,
                           "x": np.arange(600.0), "label": [0, 1] * 300})
    split_by_store = table_data(stores, "label", group_column="store")
    assert split_by_store.groups is not None
    assert not pd.isna(split_by_store.groups).any()  # 'online' is a group like '12'
    assert set(split_by_store.groups) >= {"online", "12"}
    unknown = stores.assign(store=stores["store"].replace("online", "unknown"))  # a marker
    assert "unknown" in set(table_data(unknown, "label", group_column="store").groups)


def test_numeric_ids_with_a_few_letter_ids_are_still_a_key():
    rng = np.random.default_rng(1)
    ids = rng.integers(1000, 1100, 600).astype(str).astype(object)  # repeated customers
    ids[:30] = "X" + ids[:30]
    frame = pd.DataFrame({"ref": ids, "label": rng.integers(0, 2, 600)})  # no id word
    assert [k.column for k in plan_keys(frame, "label").keys] == ["ref"]


def test_thousands_currency_and_percent_text_is_read_as_numbers_with_a_note():
    """Excel's '1,576', '$1,311.22', '5.3%': one-hot or a row id before; numbers now, the
    values those cells mean, and a note naming the column and what was removed."""
    rng = np.random.default_rng(0)
    area, fee = rng.uniform(500, 5000, 200).round(0), rng.uniform(1, 3000, 200).round(2)
    rate = rng.uniform(0, 10, 200).round(1)
    frame = pd.DataFrame({"area": [f"{v:,.0f}" for v in area],
                          "fee": [f"${v:,.2f}" for v in fee], "rate": [f"{v}%" for v in rate],
                          "label": rng.integers(0, 2, 200)})
    frame.loc[3, "fee"] = "?"  # a marker among amounts: missing, and said as before
    data = table_data(frame, "label")
    assert data.feature_names == ["area", "fee", "rate"]
    np.testing.assert_array_equal(data.x[:, 0], area.astype(np.float32))
    expected_fee = fee.astype(np.float32)
    expected_fee[3] = np.nan
    np.testing.assert_array_equal(data.x[:, 1], expected_fee)
    np.testing.assert_array_equal(data.x[:, 2], rate.astype(np.float32))  # 5.3% -> 5.3
    notes = {f.evidence["column"]: f for f in data.findings if f.code == "numbers_from_text"}
    assert set(notes) == {"area", "fee", "rate"}
    assert "currency '$' and thousands separators ','" in notes["fee"].message
    assert "199 values like" in notes["fee"].message
    assert "'%'" in notes["rate"].message and "not 0.053" in notes["rate"].message
    markers = [f for f in data.findings if f.code == "text_in_numeric_column"]
    assert [f.evidence["values"] for f in markers] == [{"?": 1}]


def test_a_currency_target_is_a_regression_not_one_class_per_row():
    rng = np.random.default_rng(1)
    price = np.exp(rng.normal(11, 0.8, 150)).round(2)
    frame = pd.DataFrame({"x": rng.normal(size=150), "price": [f"${v:,.2f}" for v in price]})
    data = table_data(frame, "price")
    assert data.task == "regression" and data.class_names == []
    np.testing.assert_allclose(data.y, price.astype(np.float32))


@pytest.mark.parametrize(("cells", "decimal", "expected"), [
    (["$1,234.50", "-$5", "$ 12", "$-0.5", None], ".", [1234.5, -5.0, 12.0, -0.5, np.nan]),
    (["48.033,28\u00a0€", "1,5 €", "-2.000 €"], ",", [48033.28, 1.5, -2000.0]),
    (["5.3%", "12 %", "+0.5%"], ".", [5.3, 12.0, 0.5]),
    (["1,576", "12", "abc"], ".", [1576.0, 12.0, np.nan]),
])
def test_formatted_numbers_read_as_written(cells, decimal, expected):
    """Hand-read values: sign before or after the symbol, no-break spaces, '%' as written."""
    from trainwise.data.numtext import read_formatted

    formatted = read_formatted(pd.Series(cells, dtype="str"), decimal=decimal)
    np.testing.assert_array_equal(formatted.numbers.to_numpy(), np.array(expected))


def test_200k_formatted_cells_are_read_in_under_two_seconds():
    """read_formatted ran a named-group str.extract, which pandas loops over in Python: 6 s
    per 200k '$74,817' cells (30 s per 1M); whole-column pyarrow kernels take ~0.3 s."""
    import time

    from trainwise.data.numtext import read_formatted

    values = np.random.default_rng(0).integers(1, 200_000, 200_000)
    cells = pd.Series([f"${v:,}" for v in values], dtype="str")
    start = time.perf_counter()
    formatted = read_formatted(cells)
    assert time.perf_counter() - start < 2.0
    np.testing.assert_array_equal(formatted.numbers.to_numpy(), values.astype(np.float64))


@pytest.mark.parametrize(("cells", "decimal"), [
    (["02134", "10001", "1,234"], "."),  # zip codes with one grouped cell: '02134' no number
    (["$5.00", "€7.00", "$1,200.00"], "."),  # two currencies: not one column of amounts
    (["5%", "0.05", "12%"], "."),  # a percent sign on some cells only
    # one dotted date among 29 thousands-dot numbers of a decimal-comma file: past
    # NUMERIC_SHARE, so only the thousands-groups rule keeps the date from reading 14032020
    (["14.03.2020", *[f"{k}.{500 + k:03d}" for k in range(1, 30)]], ","),
])
def test_inconsistent_number_formats_are_left_as_text(cells, decimal):
    from trainwise.data.coltypes import coerce_numeric_text

    frame = pd.DataFrame({"code": cells * (90 // len(cells)), "label": [0, 1, 1] * 30})
    read, findings = coerce_numeric_text(frame, decimal=decimal)
    assert read["code"].tolist() == frame["code"].tolist()
    assert not any(f.code == "numbers_from_text" for f in findings)




def test_marker_cells_in_a_text_target_are_missing_not_classes():
    """12 '?' and 6 '-' diagnoses were two classes of their own (balanced accuracy 47%)."""
    rng = np.random.default_rng(3)
    diagnosis = rng.choice(["benign", "malignant"], 300).astype(object)
    diagnosis[:12], diagnosis[12:18] = "?", "-"
    frame = pd.DataFrame({"x": rng.normal(size=300), "diagnosis": diagnosis})
    data = table_data(frame, "diagnosis")
    assert data.class_names == ["benign", "malignant"] and len(data.y) == 282
    # one warning for those rows, naming the markers (VD5: target_markers said it twice)
    [said] = [f for f in data.findings if f.severity.value == "warning"]
    assert said.code == "target_missing" and said.evidence["values"] == {"?": 12, "-": 6}
    assert "missing-value markers" in said.message
    declared = table_data(frame, "diagnosis", na_values=("?", "-"))  # declared: the same
    assert len(declared.y) == 282
    words = frame.assign(diagnosis=frame["diagnosis"].replace({"?": "unknown", "-": "benign"}))
    kept = table_data(words, "diagnosis")  # a word may be a real class: kept, warned about
    assert kept.class_names == ["benign", "malignant", "unknown"]
    assert [f.evidence["values"] for f in kept.findings if f.code == "text_markers"] == [
        {"unknown": 12}]


def test_every_marker_is_either_missing_or_warned_about_in_a_target():
    """One marker list: a marker added to coltypes' list reaches the target rule too (the
    target kept its own copy, minus the words, typed out again). Words may be real classes:
    warned about; every other marker is read as missing."""
    from trainwise.data.coltypes import COMMON_MARKERS, WORD_MARKERS
    from trainwise.data.markers import mask_target_markers

    for marker in sorted(COMMON_MARKERS - {""}):
        frame = pd.DataFrame({"y": ["a", "b"] * 10 + [marker.upper()]})
        masked, said = mask_target_markers(frame, "y")
        word = marker in WORD_MARKERS  # else: named by target_missing when its row is dropped
        assert [f.code for f in said] == (["text_markers"] if word else []), marker
        assert masked["y"].isna().sum() == (0 if word else 1), marker


def test_a_dropped_identifier_gets_no_kept_as_a_category_note():
    """300 'C00001' ids with one '?': dropped as an identifier, and yet text_markers said the
    '?' was "kept as a category of its own". The level notes are for categories only."""
    rng = np.random.default_rng(0)
    ids = np.array([f"C{i:05d}" for i in range(300)], dtype=object)
    ids[0] = "?"
    colour = rng.choice(["red", "blue"], 300).astype(object)
    colour[:4] = "?"
    frame = pd.DataFrame({"customer_id": ids, "colour": colour, "x": rng.normal(size=300),
                          "label": rng.integers(0, 2, 300)})
    data = table_data(frame, "label")
    assert [f.evidence["column"] for f in data.findings if f.code == "row_id_dropped"] == [
        "customer_id"]
    assert [f.evidence["column"] for f in data.findings if f.code == "text_markers"] == [
        "colour"]


def test_markers_and_case_variants_in_a_text_feature_are_said():
    rng = np.random.default_rng(4)
    garage = rng.choice(["yes", "no"], 200).astype(object)
    garage[:10], garage[10:15] = "?", "-"
    smoker = rng.choice(["yes", "Yes", "no", "NO "], 200)
    frame = pd.DataFrame({"garage": garage, "smoker": smoker, "label": rng.integers(0, 2, 200)})
    data = table_data(frame, "label")
    [markers] = [f for f in data.findings if f.code == "text_markers"]
    assert markers.evidence == {"column": "garage", "values": {"?": 10, "-": 5}}
    assert 'data.na_values=["?", "-"]' in markers.fix
    [variants] = [f for f in data.findings if f.code == "lookalike_levels"]
    assert variants.evidence["column"] == "smoker"
    assert sorted(map(sorted, variants.evidence["groups"])) == [["NO ", "no"], ["Yes", "yes"]]


def test_a_total_footer_row_is_named_with_its_row():
    """Excel's 'Total,,<sum>' last line made 'sqm' text without saying where."""
    from trainwise.data.coltypes import coerce_numeric_text

    rng = np.random.default_rng(5)
    sqm = rng.uniform(30, 90, 50).round(1)
    frame = pd.DataFrame({"sqm": [*map(str, sqm), "Total"], "price": [*sqm * 3000, 9e6]})
    _, [said] = coerce_numeric_text(frame)
    assert said.evidence["rows"] == [50] and said.evidence["summary_row"]
    assert "at row 50" in said.message and "summary row" in said.message
    assert "Delete the summary row" in said.fix
    frame.loc[10, "sqm"] = "Total"  # not at the end: a value, said with its rows as before
    _, [said] = coerce_numeric_text(frame)
    assert said.evidence["rows"] == [10, 50] and "summary_row" not in said.evidence


def test_text_cells_are_named_by_row_position_not_index_label():
    """A filtered frame (index 100..149) with text at position 10 was said to hold it "at row
    110 (counted from 0 after the header)": an index label, called a position."""
    from trainwise.data.coltypes import coerce_numeric_text

    sqm = [str(v) for v in np.random.default_rng(0).uniform(1, 9, 50).round(1)]
    sqm[10] = "abc"
    frame = pd.DataFrame({"sqm": sqm}, index=range(100, 150))
    _, [said] = coerce_numeric_text(frame)
    assert said.evidence["rows"] == [10] and "at row 10 " in said.message


def mixed_frame(num_words: int) -> pd.DataFrame:
    """600 rows as the audit's strings.csv (s12 K4): floats, `num_words` cells a word."""
    rng = np.random.default_rng(0)
    mixed = rng.normal(0, 1, 600).round(3).astype(object)
    mixed[rng.choice(600, num_words, replace=False)] = rng.choice(["low", "high", "medium"],
                                                                  num_words)
    return pd.DataFrame({"mixed": mixed, "x": rng.normal(size=600),
                         "label": rng.integers(0, 2, 600)})


@pytest.mark.parametrize("decimal", [".", ","])  # ',': '0,123' as a ';' file writes it
@pytest.mark.parametrize("num_words", [150, 290])  # 75% and 52% numbers
def test_mostly_numbers_with_words_is_warned_and_not_called_a_group_key(num_words, decimal):
    """Below 90% numbers a column of floats with words was one-hot encoded in silence, and
    rare_levels_grouped advised making it a group key (audit s12 K4); with a decimal comma
    the advice came back, its share of numbers read with '.' as 0% (review VD3)."""
    frame = mixed_frame(num_words)
    words = frame["mixed"][frame["mixed"].map(lambda v: isinstance(v, str))].value_counts()
    if decimal == ",":
        frame["mixed"] = frame["mixed"].map(lambda v: str(v).replace(".", ","))
    data = table_data(frame, "label", decimal=decimal)
    (kept,) = [f for f in data.findings if f.code == "text_in_numeric_column"]
    assert kept.evidence["values"] == {str(k): int(v) for k, v in words.items()}
    assert kept.evidence["num_text"] == num_words
    assert f"({600 - num_words:,} cells" in kept.message
    if num_words == 150:  # at 52% numbers the column is inferred a group key (keys.py)
        (grouped,) = [f for f in data.findings if f.code == "rare_levels_grouped"]
        assert "group_column" not in grouped.fix and "text_in_numeric_column" in grouped.fix
        assert grouped.fix.startswith("75% of its cells are numbers")


def test_under_half_numbers_is_text_and_zip_codes_keep_the_group_advice():
    words = mixed_frame(400)  # 33% numbers: text with some numbers, no warning
    assert not any(f.code == "text_in_numeric_column"
                   for f in table_data(words, "label").findings)
    zips = pd.DataFrame({"zip": [f"{v % 100:05d}" for v in range(600)],  # all numbers
                         "x": np.arange(600.0), "label": [0, 1] * 300})
    (many,) = [f for f in table_data(zips, "label").findings if f.code == "rare_levels_grouped"]
    assert "group_column" in many.fix


def test_levels_that_differ_in_punctuation_are_lookalikes():
    """'N.Y.' / 'NY', 'new-york' / 'New York', 'Boston.' / 'Boston' were one-hot levels of
    their own without a word (audit s12 K7: deepchecks' StringMismatch key)."""
    from trainwise.data.markers import text_level_findings

    spellings = ["New York", "new-york", "N.Y.", "NY", "Boston", "Boston.", "LA"]
    city = [spellings[i % 7] for i in range(700)]  # 100 rows each
    [found] = text_level_findings(pd.DataFrame({"city": city}), [])
    assert found.code == "lookalike_levels" and found.severity.value == "warning"
    assert sorted(map(sorted, found.evidence["groups"])) == [
        ["Boston", "Boston."], ["N.Y.", "NY"], ["New York", "new-york"]]
    assert found.evidence["num_rows"] == 300  # one spelling of each pair is the other's variant
    rare = ["Boston"] * 995 + ["Boston."] * 5 + ["LA"] * 300  # 5 of 1300 rows: a note
    [note] = text_level_findings(pd.DataFrame({"city": rare}), [])
    assert note.severity.value == "info" and note.evidence["num_rows"] == 5
    signs = pd.DataFrame({"code": ["-0.5", "0.5", "1.5", "15", "a"] * 20})
    assert text_level_findings(signs, []) == []  # different numbers, not spellings


def test_signs_that_carry_meaning_are_not_lookalikes():
    """'A+' / 'A-' (blood types) and 'BBB+' / 'BBB' / 'BBB-' (ratings) are different values;
    stripping every punctuation mark warned on 17.7% of a blood-type column (review VD2).
    Separators that do not change meaning still group: 'N.Y.' / 'NY', 'new-york' / 'New York',
    'Boston_MA' / 'Boston MA'; a '.' between digits is kept ('v1.5' / 'v15')."""
    from trainwise.data.markers import case_groups, text_level_findings

    blood = ["O+", "O-", "A+", "A-", "B+", "B-", "AB+", "AB-", "BBB+", "BBB", "BBB-"]
    frame = pd.DataFrame({"blood": [blood[i % 11] for i in range(1100)]})
    assert text_level_findings(frame, []) == []
    cities = ["N.Y.", "NY", "new-york", "New York", "Boston_MA", "Boston MA", "v1.5", "v15"]
    counts = pd.Series(range(8, 0, -1), index=cities)
    assert sorted(map(sorted, case_groups(counts, punctuation=True))) == [
        ["Boston MA", "Boston_MA"], ["N.Y.", "NY"], ["New York", "new-york"]]


def test_a_separator_between_spaces_still_groups_and_a_dash_beside_a_digit_does_not():
    """review s12 F6: one pass kept 'new - york' apart from 'New York' (its '-' sat between
    spaces, not letters). 'COVID-19' / 'COVID19' stay apart: a '-' beside a digit may be a
    minus sign ('x-1' / 'x1'), and the rule keeps what it cannot tell."""
    from trainwise.data.markers import case_groups

    values = ["New York", "new - york", "NY", "N.Y.", "A+", "A-", "A +", "COVID-19",
              "COVID19", "e-mail", "email", "new_/_york"]
    counts = pd.Series(range(len(values), 0, -1), index=values)
    assert sorted(map(sorted, case_groups(counts, punctuation=True))) == [
        ["A +", "A+"], ["N.Y.", "NY"], ["New York", "new - york", "new_/_york"],
        ["e-mail", "email"]]


def test_lookalike_levels_are_flagged_in_the_audit_summary():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"city": rng.choice(["NY", "N.Y.", "Boston"], 300),
                          "x": rng.normal(size=300), "label": rng.integers(0, 2, 300)})
    findings, _ = audit(frame, target="label")
    assert "lookalike_levels" in findings[-1].evidence["flagged"]
