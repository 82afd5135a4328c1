"""IdArray / IdIndex (the ids of a loaded model as one numpy array) behave like the list and dict they replace."""

import numpy as np
import pytest

from c360.recsys.ids import IdArray, IdIndex


@pytest.mark.parametrize("ordered", [True, False])
def test_index_equals_the_dict_it_replaces(ordered):
    rng = np.random.default_rng(0)
    ids = sorted({f"u{n}" for n in rng.integers(0, 10**6, 2000)}) + ["", "é", "u 1"]
    ids = sorted(ids) if ordered else list(rng.permutation(ids))
    index, expected = IdIndex(np.array(ids)), {u: i for i, u in enumerate(ids)}
    assert len(index) == len(expected) and list(index) == ids
    assert all(index[u] == i for u, i in expected.items())
    for missing in ["nobody", "u", "zzz", " ", 7, None]:
        assert missing not in index and index.get(missing) is None
    with pytest.raises(KeyError):
        index["nobody"]
    assert "nobody" not in IdIndex(np.array([], dtype=str))


def test_array_is_a_sequence_of_str():
    ids = IdArray(np.array(["a", "b", "c"]))
    assert len(ids) == 3 and ids[1] == "b" and type(ids[1]) is str and ids[:2] == ["a", "b"]
    assert list(ids) == ["a", "b", "c"] and ids == ["a", "b", "c"] and ids == IdArray(np.array(["a", "b", "c"]))
    assert ids + ["d"] == ["a", "b", "c", "d"] and "c" in ids and "d" not in ids
    assert np.array(ids, dtype=object).tolist() == ["a", "b", "c"] and ids.positions()["c"] == 2
