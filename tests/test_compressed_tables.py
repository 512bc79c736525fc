"""A compressed CSV (.csv.gz/.bz2/.zip/.xz, which pandas reads by suffix) and a tab export
(.tsv, .txt) read to the same table as the plain CSV, with the same sniffed dialect: the
sniffers read the file's bytes themselves, so they must see them decompressed (audit s14 Z1)."""

from __future__ import annotations

import bz2
import gzip
import lzma
import zipfile

import numpy as np
import pandas as pd
import pytest

from trainwise.data.errors import DataError
from trainwise.data.sources import load_data
from trainwise.data.tables import read_table

COMPRESS = {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=60).round(3), "städte": rng.choice(
        ["Köln", "Zürich"], 60), "label": rng.choice(["yes", "no"], 60)})


def _write(path, text: bytes, kind: str) -> None:
    if kind == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("inner.csv", text)
    else:
        path.write_bytes(COMPRESS[kind](text))


@pytest.mark.parametrize("kind", ["gz", "bz2", "xz", "zip"])
@pytest.mark.parametrize(("sep", "decimal", "encoding"), [
    (",", ".", "utf-8"), (";", ",", "latin-1"), ("\t", ".", "utf-16")])
def test_a_compressed_csv_reads_as_the_plain_one(tmp_path, frame, kind, sep, decimal,
                                                 encoding):
    """';' with decimal commas, latin-1 ('Köln' as byte 0xf6) and a UTF-16 byte-order mark are
    all sniffed from the file's bytes: on the raw gzip they gave "byte 0x8b on line 1"."""
    frame.to_csv(tmp_path / "plain.csv", index=False)
    text = frame.to_csv(index=False, sep=sep, decimal=decimal).encode(encoding)
    _write(tmp_path / f"t.csv.{kind}", text, kind)
    plain, _ = read_table(tmp_path / "plain.csv")
    packed, findings = read_table(tmp_path / f"t.csv.{kind}",
                                  encoding="latin-1" if encoding == "latin-1" else "")
    pd.testing.assert_frame_equal(packed, plain)
    assert [f.evidence["sep"] for f in findings if f.code == "csv_dialect"] == (
        [] if sep == "," else [sep])


@pytest.mark.parametrize("name", ["t.tsv", "t.txt", "T.TSV.GZ"])
def test_a_tab_export_reads_as_the_csv(tmp_path, frame, name):
    frame.to_csv(tmp_path / "plain.csv", index=False)
    text = frame.to_csv(index=False, sep="\t").encode()
    (tmp_path / name).write_bytes(gzip.compress(text) if name.endswith(".GZ") else text)
    plain, tabbed = load_data(str(tmp_path / "plain.csv")), load_data(str(tmp_path / name))
    assert tabbed.fingerprint() == plain.fingerprint()
    np.testing.assert_array_equal(tabbed.x, plain.x)
    assert any(f.code == "csv_dialect" and "tab-separated" in f.message
               for f in tabbed.findings)


def test_a_duplicate_header_inside_a_gzip_is_named(tmp_path):
    (tmp_path / "d.csv.gz").write_bytes(gzip.compress(b"a,a,label\n1,2,x\n3,4,y\n"))
    _, findings = read_table(tmp_path / "d.csv.gz")
    assert [f.evidence["names"] for f in findings if f.code == "duplicate_column_names"] == [
        ["a"]]


def test_a_zip_of_two_files_names_them(tmp_path):
    with zipfile.ZipFile(tmp_path / "two.csv.zip", "w") as archive:
        archive.writestr("one.csv", "a,label\n1,x\n")
        archive.writestr("two.csv", "a,label\n1,x\n")
    with pytest.raises(DataError, match=r"holds 2 files \(one.csv, two.csv\).*Unzip it"):
        read_table(tmp_path / "two.csv.zip")


def test_a_zip_made_with_zip_r_reads_its_one_csv(tmp_path):
    # VD12: a folder entry ('export/') passed the one-file check, then pandas counted it and
    # failed: "Multiple files found in ZIP file ... Is it a valid .zip file?"
    with zipfile.ZipFile(tmp_path / "dir.csv.zip", "w") as archive:
        archive.writestr("export/", "")
        archive.writestr("export/data.csv", "a,label\n1,x\n2,y\n3,x\n")
    frame, _ = read_table(tmp_path / "dir.csv.zip", target="label")
    assert frame.to_dict("list") == {"a": [1, 2, 3], "label": ["x", "y", "x"]}


def test_a_spreadsheet_is_refused_with_save_as_csv(tmp_path):
    (tmp_path / "t.xlsx").write_bytes(b"PK\x03\x04")
    with pytest.raises(DataError, match="save the sheet as CSV"):
        load_data(str(tmp_path / "t.xlsx"))


