"""Finding and Severity as a notebook uses them: ordered severities, readable findings."""

import itertools
import json
import operator

import pytest

from trainwise.findings import Finding, Severity, error, info, warning

RANKED = [Severity.INFO, Severity.WARNING, Severity.ERROR]  # by hand: least to most severe
COMPARISONS = [operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne]


@pytest.mark.parametrize(("a", "b"), list(itertools.product(RANKED, repeat=2)))
def test_severities_compare_by_rank_over_all_pairs(a, b):
    for compare in COMPARISONS:  # the oracle: the same comparison of their hand-set ranks
        expected = compare(RANKED.index(a), RANKED.index(b))
        assert compare(a, b) is expected, (compare.__name__, a, b)
        # a plain string that names a severity, on either side, compares alike
        assert compare(a, b.value) is expected, (compare.__name__, a, b.value)
        assert compare(a.value, b) is expected, (compare.__name__, a.value, b)


def test_sorted_max_and_the_warnings_and_worse_filter_keep_the_errors():
    shuffled = [Severity.WARNING, Severity.ERROR, Severity.INFO]
    assert sorted(shuffled) == RANKED and max(shuffled) is Severity.ERROR
    assert min(shuffled) is Severity.INFO
    found = [info("check", "a", "ok"), warning("check", "b", "meh", "fix b"),
             error("check", "c", "bad", "fix c")]
    kept = [f.code for f in found if f.severity >= Severity.WARNING]
    assert kept == ["b", "c"]  # str's alphabet made it [] (error < info < warning): s16 N7


def test_a_severity_stays_its_string_for_equality_json_and_dict_keys():
    assert Severity.ERROR == "error" and "warning" == Severity.WARNING
    assert {Severity.INFO: 1}["info"] == 1
    assert json.dumps(error("check", "c", "bad", "fix").to_dict())  # serialises as before
    assert Finding.from_dict(warning("t", "b", "m", "f").to_dict()).severity is Severity.WARNING


def test_ordering_a_severity_with_what_is_no_severity_is_refused():
    with pytest.raises(TypeError, match="Severity.WARNING"):
        Severity.ERROR < "fatal"  # noqa: B015 - str's alphabet would answer False quietly
    with pytest.raises(TypeError):
        Severity.ERROR < 2  # noqa: B015
