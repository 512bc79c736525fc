"""Audit s15 K14: a group or time column asked of a built-in set is an error, as on a table
(it was ignored, and the split went by rows); a target asked of one is a warning."""

from __future__ import annotations

import pytest

from trainwise.data.errors import DataError
from trainwise.data.sources import load_data


@pytest.mark.parametrize("keys", [{"group_column": "patient"}, {"time_column": "date"}])
def test_a_key_column_on_a_built_in_set_is_an_error(keys):
    key = next(iter(keys))
    with pytest.raises(DataError, match=f"split.{key} = '.*' names a column, but the built-in "
                                        "data set 'wine'.*Remove split"):
        load_data("wine", **keys)


def test_no_key_and_none_load_the_built_in_set_without_a_word():
    for column in ("", "none"):
        data = load_data("wine", group_column=column, time_column=column)
        assert data.groups is None and len(data.x) == 178
        assert not data.findings


def test_a_target_on_a_built_in_set_is_said_ignored():
    data = load_data("wine", target="churned")
    assert [f.code for f in data.findings] == ["target_unused"]
    assert "data.target = 'churned' was ignored" in data.findings[0].message
