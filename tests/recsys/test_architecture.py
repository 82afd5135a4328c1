"""Package shape: no import cycles, base knows no algorithm, one shared data object, similarity computed once."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import c360.recsys
from c360.errors import InputError
from c360.recsys import base, registry
from c360.recsys.algorithms.blend import Blend
from c360.recsys.base import Recommender, cosine_similarity_matrix
from c360.recsys.models import ALGORITHMS, load_model, train

ROOT = Path(c360.recsys.__file__).parent
PACKAGE = "c360.recsys"


def _module_names() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = [*PACKAGE.split("."), *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The deepest c360.recsys module that `name` (a module or module.attribute) lies in."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """module -> c360.recsys modules it imports anywhere in its body (function-level imports included)."""
    modules = _module_names()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = package.split(".")
                    parts = parts[:len(parts) - (node.level - 1)]
                    source = ".".join([*parts, *([node.module] if node.module else [])])
                else:
                    source = node.module or ""
                # `from pkg import sub` imports the submodule; `from mod import attr` imports mod
                targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names]
            else:
                continue
            for target in targets:
                resolved = _resolve(target, modules) if target.startswith(PACKAGE) else None
                if resolved and resolved != name:
                    edges.add(resolved)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}          # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_among_recsys_modules():
    graph = import_graph()
    # the walker sees what it must (else "no cycle" would prove nothing)
    assert "c360.recsys.algorithms" in graph["c360.recsys.models"]
    assert "c360.recsys.registry" in graph["c360.recsys.algorithms.blend"]
    assert "c360.recsys.base" in graph["c360.recsys.algorithms.ease"]
    assert "c360.recsys.models" in graph["c360.recsys.cli"]              # a function-level import
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle(graph) is None
    # base reads training data only: frames (data), Parquet files (interactions) and id arrays (ids), which import
    # no recsys module
    assert graph["c360.recsys.base"] <= {"c360.recsys.data", "c360.recsys.interactions", "c360.recsys.ids"}
    assert not graph["c360.recsys.interactions"]


@pytest.mark.slow
def test_importing_base_imports_no_algorithm_and_no_registry():
    code = ("import json, sys\nimport c360.recsys.base\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('c360.recsys'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert "c360.recsys.base" in loaded
    assert not [m for m in loaded if m.startswith("c360.recsys.algorithms")], loaded
    assert not {"c360.recsys.registry", "c360.recsys.models", "c360.recsys.auto"} & set(loaded), loaded


def test_registry_lists_every_algorithm_and_guards_names():
    assert list(ALGORITHMS) == ["als", "spark-als", "fm", "item-knn", "ease", "popularity", "blend", "session"]
    assert ALGORITHMS is registry.ALGORITHMS
    assert registry.algorithm_class("ease").name == "ease"
    with pytest.raises(InputError, match="unknown algorithm 'svd'"):
        registry.algorithm_class("svd")

    class Auto(Recommender):
        name = "auto"

    class OtherEase(Recommender):
        name = "ease"

    for cls in (Auto, OtherEase):
        with pytest.raises(ValueError):
            registry.register(cls)
    assert ALGORITHMS["ease"].__name__ == "EASE"


# ---------------------------------------------------------------- similar_items: one similarity per model

def _old_vectors(model) -> tuple[np.ndarray, bool]:
    """The vectors the per-call implementations compared before (and whether the diagonal was zeroed)."""
    if model.name == "blend":
        return _old_vectors(model.component)
    if model.name == "item-knn":
        return model.similarity.toarray(), False
    if model.name == "ease":
        return model.weights.T, False
    if model.item_factors() is not None:
        return model.item_factors(), False
    return (model.matrix > 0).astype(np.float64).T.toarray(), True


def _old_similar_items(model, item_id: str, k: int) -> pd.DataFrame:
    vectors, zero_diagonal = _old_vectors(model)
    sims = cosine_similarity_matrix(vectors)
    if zero_diagonal:
        np.fill_diagonal(sims, 0.0)
    row = np.asarray(sims[model.item_index[item_id]], dtype=np.float64).copy()
    row[model.item_index[item_id]] = -np.inf
    order = np.argsort(-row, kind="stable")[:k]
    order = order[np.isfinite(row[order])]
    return pd.DataFrame({"ITEM_ID": np.array(model.item_ids, dtype=object)[order], "SCORE": row[order]})


SIMILAR = [("popularity", {}), ("item-knn", {"similarity": "rp3"}), ("item-knn", {"similarity": "bm25"}),
           ("als", {"factors": 8, "iterations": 5}), ("ease", {"l2": 1.0}),
           ("blend", {"alpha": 0.5, "base": "ease", "mix": [["item-knn", {"similarity": "rp3"}]]})]


@pytest.mark.parametrize("algo,params", SIMILAR)
def test_similar_items_computes_the_similarity_once(algo, params, random_interactions, monkeypatch):
    df, items = random_interactions
    model = train(algo, df, items, params=params, item_group_col="PARK", show_progress=False)
    owner = model.component if algo == "blend" else model
    calls = []
    original = type(owner)._item_vectors
    monkeypatch.setattr(type(owner), "_item_vectors", lambda self: calls.append(1) or original(self))
    first = model.item_similarity()
    answers = {item: model.similar_items(item, 6) for item in model.item_ids[:12]}
    assert len(calls) == 1 and model.item_similarity() is first and first.full is model.item_similarity().full
    assert first.full.shape == (len(model.item_ids),) * 2
    for item, answer in answers.items():
        pd.testing.assert_frame_equal(answer, _old_similar_items(model, item, 6))
    if algo == "blend":
        assert model.item_similarity() is model.component.item_similarity()
    else:
        model.fit(df, items, show_progress=False)               # refitting drops the cached similarity
        assert model.item_similarity() is not first and len(calls) == 2


def test_large_catalogues_keep_unit_vectors_and_compute_one_row(random_interactions, monkeypatch):
    df, items = random_interactions
    model = train("als", df, items, params={"factors": 8, "iterations": 5}, show_progress=False)
    full_matrix = model.item_similarity().full
    full = {item: model.similar_items(item, 5) for item in model.item_ids}
    monkeypatch.setattr(base, "FULL_SIMILARITY_MAX_ITEMS", 10)
    model.restore_from(model.data, model.model_arrays())     # same factors, cache dropped
    sims = model.item_similarity()
    assert sims.full is None and sims.unit.shape == model.item_factors().shape and model.item_similarity() is sims
    for item, expected in full.items():
        np.testing.assert_allclose(sims.row(model.item_index[item]), full_matrix[model.item_index[item]],
                                   rtol=0, atol=1e-6)
        # a matrix-vector product may round near-ties (same park, |diff| < 1e-6 here) the other way
        np.testing.assert_allclose(model.similar_items(item, 5)["SCORE"], expected["SCORE"], rtol=0, atol=1e-6)


# ---------------------------------------------------------------- one shared InteractionData

def test_blend_components_share_the_data_object(random_interactions, tmp_path):
    df, items = random_interactions
    params = {"alpha": 0.6, "base": "item-knn", "base_params": {"similarity": "rp3"}, "mix": [["ease", {"l2": 2.0}]]}
    model = train("blend", df, items, params=params, item_group_col="PARK", show_progress=False)
    assert len(model.components) == 2 and all(c.data is model.data for c in model.components)
    assert model.matrix is model.data.matrix and model.user_index is model.data.user_index
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert all(c.data is loaded.data for c in loaded.components)
    again = Blend.from_components(model.components, 0.2)
    assert again.data is model.data and again.components == model.components


@pytest.mark.slow
def test_auto_candidates_share_one_data_object(random_interactions, monkeypatch):
    from c360.recsys.auto import candidates_scores
    from c360.recsys.split import holdout_split

    df, items = random_interactions
    seen = []
    original = Blend.from_components.__func__

    def spy(cls, components, alpha):
        blend = original(cls, components, alpha)
        seen.extend([blend.data, *(c.data for c in components)])
        return blend

    monkeypatch.setattr(Blend, "from_components", classmethod(spy))
    fit_df, valid_df = holdout_split(df, 0.2, 1)
    candidates_scores(fit_df, valid_df, items, "PARK", seed=0)
    assert len(seen) > 100 and len({id(d) for d in seen}) == 1


def test_folding_users_in_leaves_shared_data_alone(random_interactions):
    df, items = random_interactions
    params = {"alpha": 0.5, "base": "als", "base_params": {"factors": 4, "iterations": 3}}
    blend = train("blend", df, items, params=params, show_progress=False)
    als = blend.component
    shared, n_users = blend.data, len(blend.user_ids)
    als.update_users({"new": {"p2:20": 4.0}, "u1": {"p2:21": 1.0}})
    assert als.data is not shared and "new" in als.user_index and als.matrix.shape[0] == n_users + 1
    assert blend.data is shared and shared.matrix.shape[0] == n_users and "new" not in shared.user_index
    assert als.data.item_ids is shared.item_ids and als.data.popularity is shared.popularity


def test_load_on_an_algorithm_class(random_interactions, tmp_path):
    df, items = random_interactions
    train("ease", df, items, show_progress=False).save(tmp_path / "m")
    assert type(ALGORITHMS["ease"].load(tmp_path / "m")).__name__ == "EASE"
    for cls in (ALGORITHMS["als"], Recommender):
        with pytest.raises(InputError, match="a saved 'ease' model.*load_model"):
            cls.load(tmp_path / "m")


def test_session_scoring_is_declared_on_the_recommender_interface(random_interactions):
    """Every model scores sessions (`Recommender.session_scores`, the fold-in by default); the session model
    overrides it and says so (`scores_trips`); nothing probes for the method."""
    from c360.recsys.algorithms.session import SessionModel
    from c360.recsys.serving import session_model_of
    from c360.recsys.trips import Session, score_sessions

    assert SessionModel.scores_trips and SessionModel.session_scores is not Recommender.session_scores
    assert [name for name, cls in ALGORITHMS.items() if cls.scores_trips] == ["session"]
    df, items = random_interactions
    als = train("als", df, items, params={"factors": 4, "iterations": 3}, show_progress=False)
    user, item = als.user_ids[0], als.item_ids[0]
    scores = score_sessions(als, [Session((item,), (0,), user), Session((), (), None)])
    assert scores.shape == (2, len(als.item_ids)) and scores[0, als.item_index[item]] == -np.inf
    # the fold-in: the user's training row plus the trip, scored as a history vector
    vector = als.matrix[als.user_index[user]].copy()
    vector[0, als.item_index[item]] += 1
    np.testing.assert_allclose(als.session_scores([Session((item,), (0,), user)])[0], als.score_vector(vector))
    assert session_model_of({"als": als}, "als") is None
    import re

    import c360.api

    probe = re.compile(r"hasattr\([^)]*[\"']session_scores[\"']\)")
    sources = [*ROOT.rglob("*.py"), *Path(c360.api.__file__).parent.rglob("*.py")]
    assert [str(p) for p in sources if probe.search(p.read_text())] == []
