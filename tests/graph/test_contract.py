"""Every GraphStore query answers identically on the embedded store and on the Gremlin Server."""

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


@pytest.mark.parametrize("match_id", ["100", "101", "102", "103", "104"])
def test_customer360(stores, match_id):
    c = both(stores, "customer360", match_id)
    assert c["match_id"] == match_id and c["customers"]
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


@pytest.mark.parametrize("match_id", ["999", "1001-auto", "visitor:u1", ""])
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
    for s in stores:
        with pytest.raises(InputError, match="last_name"):
            s.search("  ")


@pytest.mark.parametrize("user", ["u1", "u2", "u3", "unknown"])
def test_visitor(stores, user):
    both(stores, "visitor", user)


def test_visitor_answers(stores):
    assert both(stores, "visitor", "u1") == {
        "user_id": "u1",
        "visits": [{"item_id": "caliAdv:2", "name": 'The "Incredicoaster"', "photos": 4},
                   {"item_id": "caliAdv:1", "name": "Soarin', Around the World", "photos": 3}],
        "recommendations": [{"item_id": "epcot:5", "name": "Test Track", "score": 0.75, "rank": 1, "model": "als"}]}
    assert both(stores, "visitor", "unknown") is None


@pytest.mark.parametrize("vertex,depth", [("100", 0), ("100", 1), ("100", 2), ("1002-auto", 3), ("caliAdv:2", 1),
                                          ("visitor:u2", 2), ("missing", 1)])
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
    assert both(stores, "vertex_ids", "match") == ["100", "101", "102", "103", "104"]
    assert both(stores, "vertex_ids", "nothing") == []


def test_ping(stores):
    assert all(s.ping() for s in stores)
