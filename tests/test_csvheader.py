"""A CSV's header repeated mid-file, or naming a column twice (audit s14 Z2, Z10)."""

import numpy as np
import pandas as pd

from trainwise.data.tables import load_table, read_table


def _frame(rows=60):
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows),
                         "label": np.where(rng.random(rows) < 0.5, "no", "yes")})


def test_a_repeated_header_line_is_dropped_and_named(tmp_path):
    frame = _frame()
    path = tmp_path / "joined.csv"
    text = frame.iloc[:30].to_csv(index=False) + frame.iloc[30:].to_csv(index=False)
    path.write_text(text)  # `cat part1.csv part2.csv`: the header again before row 30
    read, findings = read_table(path)
    [repeated] = [f for f in findings if f.code == "repeated_header"]
    assert repeated.evidence["rows"] == [30] and repeated.severity.value == "warning"
    # reference: the file without that line, as pandas reads it
    pd.testing.assert_frame_equal(read, pd.read_csv(pd.io.common.StringIO(
        frame.to_csv(index=False))))
    data = load_table(path, "label")  # was refused: 'a', 'b' read as unique row ids
    assert data.x.shape == (60, 2) and data.class_names == ["no", "yes"]


def test_duplicate_header_names_are_warned(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("a,a,b,a,label\n1,2,3,4,x\n5,6,7,8,y\n")
    read, findings = read_table(path)
    assert list(read.columns) == ["a", "a.1", "b", "a.2", "label"]  # pandas' renaming
    [dup] = [f for f in findings if f.code == "duplicate_column_names"]
    assert dup.evidence["names"] == ["a"] and "'a.1', 'a.2'" in dup.message


def test_title_lines_above_the_header_are_skipped_and_said(tmp_path):
    # an instrument export: two title lines, then the table (audit s14 Z15: the title was
    # read as the header of a 1-column table and offered as the target)
    frame = _frame()
    path = tmp_path / "titled.csv"
    path.write_text("# exported 2024-01-01 by tool\nRun 7\n" + frame.to_csv(index=False))
    read, findings = read_table(path, target="label")
    pd.testing.assert_frame_equal(read, pd.read_csv(path, skiprows=2))
    [title] = [f for f in findings if f.code == "title_lines"]
    assert title.evidence["lines"] == ["# exported 2024-01-01 by tool", "Run 7"]
    assert load_table(path, "label").x.shape == (60, 2)
    plain = tmp_path / "plain.csv"  # no title: nothing skipped, nothing said
    plain.write_text(frame.to_csv(index=False))
    assert not read_table(plain)[1]


def test_a_given_separator_decides_what_is_a_title_line(tmp_path):
    # VD2: with data.sep = ':' the header holds none of ',;\t|', so the first row with a
    # comma in a cell was taken for the header and the real header skipped as a title
    path = tmp_path / "colon.csv"
    path.write_text("name:score:label\nSmith, J.:1.5:a\nLee:2.5:b\nKim:3.5:a\n")
    read, findings = read_table(path, sep=":", target="label")
    assert list(read.columns) == ["name", "score", "label"] and len(read) == 3
    assert not any(f.code == "title_lines" for f in findings)


def test_a_byte_order_mark_does_not_hide_a_duplicated_first_name(tmp_path):
    # VD11: Excel's 'CSV UTF-8' starts with a BOM; the header read '\ufeffa', so the second
    # 'a' (read by pandas as 'a.1') went unsaid
    path = tmp_path / "bom.csv"
    path.write_text(_frame(6).rename(columns={"b": "a"}).to_csv(index=False),
                    encoding="utf-8-sig")
    read, findings = read_table(path)
    assert list(read.columns) == ["a", "a.1", "label"]
    assert [f.evidence["names"] for f in findings if f.code == "duplicate_column_names"] == [
        ["a"]]
