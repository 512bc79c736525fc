"""CSV dialects: a ';' or tab file is sniffed (with its decimal commas) and says so; a file
that is not UTF-8 is an error naming the line and data.encoding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainwise.data.csvfile import read_csv
from trainwise.data.errors import DataError
from trainwise.data.sources import load_data
from trainwise.data.tables import table_data


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=80), "b": rng.normal(size=80),
                         "colour": rng.choice(["red", "blue"], 80),
                         "label": rng.integers(0, 2, 80)})


@pytest.mark.parametrize(("sep", "decimal", "name"), [(";", ",", "';'"), ("\t", ".", "tab")])
def test_other_separators_are_sniffed_and_said(tmp_path, frame, sep, decimal, name):
    frame.to_csv(tmp_path / "comma.csv", index=False)
    frame.to_csv(tmp_path / "other.csv", index=False, sep=sep, decimal=decimal)
    other = load_data(str(tmp_path / "other.csv"))
    assert other.fingerprint() == load_data(str(tmp_path / "comma.csv")).fingerprint()
    np.testing.assert_array_equal(other.x[:, 0], frame["a"].to_numpy(np.float32))
    [said] = [f for f in other.findings if f.code == "csv_dialect"]
    assert (said.evidence["sep"], said.evidence["decimal"]) == (sep, decimal)
    assert f"read as {name}-separated" in said.message and "data.sep" in said.message


def test_a_comma_file_is_read_as_before(tmp_path, frame):
    frame.to_csv(tmp_path / "t.csv", index=False)
    data = load_data(str(tmp_path / "t.csv"))
    assert not data.findings and data.feature_names == ["a", "b", "colour_blue", "colour_red"]


def test_an_unclear_separator_names_the_setting(tmp_path):
    (tmp_path / "t.csv").write_text("a;label\n1;2;3\n4\n5;6;7;8\n")
    with pytest.raises(DataError, match=r"one column named 'a;label'.*data\.sep"):
        load_data(str(tmp_path / "t.csv"))


def test_a_latin1_file_names_the_line_and_the_encoding_setting(tmp_path, frame):
    frame["région"] = ["Île-de-France", "Rhône"] * 40
    frame.to_csv(tmp_path / "t.csv", index=False, encoding="latin-1")
    with pytest.raises(DataError, match=r"not utf-8 text: byte 0xe9 on line 1 .*"
                                        r"data\.encoding=latin-1"):
        load_data(str(tmp_path / "t.csv"))
    frame.loc[50, "colour"] = "rosé"  # line 52: the header, then rows 0..50
    frame.drop(columns="région").to_csv(tmp_path / "t.csv", index=False, encoding="latin-1")
    with pytest.raises(DataError, match="byte 0xe9 on line 52"):
        load_data(str(tmp_path / "t.csv"))
    data = load_data(str(tmp_path / "t.csv"), encoding="latin-1")
    assert "colour_rosé" in data.feature_names
    with pytest.raises(DataError, match="data.encoding = 'latin-9x' is not an encoding"):
        load_data(str(tmp_path / "t.csv"), encoding="latin-9x")


def test_the_config_settings_reach_the_reader(tmp_path, frame):
    from trainwise.config import load_config
    from trainwise.stages import load_configured

    frame["a"] = frame["a"].astype(object)
    frame.loc[0, "a"] = "?"
    frame.to_csv(tmp_path / "t.csv", index=False, sep="|", decimal=",", encoding="cp1252")
    config = load_config(None, [f"data.source=\"{tmp_path / 't.csv'}\"", "data.sep=\"|\"",
                                "data.decimal=\",\"", "data.encoding=\"cp1252\"",
                                "data.na_values=[\"?\"]"])
    data = load_configured(config)
    assert not data.findings and np.isnan(data.x[0, 0]) and data.x[1, 1] == np.float32(
        frame.loc[1, "b"])


def test_a_european_export_with_text_and_whole_numbers_reads_its_decimal_commas(tmp_path):
    """df.to_csv(sep=';', decimal=','): most fields are a city or a count, a few columns hold
    '82,5'; each column is judged on its own. Reference: pandas told the dialect."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"city": rng.choice(["Lyon", "Paris", "Nantes"], 80),
                          "rooms": rng.integers(1, 6, 80), "zone": rng.choice(["a", "b"], 80),
                          "surface": rng.uniform(20, 120, 80).round(1),
                          "label": rng.integers(0, 2, 80)})
    path = tmp_path / "fr.csv"
    frame.to_csv(path, sep=";", decimal=",", index=False)
    read, findings = read_csv(path)
    reference = pd.read_csv(path, sep=";", decimal=",")
    pd.testing.assert_frame_equal(read, reference)
    assert read["surface"].dtype.kind == "f"
    assert findings[0].evidence == {"sep": ";", "decimal": ","}


@pytest.fixture
def european() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    return pd.DataFrame({"Fläche, m²": rng.uniform(20, 200, 60).round(2),
                         "Stadt": rng.choice(["Köln", "Bonn"], 60),
                         "Preis": rng.uniform(50_000, 900_000, 60).round(2)})


