"""CSV dialects: a ';' or tab file is sniffed (with its decimal commas) and says so; a file
that is not UTF-8 is an error naming the line and data.encoding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainwise.data.csvfile import read_csv
from trainwise.data.errors import DataError
from trainwise.data.sources import load_data


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
