"""Small inputs for nightly runs: one park of the shipped visits and a few hundred generated customers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from c360.recsys.sigir17 import DEFAULT_DIR


@pytest.fixture(scope="session")
def epcot_visits(tmp_path_factory) -> Path:
    """A sigir17 directory holding only Epcot (visits and POI list)."""
    root = tmp_path_factory.mktemp("sigir17-epcot")
    for sub, name in (("userVisits-sigir17", "userVisits-epcot-allPOI.csv"), ("poiList-sigir17", "POI-epcot.csv")):
        (root / sub).mkdir()
        shutil.copy(DEFAULT_DIR / sub / name, root / sub / name)
    return root


@pytest.fixture(scope="session")
def insurance(tmp_path_factory) -> Path:
    """Generated insurance sources (150 people) shared by the nightly tests (they never modify it)."""
    from c360.entity_resolution.generate import generate

    out = tmp_path_factory.mktemp("insurance")
    generate(150, seed=3, out_dir=out)
    return out


def write_config(path: Path, visits: Path, insurance: Path | None, engine: str = "duckdb",
                 algorithms=("popularity", "item-knn"), serve: str = "item-knn", session: bool = False,
                 **sections) -> Path:
    """A nightly config for the tests (fast algorithms, and no session model, unless asked otherwise). The graph is
    exported by Spark where the test runs Spark's ER (`engine="spark"`), else locally: the Spark export's 12 small
    jobs take about 20 s of a 45 s nightly, and tests/graph/test_export.py holds the two exports equal."""
    config = {"nightly": {"visits": str(visits), "insurance": str(insurance) if insurance else None,
                          "generate_customers": 150, "generate_visitors": 1000, "seed": 3},
              "er": {"engine": engine},
              "recsys": {"algorithms": list(algorithms), "serve": serve, "top_n": 10, "session": session},
              "graph": {"export_engine": "spark" if engine == "spark" else "local"}}
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    path.write_text(yaml.safe_dump(config))
    return path