def test_a_given_separator_still_reads_decimal_commas(tmp_path, european):
    """data.sep = ';' alone used to read '57,78' as text: a 60-class price target."""
    path = tmp_path / "eu.csv"
    european.to_csv(path, sep=";", decimal=",", index=False)
    read, findings = read_csv(path, sep=";")
    pd.testing.assert_frame_equal(read, european)
    assert findings[0].evidence["decimal"] == "," and "decimal commas" in findings[0].message
    assert load_data(str(path), target="Preis", sep=";").task == "regression"


def test_a_comma_inside_a_header_cell_does_not_fool_the_separator(tmp_path, european):
    """'Fläche, m²;Stadt;Preis' is 2 fields on ',' and 3 on ';': read as ';'-separated."""
    path = tmp_path / "eu.csv"
    european.to_csv(path, sep=";", decimal=",", index=False)
    read, findings = read_csv(path)
    pd.testing.assert_frame_equal(read, european)
    assert findings[0].evidence == {"sep": ";", "decimal": ","}
    assert "more fields on ';' than on ','" in findings[0].message


def test_thousands_dots_beside_decimal_commas_are_whole_numbers(tmp_path):
    """Excel's German format: 'Fläche' 94,45 and 'Preis' 438.278 (= 438278) in one file;
    '438.278' decided the decimal point for the whole file, and prices read 1000x too small.
    A dotted date is no number: it stays text (pandas' thousands='.' made it 4032020).
    The thousands dots are read by coltypes with the file's decimal mark, and said there."""
    path = tmp_path / "de.csv"
    path.write_text("Fläche;Preis;Datum\n94,45;650;04.03.2020\n21,68;438.278;05.03.2020\n"
                    "30,5;1.043.000;06.03.2020\n12,0;?;07.03.2020\n")
    read, findings = read_csv(path)
    np.testing.assert_array_equal(read["Fläche"], [94.45, 21.68, 30.5, 12.0])
    assert findings[0].evidence == {"sep": ";", "decimal": ","}
    data = load_data(str(path), target="Preis", task="regression")  # "?": a marker
    np.testing.assert_array_equal(data.y, np.float32([650, 438278, 1043000]))
    [note] = [f for f in data.findings if f.code == "numbers_from_text"]
    assert note.evidence["removed"] == "thousands separators '.'"
    assert "data.decimal = \".\"" in note.fix
    data = load_data(str(path), target="Fläche", task="regression")
    np.testing.assert_array_equal(data.x[:, 0], np.float32([650, 438278, 1043000, np.nan]))
    assert data.feature_names == ["Preis"] and data.columns[2]["read_as"] == "date"


def test_a_text_cell_in_a_decimal_comma_amount_column_is_said_as_in_a_decimal_point_file(
        tmp_path):
    """One 'n.v.' among '12.345,67' prices: the ';' file's own number reader skipped the
    column unless every cell read, and coltypes then read it with a decimal point, so the
    column silently became an identifier. Now one parser with the file's decimal mark: the
    same warning naming 'n.v.' as for the '12,345.67' file."""
    rng = np.random.default_rng(0)
    amounts = rng.uniform(1000, 90000, 200)
    points = [f"{v:,.2f}" for v in amounts]
    commas = [v.replace(",", "_").replace(".", ",").replace("_", ".") for v in points]
    found = {}
    for sep, decimal, prices in ((",", ".", points), (";", ",", commas)):
        prices[5] = "n.v."
        frame = pd.DataFrame({"a": rng.normal(size=200), "price": prices,
                              "label": rng.integers(0, 2, 200)})
        path = tmp_path / f"prices{sep}.csv"
        frame.to_csv(path, sep=sep, decimal=decimal, index=False)
        data = load_data(str(path), target="label")
        [found[decimal]] = [f for f in data.findings if f.code == "text_in_numeric_column"]
    assert found[","].evidence == found["."].evidence
    assert found[","].evidence["values"] == {"n.v.": 1}
    frame = pd.DataFrame({"price": commas, "label": [0, 1] * 100})  # the same in memory
    data = table_data(frame.assign(price=frame["price"].where(frame.index != 5)), "label",
                      decimal=",")
    expected = np.float32(amounts.round(2))
    expected[5] = np.nan
    np.testing.assert_array_equal(data.x[:, 0], expected)


@pytest.mark.parametrize(("encoding", "sep"), [("utf-16", ","), ("utf-16", "\t"),
                                               ("utf-32", ",")])
def test_a_byte_order_mark_names_the_encoding(tmp_path, frame, encoding, sep):
    """Excel's 'Unicode Text' (UTF-16, tabs) was refused with advice to use latin-1, which
    read the header as 'ÿþa' and ' l a b e l ' (audit s14 Z14)."""
    frame.to_csv(tmp_path / "plain.csv", index=False)
    frame.to_csv(tmp_path / "wide.csv", index=False, sep=sep, encoding=encoding)
    wide, _ = read_csv(tmp_path / "wide.csv")
    pd.testing.assert_frame_equal(wide, pd.read_csv(tmp_path / "plain.csv"))
