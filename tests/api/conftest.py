"""A small but real published warehouse: ALS + popularity (and the session model) trained on sigir17 parks, a networkx graph built by
graph's export and loader from a hand-made insurance fixture, a Splink model trained on generated insurance data
(the match output of the fixture's records), published as `warehouse/current`."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from c360.settings import Settings
from tests import http

KEYS = {"reader-key-123": "reader", "pii-key-456": "pii", "writer-key-789": "writer", "steward-key-321": "steward"}
READER = {"X-API-Key": "reader-key-123"}
PII = {"X-API-Key": "pii-key-456"}
WRITER = {"X-API-Key": "writer-key-789"}
STEWARD = {"X-API-Key": "steward-key-321"}

AUTO_CUSTOMER = """policyid,fname,lname,gender,work,dob,birthdate,phone,ssn,email,priority,policysince,createddate
101,Maria,Lopez,F,Acme,1980-04-02,04/02/1980,555-0100,123-45-6789,maria@example.com,1,2015,2015-01-01
102,John,Smith,M,Initech,1975-11-30,11/30/1975,555-0101,987-65-4321,john@example.com,2,2016,2016-01-01
"""
AUTO_ADDRESS = """policyid,address,city,state,zip
101,12 Main St,Springfield,IL,62701
102,9 Oak Ave,Dayton,OH,45402
"""
AUTO_VEHICLES = """vin,policyid,make,model,year,color
1HGCM82633A004352,101,Honda,Accord,2019,blue
2T1BURHE0JC012345,102,Toyota,Corolla,2018,red
"""
PROPERTY_CUSTOMERS = """customer_id,first_name,last_name,company,date_of_birth,home_phone,social,job,email,industry,city,state,zipcode,netnew,sales_rounded,sales_decimal,priority,industry2
11376,Maria,Lopez,Acme,1980-04-02,555-0100,123-45-6789,eng,maria@example.com,tech,Springfield,IL,62701,1,10,10.0,1,tech
"""
PROPERTY_ADDRESSES = """customer_id,address,city,state,zip,property_type,year_built,insured_value
11376,12 Main St,Springfield,IL,62701,house,1990,250000
"""
MATCHED = pd.DataFrame({
    "id": ["101-auto", "11376-property", "102-auto"], "first_name": ["Maria", "Maria", "John"],
    "last_name": ["Lopez", "Lopez", "Smith"], "date_of_birth": ["1980-04-02", "1980-04-02", "1975-11-30"],
    "company": ["Acme", "Acme", "Initech"], "home_phone": ["555-0100", "555-0100", "555-0101"],
    "ssn": ["123-45-6789", "123-45-6789", "987-65-4321"], "source": ["auto", "property", "auto"],
    "address": ["12 Main St", "12 Main St", "9 Oak Ave"], "city": ["Springfield", "Springfield", "Dayton"],
    "state": ["IL", "IL", "OH"], "zip": ["62701", "62701", "45402"],
    "email": ["maria.lopez@example.com", None, "john.smith@example.com"], "match_id": [17, 17, 42]})
# Maria's theme-park app account (the graph's matched rows only: the match model is trained on MATCHED), her visits
# (two trips: epcot, then caliAdv) and the served model's recommendations for it
ACCOUNTS = pd.DataFrame({
    "id": ["acct-0000017"], "first_name": ["Maria"], "last_name": ["Lopez"], "date_of_birth": ["1980-04-02"],
    "home_phone": ["555-0100"], "email": ["maria.lopez@example.com"], "zip": ["62701"], "source": ["park"],
    "match_id": [17]})
ACCOUNT_VISITS = pd.DataFrame({
    "USER_ID": "acct-0000017", "ITEM_ID": ["epcot:1", "epcot:11", "caliAdv:12"], "SESSION_ID": ["e#0", "e#0", "c#0"],
    "TIMESTAMP": [1717236000, 1717237800, 1723284000], "EVENT_VALUE": [2, 1, 3]})
ACCOUNT_RECS = pd.DataFrame({"USER_ID": "acct-0000017", "ITEM_ID": ["epcot:11", "epcot:9", "caliAdv:14"],
                             "RANK": [1, 2, 3], "SCORE": [0.9, 0.8, 0.6]})


def build_sources(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in {"source_auto_customer.csv": AUTO_CUSTOMER, "source_auto_address.csv": AUTO_ADDRESS,
                       "source_auto_vehicles.csv": AUTO_VEHICLES,
                       "source_property_customers.csv": PROPERTY_CUSTOMERS,
                       "source_property_addresses.csv": PROPERTY_ADDRESSES}.items():
        (directory / name).write_text(text)
    return directory


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """Models trained once on three sigir17 parks (pandas aggregation, no Spark): {algo: model}, items, interactions."""
    from c360.recsys.data import load_sigir17
    from c360.recsys.models import train

    interactions, items = load_sigir17(engine="pandas", parks=["epcot", "caliAdv", "disHolly"])
    models = {"als": train("als", interactions, items, params={"iterations": 5}, show_progress=False),
              "popularity": train("popularity", interactions, items, show_progress=False)}
    return models, items, interactions


@pytest.fixture(scope="session")
def session_model(trained):
    """The session model (first-order transitions: seconds) on the trips of the same parks, as the nightly saves it."""
    from c360.recsys.models import train
    from c360.recsys.trips import load_trips

    _, items, _ = trained
    data = load_trips(fmt="sigir17")
    rows = data.trips[data.trips["ITEM_ID"].isin(set(items["ITEM_ID"]))]
    return train("session", rows, items, params={"model": "transitions"}, walks=data.walks, show_progress=False)


@pytest.fixture(scope="session")
def match_model(tmp_path_factory):
    """A Splink model (DuckDB) trained on 300 generated people, merged as the merge job does: a MatchOutput."""
    from c360.entity_resolution.generate import generate
    from c360.entity_resolution.match import match
    from c360.graph.export import customers_from_sources, load_sources
    from c360.layout import MatchOutput

    d = tmp_path_factory.mktemp("er-model")
    generate(300, seed=3, out_dir=d)
    customers_from_sources(load_sources(d)).to_parquet(d / "merged.parquet", index=False)
    match([d / "merged.parquet"], engine="duckdb", out=d / "matched.parquet")
    return MatchOutput(d / "matched.parquet")


def write_match(run: Path, model) -> None:
    """The run's match output: the fixture's records (MATCHED) with a trained model and its report beside them."""
    from c360.layout import RunLayout

    out = RunLayout(run).match
    out.matched.parent.mkdir(parents=True, exist_ok=True)
    MATCHED.to_parquet(out.matched, index=False)
    shutil.copy(model.model, out.model)
    shutil.copy(model.report, out.report)
    # one labeling set for the review queue: Maria's auto record beside John's (api.review_queue)
    pd.DataFrame({"labeling_set_id": "r1.fixture-00001", "label": "", "id": ["101-auto", "102-auto"],
                  **{c: MATCHED.set_index("id").loc[["101-auto", "102-auto"], c].tolist()
                     for c in ("first_name", "last_name", "date_of_birth", "ssn", "source")},
                  "match_probability": [0.2, 0.2], "chosen_by": "likely non-match", "inclusion_probability": 0.5,
                  "weight": 2.0, "sample": "r1.fixture"}).to_csv(RunLayout(run).review_queue, index=False)


def write_run(warehouse: Path, run_id: str, trained, served: str = "als", match_model=None, session=None) -> Path:
    """Write one complete run directory as the nightly job does (with a match output when `match_model` is given,
    the session model in recsys/session/ when `session` is)."""
    from c360.graph.export import build_graph
    from c360.graph.loader import load_graph_files
    from c360.graph.neptune_parts import write_element_parts
    from c360.recsys.recs import write_recs

    models, items, _ = trained
    models = {**models, "session": session} if session is not None else models
    run = warehouse / "runs" / run_id
    (run / "recsys").mkdir(parents=True)
    for algo, model in models.items():
        model.save(run / "recsys" / algo)
    write_recs(models[served], run / "recsys" / "recs.csv", k=20)
    items.to_csv(run / "recsys" / "items.csv", index=False)
    sources = build_sources(run / "sources")
    graph = build_graph(matched=pd.concat([MATCHED, ACCOUNTS], ignore_index=True), sources=sources,
                        interactions=ACCOUNT_VISITS, recs=ACCOUNT_RECS, trips=ACCOUNT_VISITS,
                        model=served)  # the export's elements, without a Spark session
    write_element_parts(run / "graph", list(graph.vertices.values()), list(graph.edges.values()))
    load_graph_files(run / "graph", f"networkx:{run / 'graph' / 'graph.json'}")
    if match_model is not None:
        write_match(run, match_model)
    manifest = {"run_id": run_id, "status": "succeeded", "created_at": "2026-11-22T01:00:00Z",
                "served_model": served,
                "models": {a: {"path": f"recsys/{a}", "version": f"{run_id}:{a}", "metrics": {}} for a in models},
                "steps": {}, "gates": {}}
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def publish(warehouse: Path, run: Path) -> None:
    """Switch warehouse/current atomically (new symlink, then os.replace)."""
    tmp = warehouse / f".current.{run.name}.tmp"
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(os.path.relpath(run, warehouse), tmp, target_is_directory=True)
    os.replace(tmp, warehouse / "current")


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory, trained, match_model, session_model) -> Path:
    """A warehouse with one published run `run-1` (with a session model)."""
    wh = tmp_path_factory.mktemp("warehouse")
    publish(wh, write_run(wh, "run-1", trained, match_model=match_model, session=session_model))
    return wh


@pytest.fixture(scope="session")
def settings(warehouse) -> Settings:
    return Settings(warehouse=warehouse, graph="networkx", api_keys=dict(KEYS))


@pytest.fixture(scope="session")
def client(settings):
    """The app over HTTP (in-process ASGI transport), lifespan run."""
    from c360.api.app import create_app

    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture()
def fresh_warehouse(tmp_path, warehouse) -> Path:
    """A private copy of the warehouse (for tests that publish)."""
    return private_copy(tmp_path, warehouse, "run-1")


def serve_two_workers(warehouse: Path, stderr: Path, env: dict, *unset: str):
    """`c360 serve --workers 2` on the warehouse with `env` over this process's (less the `unset` variables), its log
    lines written to `stderr`: (the process, its port, its base URL). The caller waits (`wait_ready`) and stops it."""
    import subprocess
    import sys

    from tests.conftest import REPO, free_port

    port = free_port()
    env = {**os.environ, **env}
    for name in unset:
        env.pop(name, None)
    with open(stderr, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "c360", "serve", "--warehouse", str(warehouse), "--port",
                                 str(port), "--workers", "2"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=err)
    return proc, port, f"http://127.0.0.1:{port}"


def json_log_lines(path: Path) -> list[dict]:
    """The JSON log lines of a server's stderr file."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def private_copy(tmp_path: Path, warehouse: Path, run_id: str) -> Path:
    """A private copy of a warehouse's runs with `run_id` published (for tests that publish, post or commit)."""
    wh = tmp_path / "wh"
    shutil.copytree(warehouse / "runs", wh / "runs", symlinks=True)
    publish(wh, wh / "runs" / run_id)
    return wh


