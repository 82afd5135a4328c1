"""Every GraphStore query answers identically on the embedded store and on the Gremlin Server, on the sample graph
with park accounts (graph.sample_data: Maria Lopez insured with two accounts, Priya Natarajan with one and no
insurance) and visitors who are no account (u1, u2, u3)."""

from __future__ import annotations

import pytest

from c360.errors import InputError
from c360.graph.loader import load_graph_files
from c360.graph.store import open_store

pytestmark = pytest.mark.gremlin


@pytest.fixture(scope="module")
def stores(graph_csv, gremlin_url, tmp_path_factory):
    path = tmp_path_factory.mktemp("nx") / "graph.json"
    load_graph_files(graph_csv, f"networkx:{path}")
    load_graph_files(graph_csv, gremlin_url, drop=True, progress=False)
    nx_store, gremlin_store = open_store(f"networkx:{path}"), open_store(gremlin_url)
    yield nx_store, gremlin_store
    gremlin_store.close()


def both(stores, method, *args):
    a, b = (getattr(s, method)(*args) for s in stores)
    assert a == b, f"{method}{args}: networkx and gremlin differ"
    return a


def test_counts(stores):
    assert both(stores, "counts")["vertices"]["customer"] == 7


@pytest.mark.parametrize("match_id", ["100", "101", "102", "103", "104", "105"])
def test_customer360(stores, match_id):
    c = both(stores, "customer360", match_id)
    assert c["match_id"] == match_id and (c["customers"] or c["accounts"])
    for cust in c["customers"]:
        assert cust["policies"] and cust["policies"][0]["id"] == f"policy:{cust['id']}"


def test_customer360_james_joins_two_records(stores):
    c = both(stores, "customer360", "100")
    assert [x["id"] for x in c["customers"]] == ["1001-auto", "5001-property"]
    auto = c["customers"][0]
    assert auto["ssn"] == "123-45-6789" and auto["addresses"][0]["city"] == "Springfield"
    assert auto["policies"][0]["vehicles"] == [{"id": "vehicle:1HGCM82633A004352", "vin": "1HGCM82633A004352",
                                                "make": "Honda", "model": "Accord", "year": 2018}]
    assert c["customers"][1]["policies"][0]["addresses"][0]["zip"] == "53703"
    maria = both(stores, "customer360", "101")
    assert len(maria["customers"][0]["policies"][0]["vehicles"]) == 3


MARIA_ACCOUNTS = [
    {"user_id": "acct-0000101", "first_name": "Maria", "last_name": "Lopez", "date_of_birth": "1982-11-23",
     "home_phone": "555-0102", "email": "maria.lopez@example.com", "zip": "73301"},
    {"user_id": "acct-0000102", "first_name": "Maria", "last_name": "Lopez", "date_of_birth": "1982-11-23",
     "home_phone": "555-0102", "email": "mlopez@example.net", "zip": "73301"}]
# trips per park summed over her accounts (2 + 1 in caliAdv); caliAdv:12 and :14 were visited under both
MARIA_VISITS = [{"park": "caliAdv", "trips": 3, "attractions": 3, "photos": 9, "last_visit": 1740912000},
                {"park": "epcot", "trips": 1, "attractions": 1, "photos": 2, "last_visit": 1726394400}]
# epcot:11 recommended to both accounts (0.9 and 0.6): once, the best score; caliAdv:14 (to the account that visited
# it) and caliAdv:15 (visited under the other account) never
MARIA_RECS = [{"item_id": "epcot:11", "name": "Spaceship Earth", "score": 0.9, "rank": 1},
              {"item_id": "epcot:9", "name": "Mission: SPACE", "score": 0.55, "rank": 2},
              {"item_id": "caliAdv:11", "name": "California Screamin'", "score": 0.5, "rank": 3}]


def test_customer360_joins_identity_and_behaviour(stores):
    maria = both(stores, "customer360", "101")
    assert [c["id"] for c in maria["customers"]] == ["1002-auto", "5002-property"]
    assert maria["accounts"] == MARIA_ACCOUNTS
    assert maria["visits"] == MARIA_VISITS
    assert maria["recommendations"] == MARIA_RECS
    priya = both(stores, "customer360", "105")  # a park account, no insurance: a person all the same
    assert priya["customers"] == [] and [a["user_id"] for a in priya["accounts"]] == ["acct-0000201"]
    assert priya["visits"] == [{"park": "epcot", "trips": 1, "attractions": 2, "photos": 3, "last_visit": 1737368400}]
    assert [r["item_id"] for r in priya["recommendations"]] == ["epcot:9", "caliAdv:12"]
    james = both(stores, "customer360", "100")
    assert james["accounts"] == james["visits"] == james["recommendations"] == []


