"""Finding and Severity as a notebook uses them: ordered severities, readable findings."""

import itertools
import json
import operator
from types import SimpleNamespace

import pytest

from trainwise.findings import Finding, Findings, Severity, error, info, warning

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


def test_str_of_a_finding_is_the_command_lines_line_and_its_fix():
    found = Finding("check", Severity.WARNING, "loss_at_init_off", "cross-entropy 0.063.",
                    {"loss": 0.063, "big": list(range(500))}, "build it again.")
    assert str(found) == ("warning [check] loss_at_init_off: cross-entropy 0.063.\n"
                          "  fix: build it again.")
    assert f"{info('train', 'trained', 'Trained 2 epochs.')}" == \
        "info [train] trained: Trained 2 epochs."
    stepped = Finding("train", Severity.ERROR, "non_finite_loss", "NaN.", fix="lower lr", step=60)
    assert str(stepped) == "error [train] non_finite_loss at step 60: NaN.\n  fix: lower lr"
    assert "evidence={'loss': 0.063" in repr(found)  # repr keeps every field


def _three():
    return [info("check", "loss_at_init_ok", "ok <fine> & well"),
            warning("check", "dropout_heavy", "p = 0.9", "lower p"),
            error("train", "non_finite_loss", "NaN", "lower the lr")]


def test_findings_is_still_the_plain_list_it_was():
    plain = _three()
    found = Findings(plain)
    assert isinstance(found, list) and found == plain and plain == found
    assert found + [plain[0]] == plain + [plain[0]] and found[1:] == plain[1:]
    assert [f.code for f in found if f.severity >= Severity.WARNING] == ["dropout_heavy",
                                                                         "non_finite_loss"]
    assert json.dumps([f.to_dict() for f in found]) == json.dumps([f.to_dict() for f in plain])
    assert repr(found) == repr(plain)  # logs and assertion messages unchanged


def test_findings_show_one_per_line_and_as_a_table_in_a_notebook():
    found = Findings(_three())
    assert str(found) == "\n".join(map(str, _three())) and str(Findings()) == "no findings"

    shown = []  # IPython's pretty printer, as much of it as _repr_pretty_ uses
    found._repr_pretty_(SimpleNamespace(text=shown.append), False)
    assert shown == [str(found)]
    html = found._repr_html_()
    assert "3 findings: 1 error, 1 warning, 1 info" in html
    assert "ok &lt;fine&gt; &amp; well" in html and "<fine>" not in html  # escaped
    cells = [html.index(code) for code in ("loss_at_init_ok", "dropout_heavy", "non_finite_loss")]
    assert cells == sorted(cells)  # in the order given: stage order
    assert html.count("<tr>") == 4  # the header and a row each
    frame = found.to_frame()
    assert list(frame["code"]) == ["loss_at_init_ok", "dropout_heavy", "non_finite_loss"]
    assert list(frame["severity"]) == ["info", "warning", "error"]