def wait_ready(proc, port: int, timeout: float = 60) -> None:
    """Poll a `c360 serve` subprocess's /readyz until it answers 200 (fails if the process dies or time runs out)."""
    import time

    import httpx

    deadline = time.time() + timeout
    while True:
        try:
            if http.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.time() < deadline, "c360 serve did not become ready"
        time.sleep(0.3)



# Two trained visitors are one person: Maria (match_id 17, MATCHED), with the second account's link less sure
PERSON = "17"
PERSON_LINKS = (0.999, 0.95)   # LINK_PROBABILITY of the two accounts (threshold 0.5: weights 1 and about 0.8)


def person_accounts(interactions: pd.DataFrame) -> tuple[str, str]:
    """Two epcot visitors with 3 to 6 attractions each and none in common (the first such pair, by USER_ID)."""
    epcot = interactions[interactions["ITEM_ID"].str.startswith("epcot:")]
    seen = epcot.groupby("USER_ID")["ITEM_ID"].agg(set)
    both = interactions.groupby("USER_ID")["ITEM_ID"].nunique()
    users = [u for u in sorted(seen.index) if 3 <= len(seen[u]) <= 6 and both[u] == len(seen[u])]
    a = users[0]
    return a, next(u for u in users[1:] if not seen[u] & seen[a])


