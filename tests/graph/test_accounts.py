"""Park app accounts in the graph without a JVM: the local export of the sample (accounts are visitors SameAs their
match, never customers), the trips input's properties, and the customer 360 of a person with accounts on the
embedded store (tests/graph/test_contract.py holds the Gremlin Server to the same answers)."""

from __future__ import annotations

import pandas as pd
import pytest

from c360.errors import InputError
from c360.graph.export import build_graph, export_graph
from c360.graph.loader import load_graph_files
from c360.graph.sample_data import park_events
from c360.graph.store import open_store
from tests.graph.conftest import sample_inputs
from tests.graph.test_contract import MARIA_ACCOUNTS, MARIA_RECS, MARIA_VISITS


@pytest.fixture(scope="module")
def store(sample_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("accounts")
    export_graph(d / "csv", engine="local", **sample_inputs(sample_dir))
    load_graph_files(d / "csv", f"networkx:{d / 'graph.json'}")
    return open_store(f"networkx:{d / 'graph.json'}")


def test_an_account_is_a_visitor_same_as_its_match_not_a_customer(sample_dir):
    b = build_graph(**sample_inputs(sample_dir))
    assert "acct-0000101" not in b.vertices  # no customer vertex, no address
    assert not [e for e in b.edges.values() if e.frm == "acct-0000101"]
    account = b.vertices["visitor:acct-0000101"]
    assert account.label == "visitor" and account.props == {
        "name": "Maria Lopez", "user_id": "acct-0000101", "first_name": "Maria", "last_name": "Lopez",
        "date_of_birth": "1982-11-23", "home_phone": "555-0102", "email": "maria.lopez@example.com", "zip": "73301",
        "park_trips": "caliAdv=2;epcot=1"}
    assert b.edges["SameAs:visitor:acct-0000101->101"].to == "101"
    assert b.vertices["101"].props == {"name": "Maria Lopez", "records": 2, "accounts": 2}
    # a person known only by a park account is a match of its own, named after the account
    assert b.vertices["105"].props == {"name": "Priya Natarajan", "records": 0, "accounts": 1}
    assert b.vertices["100"].props["accounts"] == 0
    assert b.edges["visited:visitor:acct-0000101->caliAdv:12"].props == {"photos": 3, "trips": 2,
                                                                         "last_visit": 1723284000}
    assert b.vertices["visitor:u1"].props == {"name": "u1", "user_id": "u1"}  # no account, no trips
    assert b.edges["visited:visitor:u1->caliAdv:1"].props == {"photos": 3}


def test_without_trips_the_trip_properties_are_absent(sample_dir):
    inputs = {**sample_inputs(sample_dir), "trips": None}
    b = build_graph(**inputs)
    assert "park_trips" not in b.vertices["visitor:acct-0000101"].props
    assert b.edges["visited:visitor:acct-0000101->caliAdv:12"].props == {"photos": 3}


def test_a_park_column_names_the_park_and_a_trip_counts_once_per_park(sample_dir):
    """PARK, where the trips table has it, says a row's park; a trip that crossed two parks counts in each."""
    rows = park_events()
    rows = rows[rows["USER_ID"] == "acct-0000201"].assign(PARK=["epcot", "somewhereElse"])
    b = build_graph(**{**sample_inputs(sample_dir), "trips": rows})
    assert b.vertices["visitor:acct-0000201"].props["park_trips"] == "epcot=1;somewhereElse=1"
    assert "park_trips" not in b.vertices["visitor:acct-0000101"].props  # not in these trips


@pytest.mark.parametrize("change,message", [
    (lambda df: df.drop(columns=["SESSION_ID"]), "missing column.*SESSION_ID"),
    (lambda df: df.assign(TIMESTAMP="yesterday"), "TIMESTAMP has empty or non-numeric"),
    (lambda df: df.assign(SESSION_ID=None), "SESSION_ID has empty values"),
])
def test_a_bad_trips_table_names_the_column(sample_dir, tmp_path, change, message):
    path = tmp_path / "trips.csv"
    change(park_events()).to_csv(path, index=False)
    with pytest.raises(InputError, match=rf"trips\.csv: .*{message}"):
        build_graph(**{**sample_inputs(sample_dir), "trips": path})


def test_customer360_has_the_persons_accounts_visits_and_recommendations(store):
    maria = store.customer360("101")
    assert maria["accounts"] == MARIA_ACCOUNTS and maria["visits"] == MARIA_VISITS
    assert maria["recommendations"] == MARIA_RECS
    assert store.recommendations("101", 1) == {"match_id": "101", "items": MARIA_RECS[:1]}
    assert store.recommendations("999") is None
    assert store.visitor("acct-0000201")["match_id"] == "105" and store.visitor("u2")["match_id"] is None
    with pytest.raises(InputError, match="k: must be an integer from 1 to 100"):
        store.recommendations("101", 101)


def test_without_trips_the_visit_summary_has_no_trip_counts(sample_dir, tmp_path):
    export_graph(tmp_path / "csv", engine="local", **{**sample_inputs(sample_dir), "trips": None})
    load_graph_files(tmp_path / "csv", f"networkx:{tmp_path / 'g.json'}")
    visits = open_store(f"networkx:{tmp_path / 'g.json'}").customer360("101")["visits"]
    assert visits == [{**v, "trips": None, "last_visit": None} for v in MARIA_VISITS]


def test_a_matched_table_without_accounts_or_email_still_exports():
    matched = pd.DataFrame({"id": ["1-auto"], "first_name": ["A"], "last_name": ["B"], "date_of_birth": ["2000-01-01"],
                            "source": ["auto"], "match_id": [7]})
    b = build_graph(matched=matched)
    assert b.vertices["7"].props == {"name": "A B", "records": 1, "accounts": 0}
    assert {v.label for v in b.vertices.values()} == {"customer", "match"}
