"""Audit s15 K15: a typo in a free-text value (model.name, data.source, data.encoding,
split.cut / split.gap) is a config error before any work starts (exit 2), naming the key, the
value and what is allowed; it was an error after the data stage (exit 1), or nothing at all."""

from __future__ import annotations

import pytest

from trainwise.cli import main
from trainwise.config import ConfigError, from_dict
from trainwise.config_values import MODEL_NAMES
from trainwise.model.baselines import BASELINES


@pytest.mark.parametrize("section, key, value, said", [
    ("model", "name", "mlpp", "did you mean 'mlp'?"),
    ("data", "source", "wien", "did you mean 'wine'?"),
    ("data", "encoding", "utf9", "'latin-1'"),
    ("split", "cut", "yesterday", "'2024-06-01', '30D'"),
    ("split", "gap", "yesterday", "'7D', '12h'"),
    ("split", "gap", "30", None),  # a number: accepted (the times may be numbers)
])
def test_a_typo_in_a_free_text_value_is_a_config_error(section, key, value, said):
    if said is None:
        assert getattr(getattr(from_dict({section: {key: value}}), section), key) == value
        return
    with pytest.raises(ConfigError) as caught:
        from_dict({section: {key: value}})
    message = str(caught.value)
    assert f"'{section}.{key}' = '{value}' is not allowed" in message and said in message


@pytest.mark.parametrize("section, key, value", [
    ("model", "name", "gru"), ("model", "name", "mynet:Net"), ("data", "source", "digits"),
    ("data", "source", "nosuch.csv"),  # a missing file: said where the data is read
    ("data", "source", "some/folder"), ("data", "encoding", "latin-1"),
    ("split", "cut", "2024-06-01"), ("split", "cut", "30D"), ("split", "cut", 1.5e9),
    ("split", "gap", "7days"), ("split", "gap", "12h")])
def test_values_that_may_be_right_pass(section, key, value):
    assert getattr(getattr(from_dict({section: {key: value}}), section), key) == value


def test_the_model_names_are_the_baselines_and_auto():
    assert set(MODEL_NAMES) == {"auto", *BASELINES}


def test_a_run_with_a_misspelt_model_stops_before_any_work(tmp_path, capsys):
    code = main(["run", "wine", "--set", "model.name=mlpp", "--set",
                 f"run.out_dir={tmp_path.as_posix()}", "--no-report"])
    assert code == 2 and not list(tmp_path.iterdir())  # no run folder: nothing started
    assert "model.name" in capsys.readouterr().err
