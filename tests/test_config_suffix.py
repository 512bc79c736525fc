"""A data file of a suffix trainwise does not read, given where a config goes, is refused as
what it is, not parsed as TOML (audit s14 Z1)."""

import gzip

import pytest

from trainwise.config import ConfigError, load_config


@pytest.mark.parametrize("name, said", [
    ("t.csv.gz", "gunzip -k"),  # was: "is not UTF-8 text; save it as UTF-8"
    ("t.tsv", "rename (or copy) it to t.csv"),  # was: "is not valid TSV: Expected '='"
    ("t.txt", "rename (or copy) it to t.csv"),
    ("t.xlsx", "save the sheet as CSV"),
])
def test_data_suffixes_are_not_configs(tmp_path, name, said):
    path = tmp_path / name
    text = b"a\tlabel\n1\tx\n2\ty\n"
    path.write_bytes(gzip.compress(text) if name.endswith(".gz") else text)
    with pytest.raises(ConfigError, match="neither a config nor a data file") as caught:
        load_config(path)
    assert said in str(caught.value) and "TOML" not in str(caught.value)


def test_configs_still_read(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("train:\n  max_epochs: 3\n")
    assert load_config(path).train.max_epochs == 3
