"""Graph test data: the insurance sample in the pipeline's schemas plus a small visits/recs set."""

from __future__ import annotations

import pandas as pd
import pytest

from c360.graph.export import export_graph
from c360.graph.sample_data import write_sample

ITEMS = pd.DataFrame({"ITEM_ID": ["caliAdv:1", "caliAdv:2", "epcot:5"],
                      "NAME": ["Soarin', Around the World", 'The "Incredicoaster"', "Test Track"],
                      "PARK": ["caliAdv", "caliAdv", "epcot"], "THEME": ["Ride", "Roller Coaster", "Thrill"]})
INTERACTIONS = pd.DataFrame({"USER_ID": ["u1", "u1", "u1", "u2", "u3"],
                             "ITEM_ID": ["caliAdv:1", "caliAdv:1", "caliAdv:2", "epcot:5", "caliAdv:2"],
                             "TIMESTAMP": [1, 2, 3, 4, 5], "EVENT_VALUE": [2, 1, 4, 1, 3]})
RECS = pd.DataFrame({"USER_ID": ["u1", "u2", "u2"], "ITEM_ID": ["epcot:5", "caliAdv:1", "caliAdv:2"],
                     "RANK": [1, 1, 2], "SCORE": [0.75, 0.5, 0.25]})


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory):
    """sources/ (five tables), matched.parquet (park accounts included), trips.parquet (the accounts'), and items,
    interactions and recs: the sample's park accounts' plus ITEMS, INTERACTIONS and RECS (visitors u1, u2, u3, who
    are no account and have no trips)."""
    d = tmp_path_factory.mktemp("graph-sample")
    paths = write_sample(d)
    for name, mine in (("items", ITEMS), ("interactions", INTERACTIONS), ("recs", RECS)):
        theirs = pd.read_csv(paths[name], dtype={"USER_ID": str})
        pd.concat([mine, theirs], ignore_index=True).to_csv(d / f"{name}.csv", index=False)
    return d


def sample_inputs(sample_dir) -> dict:
    """Every input of the full sample graph, as export_graph / build_graph take them."""
    return dict(matched=sample_dir / "matched.parquet", sources=sample_dir / "sources",
                interactions=sample_dir / "interactions.csv", items=sample_dir / "items.csv",
                recs=sample_dir / "recs.csv", trips=sample_dir / "trips.parquet", model="als")


@pytest.fixture(scope="session")
def graph_export(sample_dir, spark, tmp_path_factory):
    """The full sample graph exported by Spark (WrittenGraph: its folder of vertex-*/edge-* parts and counts)."""
    return export_graph(tmp_path_factory.mktemp("graph-csv") / "graph", spark=spark, **sample_inputs(sample_dir))


@pytest.fixture(scope="session")
def graph_csv(sample_dir, tmp_path_factory):
    """The folder of Neptune CSV parts of the full sample graph, exported in this process (no JVM): the files the
    Spark export writes, as test_export.py holds them (the Spark export's own tests use its folder)."""
    from pathlib import Path

    out = tmp_path_factory.mktemp("graph-csv-local") / "graph"
    return Path(export_graph(out, engine="local", **sample_inputs(sample_dir)).dir)