def test_one_list_of_compressions_and_one_phrase_for_what_is_read(tmp_path):
    # VD8: three suffix lists and five messages had drifted (predict named .csv.gz alone)
    from types import SimpleNamespace

    from trainwise.config import ConfigError, load_config
    from trainwise.config_sections import COMPRESSIONS, READABLE_DATA, TABLE_FILES
    from trainwise.data.compressed import OPENERS
    from trainwise.prediction import _refuse_unread

    assert set(OPENERS) | {".zip"} == set(COMPRESSIONS)  # .zip is opened apart
    assert all(s in TABLE_FILES for s in (*COMPRESSIONS, ".tsv", ".txt", ".parquet"))
    with pytest.raises(ConfigError) as missing:
        load_config(tmp_path / "nosuch.toml")
    with pytest.raises(DataError) as unknown:
        load_data("nosuch")
    (tmp_path / "new.doc").write_bytes(b"")
    with pytest.raises(DataError) as unread:
        _refuse_unread(tmp_path / "new.doc", SimpleNamespace(kind="table"))
    assert READABLE_DATA in str(missing.value) and READABLE_DATA in str(unknown.value)
    assert TABLE_FILES in str(unread.value)


@pytest.mark.parametrize("raised", [MemoryError(), pd.errors.ParserError(
    "Error tokenizing data. C error: out of memory")])
def test_running_out_of_memory_says_so_with_the_size_not_an_invalid_file(
        tmp_path, monkeypatch, raised):
    """Audit s16 S7: a valid 1.5 MB .csv.gz expanding to 1.5 GiB ran out of memory and was
    told "could not read ...: . Is it a valid .gz file?" (an empty MemoryError text)."""
    import trainwise.data.tables as tables

    def out_of_memory(*args, **kwargs):
        raise raised

    text = b"x,y\n" + b"0,1\n" * 1_500_000  # 6 MB of text, a few KB gzipped
    path = tmp_path / "big.csv.gz"
    path.write_bytes(gzip.compress(text))
    monkeypatch.setattr(tables, "read_csv", out_of_memory)
    with pytest.raises(DataError) as caught:
        read_table(path, target="y")
    message = str(caught.value)
    assert "valid" not in message
    assert message.startswith(f"ran out of memory reading '{path}' (it holds at least "
                              f"{len(text) / 1e6:,.0f} MB uncompressed, "
                              f"{path.stat().st_size / 1e6:,.1f} MB on disk)")
    # 1.5 million lines of 4 bytes: 100,000 of them is a share of 0.067
    assert f"`zcat {path} | awk 'BEGIN {{ srand(1) }} NR == 1 || rand() < 0.067'" in message
    assert "trainwise.audit_parquet" in message
    zipped = tmp_path / "big.csv.zip"  # a .zip records its member's size exactly
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.csv", text)
    with pytest.raises(DataError, match=r"\(it holds 6 MB uncompressed.*"
                                        r"`unzip -p .*big.csv.zip \| awk"):
        read_table(zipped, target="y")  # not `cat`: the archive's bytes (review s16 VS10)
    bzipped = tmp_path / "big.csv.bz2"  # only decompressing would tell: no size claimed
    bzipped.write_bytes(bz2.compress(text))
    with pytest.raises(DataError, match=r"reading '.*big.csv.bz2': the file is readable.*"
                                        r"`\(bzcat .*big.csv.bz2 \| head -n 1; "):
        read_table(bzipped, target="y")


@pytest.mark.parametrize("suffix", [".gz", ".bz2"])
def test_the_sample_command_streams_a_random_sample_of_the_advised_size(tmp_path, suffix):
    """Review s16 VX11: "train on a sample" pasted `zcat FILE | head -n 100001`: a placeholder
    for the path, and the first rows of a file sorted by date or label (one period, one
    class). The advised command, run as pasted, keeps the header and about 100,000 rows
    spread over the whole file."""
    import shlex
    import shutil
    import subprocess

    from trainwise.data.compressed import expanded_size
    from trainwise.data.tables import SAMPLE_ROWS, sample_command

    if shutil.which("awk") is None or shutil.which("shuf") is None:
        pytest.skip("needs awk and shuf")
    # sorted by label; one width, so the first MB's bytes per line hold for the file
    text = "i,label\n" + "".join(f"{i:06d},{i // 300_000}\n" for i in range(600_000))
    path = tmp_path / f"my rows.csv{suffix}"  # a space: pasted as one shell word
    path.write_bytes((gzip.compress if suffix == ".gz" else bz2.compress)(text.encode()))
    _, command = sample_command(path, expanded_size(path))
    assert shlex.quote(str(path)) in command
    subprocess.run(["bash", "-c", command], cwd=tmp_path, check=True)
    lines = (tmp_path / "sample.csv").read_text().splitlines()
    assert lines[0] == "i,label"
    kept = [int(line.split(",")[0]) for line in lines[1:]]
    assert abs(len(kept) - SAMPLE_ROWS) < 0.03 * SAMPLE_ROWS  # awk: binomial, sd 0.3%
    assert min(kept) < 6_000 and max(kept) > 594_000  # from the whole file, not its head
    assert 0.45 < sum(i >= 300_000 for i in kept) / len(kept) < 0.55  # both labels
