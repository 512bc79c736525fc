"""Audit s14 Z17: a .npz key trainwise does not read was ignored without a word, so a misspelt
`group` (for `groups`) split 20 subjects at random and `Xtest` gave a carved test part."""

import numpy as np
import pytest

from trainwise.data.errors import DataError
from trainwise.data.sources import load_data


def _save(tmp_path, **arrays):
    path = tmp_path / "a.npz"
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize("key, meant", [("group", "groups"), ("Xtest", "X_test"),
                                        ("ytest", "y_test"), ("time", "times"),
                                        ("Groups", "groups"), ("group_id", "groups")])
def test_a_misspelt_split_key_is_an_error_naming_the_key_meant(tmp_path, key, meant):
    x, y = np.zeros((100, 4)), np.arange(100) % 2
    with pytest.raises(DataError, match=rf"'{key}' \(did you mean '{meant}'\?\).*Rename"):
        load_data(_save(tmp_path, X=x, y=y, **{key: np.arange(100) // 5}))


def test_other_unread_keys_are_named_in_a_warning(tmp_path):
    x, y = np.zeros((40, 3)), np.arange(40) % 2
    data = load_data(_save(tmp_path, X=x, y=y, weights=np.ones(40), foo=np.ones(3),
                           groups=np.arange(40) // 4))
    ignored = [f for f in data.findings if f.code == "npz_keys_ignored"]
    assert len(ignored) == 1 and ignored[0].severity == "warning"
    assert ignored[0].evidence["ignored"] == ["weights", "foo"]
    assert data.groups is not None  # the keys it reads are still read


def test_a_file_of_known_keys_gets_no_warning(tmp_path):
    x, y = np.zeros((40, 3)), np.arange(40) % 2
    data = load_data(_save(tmp_path, X=x, y=y, X_test=x[:4], y_test=y[:4],
                           groups=np.arange(40) // 4, classes=np.array(["0", "1"])))
    assert not [f for f in data.findings if f.code == "npz_keys_ignored"]