@pytest.fixture(scope="session")
def person_warehouse(tmp_path_factory, trained, match_model) -> Path:
    """A warehouse whose published run `run-p` has identities (recsys/identities.parquet): two visitors
    (`person_accounts`) are Maria's accounts, and its models trained on the histories shared within a person, as the
    nightly does. No session model: live events are folded in."""
    from c360.layout import RunLayout
    from c360.recsys.identities import read_identities, share_histories, write_identities
    from c360.recsys.models import train

    _, items, interactions = trained
    accounts = person_accounts(interactions)
    wh = tmp_path_factory.mktemp("person-warehouse")
    links = wh / "links.csv"
    pd.DataFrame({"USER_ID": accounts, "PERSON_ID": PERSON, "LINK_PROBABILITY": PERSON_LINKS}).to_csv(links,
                                                                                                      index=False)
    identities = read_identities(links)
    shared = share_histories(interactions, identities)
    models = {"als": train("als", shared, items, params={"iterations": 5}, show_progress=False),
              "popularity": train("popularity", shared, items, show_progress=False)}
    run = write_run(wh, "run-p", (models, items, shared), match_model=match_model)
    write_identities(identities, RunLayout(run).identities)
    publish(wh, run)
    return wh


@pytest.fixture()
def fresh_person_warehouse(tmp_path, person_warehouse) -> Path:
    """A private copy of the warehouse with identities (for tests that post events or commit records)."""
    return private_copy(tmp_path, person_warehouse, "run-p")