@pytest.mark.parametrize("match_id,k", [("101", 10), ("101", 2), ("105", 1), ("100", 5), ("999", 3)])
def test_recommendations(stores, match_id, k):
    found = both(stores, "recommendations", match_id, k)
    if match_id == "999":
        assert found is None
    else:
        assert found["match_id"] == match_id and len(found["items"]) <= k
        assert found["items"] == both(stores, "customer360", match_id)["recommendations"][:k]
    for s in stores:
        with pytest.raises(InputError, match="k:"):
            s.recommendations(match_id, 0)


@pytest.mark.parametrize("match_id", ["999", "1001-auto", "visitor:u1", "visitor:acct-0000101", ""])
def test_customer360_unknown_is_none(stores, match_id):
    assert both(stores, "customer360", match_id) is None


@pytest.mark.parametrize("query", [("carter",), ("CARTER", "jim"), ("Carter", "James", "1975-04-02"),
                                   ("carter", None, "1999-01-01"), ("o'neil, jr.",), ("lopez",), ("nobody",)])
def test_search(stores, query):
    both(stores, "search", *query)


def test_search_answers(stores):
    assert both(stores, "search", "carter") == [
        {"match_id": "100", "first_name": "James", "last_name": "Carter", "date_of_birth": "1975-04-02", "records": 2}]
    assert both(stores, "search", "CARTER", "jim")[0]["first_name"] == "Jim"
    assert both(stores, "search", "Carter", None, "1999-01-01") == []
    # records counts insurance records only: Maria's two park accounts are SameAs her match too
    assert [(h["match_id"], h["records"]) for h in both(stores, "search", "lopez")] == [("101", 2)]
    for s in stores:
        with pytest.raises(InputError, match="last_name"):
            s.search("  ")


@pytest.mark.parametrize("user", ["u1", "u2", "u3", "acct-0000101", "acct-0000102", "acct-0000201", "unknown"])
def test_visitor(stores, user):
    both(stores, "visitor", user)


def test_visitor_answers(stores):
    assert both(stores, "visitor", "u1") == {
        "user_id": "u1", "match_id": None,  # no account; and no trips in the trips table: trips, last_visit None
        "visits": [{"item_id": "caliAdv:2", "name": 'The "Incredicoaster"', "photos": 4, "trips": None,
                    "last_visit": None},
                   {"item_id": "caliAdv:1", "name": "Soarin', Around the World", "photos": 3, "trips": None,
                    "last_visit": None}],
        "recommendations": [{"item_id": "epcot:5", "name": "Test Track", "score": 0.75, "rank": 1, "model": "als"}]}
    assert both(stores, "visitor", "unknown") is None
    account = both(stores, "visitor", "acct-0000101")
    assert account["match_id"] == "101"
    assert account["visits"][0] == {"item_id": "caliAdv:12", "name": "Soarin' Around the World", "photos": 3,
                                    "trips": 2, "last_visit": 1723284000}


@pytest.mark.parametrize("vertex,depth", [("100", 0), ("100", 1), ("100", 2), ("1002-auto", 3), ("caliAdv:2", 1),
                                          ("visitor:u2", 2), ("101", 2), ("visitor:acct-0000201", 3), ("missing", 1)])
def test_neighbourhood(stores, vertex, depth):
    n = both(stores, "neighbourhood", vertex, depth)
    if vertex != "missing":
        assert vertex in {v["id"] for v in n["vertices"]}
        ids = {v["id"] for v in n["vertices"]}
        assert all(e["from"] in ids and e["to"] in ids for e in n["edges"])


def test_neighbourhood_depth_is_checked(stores):
    for s in stores:
        with pytest.raises(InputError, match="depth"):
            s.neighbourhood("100", 9)


def test_vertex_ids(stores):
    assert both(stores, "vertex_ids", "match") == ["100", "101", "102", "103", "104", "105"]
    assert both(stores, "vertex_ids", "nothing") == []


def test_ping(stores):
    assert all(s.ping() for s in stores)
