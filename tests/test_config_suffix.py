"""A data file of a suffix trainwise does not read, given where a config goes, is refused as
what it is, not parsed as TOML (audit s14 Z1)."""

import gzip

import pytest

from trainwise.config import ConfigError, load_config


@pytest.mark.parametrize("name, said", [
    ("t.csv.zst", "a CSV file compressed as .zst"),  # was: "is not UTF-8 text; save it as UTF-8"
    ("t.tar.gz", "tar -xf"),  # VD6: gunzip left a .tar
    ("t.json.bz2", "bunzip2 -k"),
    ("t.tab", "rename (or copy) it to t.csv"),  # was: "is not valid TAB: Expected '='"
    ("t.xlsx", "save the sheet as CSV"),
])
def test_data_suffixes_are_not_configs(tmp_path, name, said):
    path = tmp_path / name
    text = b"a\tlabel\n1\tx\n2\ty\n"
    path.write_bytes(gzip.compress(text) if name.endswith(".gz") else text)
    with pytest.raises(ConfigError, match="neither a config nor a data file") as caught:
        load_config(path)
    assert said in str(caught.value) and "TOML" not in str(caught.value)


@pytest.mark.parametrize("name", ["t.csv.gz", "t.CSV.BZ2", "t.tsv", "t.txt", "t.tsv.xz"])
def test_text_tables_are_data(tmp_path, name):
    """A tab export and a compressed CSV are read as data.source (tests/test_compressed_tables
    reads them), no longer refused with "decompress it" / "rename it" (audit s14 Z1 rest)."""
    path = tmp_path / name
    path.write_bytes(b"a\tlabel\n1\tx\n2\ty\n")
    assert load_config(path).data.source == str(path)
    with pytest.raises(ConfigError, match="does not exist"):  # said before a run folder is made
        load_config(tmp_path / f"missing_{name}")


def test_configs_still_read(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("train:\n  max_epochs: 3\n")
    assert load_config(path).train.max_epochs == 3


@pytest.mark.parametrize("name, command", [
    ("t.csv.zst", "zstd -d"), ("t.json.xz", "unxz -k"), ("t.json.zip", "unzip")])
def test_each_compression_gets_its_own_command(tmp_path, name, command):
    # VD6: a .csv.zst was told `gunzip -k`, which cannot read zstd ("unknown suffix")
    path = tmp_path / name
    path.write_bytes(b"\x28\xb5\x2f\xfd")
    with pytest.raises(ConfigError, match="neither a config nor a data file") as caught:
        load_config(path)
    assert f"`{command} {path}`" in str(caught.value)
    assert "gunzip" not in str(caught.value)


@pytest.mark.parametrize("name", ["run.conf", "run.cfg", "run.ini", "run"])
def test_toml_configs_of_other_suffixes_still_read(tmp_path, name):
    # VD6: a TOML config named .conf/.cfg/.ini loaded before the Z1 refusal, then was refused
    path = tmp_path / name
    path.write_text("[train]\nmax_epochs = 3\n")
    assert load_config(path).train.max_epochs == 3
    path.write_text("[train\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(path)


@pytest.mark.parametrize("name", ["x.npy", "x.pkl", "x.tgz"])
def test_a_binary_file_of_another_kind_is_not_told_to_be_saved_as_utf8(tmp_path, name):
    # final review s14 VF4: "not UTF-8 text; save it as UTF-8" for a file that is fine
    path = tmp_path / name
    path.write_bytes(b"\x93NUMPY\x01\x00\xff\xfe binary")
    with pytest.raises(ConfigError, match="neither a config nor a data file") as caught:
        load_config(path)
    assert "save it as UTF-8" not in str(caught.value)
    config = tmp_path / "c.toml"
    config.write_bytes(b"\xff\xfe[train]")
    with pytest.raises(ConfigError, match="not UTF-8 text; save it as UTF-8"):
        load_config(config)


@pytest.mark.parametrize("name, stem", [
    ("sales.csv.gz", "sales"), ("gz.csv.gz", "gz"), ("T.TSV.BZ2", "T"), ("d.txt", "d"),
    ("x.parquet", "x"), ("arrays.npz", "arrays"), ("notes.json.xz", "notes.json"),
    ("my.data.csv", "my.data"), ("imgs", "imgs")])
def test_a_run_is_named_after_its_file_without_the_table_and_compression_suffixes(name, stem):
    """Review s14: a run of gz.csv.gz was named 'gz.csv' (Path.stem drops '.gz' only)."""
    from pathlib import Path

    from trainwise.config_sections import data_stem

    assert data_stem(Path("/data") / name) == stem
