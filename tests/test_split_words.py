"""The split and data findings say the part sizes in words, and where the test part came from:
a source with its own test part (mnist1d: 4000 loaded, 1000 more to test) leaves
split.test_fraction unused, which the config shown in the report did not say."""

from __future__ import annotations

import json

import trainwise
from trainwise.rundir import read_findings
from trainwise.stages_split import split_sizes_text


def test_sizes_are_words_and_the_test_part_says_where_it_came_from() -> None:
    sizes = {"train": 3600, "val": 400, "test": 1000}
    assert split_sizes_text(sizes, own_test=True, test_fraction=0.2) == (
        "train 3600, validation 400, test 1000 (the data set's own test part; "
        "split.test_fraction not used)")
    assert split_sizes_text(sizes, own_test=False, test_fraction=0.2) == (
        "train 3600, validation 400, test 1000 (carved by split.test_fraction = 0.2)")


def test_the_split_finding_of_mnist1d_explains_the_1000_test_rows(tmp_path) -> None:
    result = trainwise.run(None, until="split", report=False, overrides=[
        f"run.out_dir=\"{tmp_path}\"", "data.max_samples=300"])
    by_code = {f.code: f for f in read_findings(result.path)}
    assert by_code["loaded"].message.startswith(
        "Loaded 'mnist1d': 300 samples (plus its own 1000-row test part)")
    split = by_code["split"]
    assert split.message == ("Split by 'stratified': train 270, validation 30, test 1000 (the "
                             "data set's own test part; split.test_fraction not used).")
    assert "{" not in split.message
    assert split.evidence == {"train": 270, "val": 30, "test": 1000}
    sizes = json.loads((result.path / "meta.json").read_text())["split"]["sizes"]
    assert sizes == {"train": 270, "val": 30, "test": 1000}


def test_every_stage_spells_the_parts_with_one_table() -> None:
    """Review s12 VD10: drift.py said 'training' where part_findings.py and the split
    stage said 'train' (three tables, one concept); now all three import split.PART_WORDS."""
    from trainwise import stages_split
    from trainwise.data import drift, part_findings, split

    assert drift.PART_WORDS is split.PART_WORDS is part_findings.PART_WORDS
    assert stages_split.PART_WORDS is split.PART_WORDS
    assert split.PART_WORDS == {"train": "train", "val": "validation", "test": "test"}
