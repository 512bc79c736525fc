"""trainwise.run as a notebook calls it: arguments checked up front, the caller's state left
as it was, a result that answers the usual questions."""

import pytest

import trainwise
from trainwise.config import ConfigError


@pytest.mark.parametrize(("until", "closest"), [("checks", "check"), ("preflight", "check"),
                                                 ("tune_lr", "tune"), ("Train", "train")])
def test_a_misspelt_until_stops_before_anything_runs(tmp_path, until, closest):
    with pytest.raises(ConfigError, match=f'Did you mean until="{closest}"') as raised:
        trainwise.run({"data": {"source": "wine"}, "run": {"out_dir": str(tmp_path)}},
                      until=until, report=False)
    assert "data, split, model, check, tune, train, evaluate" in str(raised.value)
    assert not list(tmp_path.iterdir())  # no run folder: nothing ran


def test_until_with_nothing_close_lists_the_stages(tmp_path):
    with pytest.raises(ConfigError, match="The stages, in order: data, split") as raised:
        trainwise.run({"data": {"source": "wine"}}, until="xyzzy", report=False)
    assert "Did you mean" not in str(raised.value)
