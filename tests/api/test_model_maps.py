"""Factor matrices of served models memory-mapped from their saved files: the same arrays, the same answers."""

from __future__ import annotations

import numpy as np

from c360.api.model_maps import mapped_npz, share_factors
from c360.recsys.base import MODEL_FILE
from c360.recsys.foldin import recommend_with_events
from c360.recsys.models import load_model


def test_factors_are_mapped_and_answer_the_same(trained, tmp_path):
    models, _, _ = trained
    models["als"].save(tmp_path / "als")
    models["popularity"].save(tmp_path / "popularity")
    loaded = load_model(tmp_path / "als")
    want_factors = np.array(loaded.user_factors)
    users = loaded.user_ids[:50]
    want = loaded.recommend(users, k=10)
    events = {loaded.item_ids[0]: 2.0, loaded.item_ids[3]: 1.0}
    want_folded = recommend_with_events(loaded, users[0], events, k=10, exclude=set())[1]

    shared = share_factors(loaded, tmp_path / "als", min_bytes=1)
    assert isinstance(shared.user_factors, np.memmap) and isinstance(shared.item_factors_, np.memmap)
    assert shared.user_factors.mode == "c"  # copy-on-write: a write would never reach the saved model
    np.testing.assert_array_equal(shared.user_factors, want_factors)
    assert shared.recommend(users, k=10).equals(want)
    assert recommend_with_events(shared, users[0], events, k=10, exclude=set())[1].equals(want_folded)

    assert set(mapped_npz(tmp_path / "als" / MODEL_FILE)) == set()  # below the default size: left in memory
    popularity = load_model(tmp_path / "popularity")
    assert share_factors(popularity, tmp_path / "popularity", min_bytes=1) is popularity  # no factors
