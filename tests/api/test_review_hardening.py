"""The review queue against a hostile steward and a careless operator: a request names each pair once and few of
them, answers are not cached, the page runs only its own script, a line written by hand into the decisions log is
skipped by the API and quarantined by the nightly (never a crash), a decision moves only the records still where it
found them (a line of the run before, replayed on a new run), joins take what another worker committed, and a
lookup never waits behind a split being computed."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import threading

from c360.decisions import decision_problem
from c360.layout import Warehouse
from c360.realtime_log import warehouse_log

from . import test_review_queue
from .conftest import READER, STEWARD, private_copy
from .test_review_queue import _pick, app

review_warehouse = test_review_queue.review_warehouse   # its module fixture: the same queue of 30 sets


def _append(wh, log_name: str, *lines: dict) -> None:
    """Lines written into a warehouse's real-time log as another worker (or a person) would."""
    journal = warehouse_log(Warehouse(wh), log_name)
    try:
        with journal.exclusive() as writer:
            writer.append(list(lines))
    finally:
        journal.close()


def _sets(client) -> list[dict]:
    return client.get("/review/next", params={"n": 20}, headers=STEWARD).json()["sets"]


def _post(client, *decisions: dict):
    return client.post("/review/decisions", headers=STEWARD, json={"decisions": list(decisions)})


@contextlib.contextmanager
def _held(lock):
    """`lock` held by another thread until the block ends, as a decision computing a long split holds the queue's."""
    held, release = threading.Event(), threading.Event()

    def hold():
        with lock:
            held.set()
            release.wait(60)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    held.wait(5)
    try:
        yield
    finally:
        release.set()
        holder.join(30)


def _started(call, n: int = 1) -> tuple[list, list[threading.Thread]]:
    """`call` run by `n` threads: (what they returned so far, the threads)."""
    out: list = []
    threads = [threading.Thread(target=lambda: out.append(call()), daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    return out, threads


def _within(call, seconds: float = 10) -> list:
    """What `call` returned within `seconds` ([] when it was still waiting)."""
    out, (thread,) = _started(call)
    thread.join(seconds)
    return list(out)


def test_a_request_names_each_pair_once_and_few_of_them(tmp_path, review_warehouse):
    """Contradicting answers in one request (a split, a join, a split... each a log line, a reserved id, a scan of
    the scored pairs) are refused whole; so is a pair named twice by positions in either order."""
    wh = private_copy(tmp_path, review_warehouse, "run-r")
    with app(wh) as client:
        s = _pick(_sets(client), same=True)
        sid = s["labeling_set_id"]
        flip = _post(client, {"labeling_set_id": sid, "label": "non-match"}, {"labeling_set_id": sid, "label": "match"})
        assert flip.status_code == 422 and "once" in flip.json()["message"], flip.text
        twice = _post(client, {"labeling_set_id": sid, "label": "unsure", "pair": [1, 0]},
                      {"labeling_set_id": sid, "label": "unsure"})
        assert twice.status_code == 422
        many = [{"labeling_set_id": sid, "label": "unsure", "pair": [0, i]} for i in range(1, 22)]
        assert _post(client, *many).status_code == 422
        assert client.get("/review/next", headers=STEWARD).json()["remaining"] == 30   # nothing logged


def test_answers_are_not_cached_and_the_page_runs_only_its_script(review_warehouse):
    with app(review_warehouse) as client:
        r = client.get("/review/next", params={"n": 1}, headers=STEWARD)
        assert r.headers["cache-control"] == "no-store"
        bad = _post(client, {"labeling_set_id": "r9.nothere-00001", "label": "match"})
        assert bad.status_code == 404
        page = client.get("/review")
        csp = dict(d.strip().split(" ", 1) for d in page.headers["content-security-policy"].split(";"))
        script = re.search(r"<script>(.*)</script>", page.text, re.S).group(1)
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert csp["script-src"] == f"'sha256-{digest}'"
        assert csp["base-uri"] == "'none'" and csp["form-action"] == "'none'"


def test_hand_written_lines_are_skipped_by_the_api_and_refused_by_the_nightly(tmp_path, review_warehouse):
    """Lines a person wrote (an effect without new_match, ids past int64, a sample that is no object) are no
    decisions: the API skips each alone and applies the good line after them; c360.decisions refuses them, so the
    nightly quarantines them instead of failing on them."""
    wh = private_copy(tmp_path, review_warehouse, "run-r")
    with app(wh) as client:
        s = _pick(_sets(client), same=True)
        left, right = (r["record_id"] for r in s["records"][:2])
    good = {"set": s["labeling_set_id"], "left": left, "right": right, "label": "unsure", "run": "run-r"}
    bad = [{**good, "label": "match", "effect": {"from": 1, "to": 2, "moved": [left]}},
           {**good, "label": "match", "effect": {"from": 1, "to": 2 ** 63, "moved": [left], "new_match": True}},
           {**good, "sample": "drawn by hand"},
           {**good, "decided_at": "yesterday"}]
    assert all(decision_problem(b) for b in bad) and decision_problem(good) is None
    _append(wh, "decisions", *bad, good)
    with app(wh) as client:
        body = client.get("/review/next", params={"n": 20}, headers=STEWARD).json()
        assert body["remaining"] == 29   # the good line's set is decided
        assert client.app.state.served.review.skipped == len(bad)


def test_a_line_of_another_run_moves_only_records_still_where_it_found_them(tmp_path, review_warehouse):
    """A decision logged against the run before (after its nightly sealed the log, before the next published) is
    replayed on the new run: records that run put elsewhere stay where it put them, and the same answer posted
    again about the pair is logged, with its effect on this run, not taken for a duplicate."""
    wh = private_copy(tmp_path, review_warehouse, "run-r")
    with app(wh) as client:
        sets = _sets(client)
        a, b = _pick(sets, same=True), _pick(sets, same=False)
        left, right, mid = a["records"][0]["record_id"], a["records"][1]["record_id"], a["records"][0]["match_id"]
        other = b["records"][0]["match_id"]
    _append(wh, "decisions", {"set": "r0.before-00001", "left": left, "right": right, "label": "non-match",
                              "run": "run-before", "effect": {"from": int(mid) + 10_000, "to": int(other),
                                                              "moved": [left], "new_match": False}})
    with app(wh) as client:
        again = next(s for s in _sets(client) if s["labeling_set_id"] == a["labeling_set_id"])
        assert again["records"][0]["match_id"] == mid
        answer = _post(client, {"labeling_set_id": a["labeling_set_id"], "label": "non-match"}).json()["decisions"][0]
        assert answer["status"] == "logged" and answer["effect"]["kind"] == "split"


def test_a_join_takes_the_records_another_worker_committed(tmp_path, review_warehouse):
    """A record another worker committed into the match a join empties moves with the rest (else the old id kept it
    alone and answered 200 instead of 308)."""
    wh = private_copy(tmp_path, review_warehouse, "run-r")
    with app(wh) as client:
        join = _pick(_sets(client), same=False)
        ids = [r["match_id"] for r in join["records"][:2]]
        _append(wh, "customers", *({"id": f"late-{m}", "match_id": int(m), "new_match": False,
                                    "fields": {"first_name": "Late", "last_name": "Comer", "source": "auto"}}
                                   for m in ids))
        r = _post(client, {"labeling_set_id": join["labeling_set_id"], "label": "match"})
        effect = r.json()["decisions"][0]["effect"]
        gone, survivor = effect["from_match_id"], effect["to_match_id"]
        assert client.get(f"/customer360/{gone}", headers=READER, follow_redirects=False).status_code == 308
        queue = client.app.state.served.review
        queue.customers.refresh()
        assert queue.match_of(f"late-{gone}") == queue.match_of(f"late-{survivor}") == int(survivor)


def test_a_split_in_a_warehouse_whose_path_holds_a_quote(tmp_path, review_warehouse):
    wh = private_copy(tmp_path / "o'brien", review_warehouse, "run-r")
    with app(wh) as client:
        split = _pick(_sets(client), same=True)
        r = _post(client, {"labeling_set_id": split["labeling_set_id"], "label": "non-match"})
        assert r.status_code == 200 and r.json()["decisions"][0]["effect"]["kind"] == "split", r.text


def test_a_log_that_cannot_be_written_answers_503(tmp_path, review_warehouse, monkeypatch):
    """A full disk (or a broker down) answers as POST /events and commits do: 503, nothing logged, retried later."""
    wh = private_copy(tmp_path, review_warehouse, "run-r")
    with app(wh) as client:
        queue = client.app.state.served.review

        @contextlib.contextmanager
        def full_disk():
            raise OSError(28, "No space left on device")
            yield

        monkeypatch.setattr(queue.journal, "exclusive", full_disk)
        sid = _sets(client)[0]["labeling_set_id"]
        r = _post(client, {"labeling_set_id": sid, "label": "unsure"})
        assert r.status_code == 503 and r.json()["message"] == "the decisions log cannot be written"
        monkeypatch.undo()
        assert _post(client, {"labeling_set_id": sid, "label": "unsure"}).json()["decisions"][0]["status"] == "logged"


def test_a_decision_is_applied_after_the_records_committed_before_it(tmp_path, review_warehouse):
    """Another worker committed a record, then logged a decision moving it: this worker reads both logs in that
    order, whichever request reads them first (here GET /review/next), so the record moves with the decision."""
    wh = private_copy(tmp_path, review_warehouse, "run-r")
    with app(wh) as client:
        sets = _sets(client)
        a, b = _pick(sets, same=True), _pick(sets, same=False)
        mid, to = int(a["records"][0]["match_id"]), int(b["records"][0]["match_id"])
        _append(wh, "customers", {"id": "late-1", "match_id": mid, "new_match": False,
                                  "fields": {"first_name": "Late", "last_name": "Comer", "source": "auto"}})
        _append(wh, "decisions", {"set": "r0.other-00001", "left": "late-1", "right": a["records"][0]["record_id"],
                                  "label": "non-match", "run": "run-r",
                                  "effect": {"from": mid, "to": to, "moved": ["late-1"], "new_match": False}})
        _sets(client)
        assert client.app.state.served.review.match_of("late-1") == to


def test_a_join_another_worker_logged_answers_308_at_once(tmp_path, review_warehouse):
    """The 308 check reads no log on the event loop; the lookup's own read (in a thread) finds the join, and the
    same request answers 308."""
    wh = private_copy(tmp_path, review_warehouse, "run-r")
    with app(wh) as client:
        join = _pick(_sets(client), same=False)
        keep, gone = (int(r["match_id"]) for r in join["records"][:2])
        members = client.app.state.served.review._members(gone)
        _append(wh, "decisions", {"set": join["labeling_set_id"], "left": join["records"][0]["record_id"],
                                  "right": join["records"][1]["record_id"], "label": "match", "run": "run-r",
                                  "effect": {"from": gone, "to": keep, "moved": members, "new_match": False}})
        r = client.get(f"/customer360/{gone}", headers=READER, follow_redirects=False)
        assert r.status_code == 308 and r.json() == {"match_id": str(gone), "merged_into": str(keep)}


def test_a_lookup_does_not_wait_behind_a_split(review_warehouse):
    """A decision holds the queue while it computes its effect (a scan of the scored pairs, a minimum cut); a
    lookup of another request reads what was decided before it instead of waiting."""
    with app(review_warehouse) as client, _held(client.app.state.served.review._lock):
        answered = _within(lambda: client.get("/customer360/17", headers=READER, follow_redirects=False).status_code)
        assert answered and answered[0] in (200, 404), "a lookup waited for the review queue's lock"


def test_decisions_waiting_for_the_log_leave_the_worker_its_threads(tmp_path, review_warehouse):
    """Decisions and the queue's reads wait for one lock (splits are slow on a large match): waiting in worker
    threads, a burst of them took the whole threadpool (40) and every lookup of the worker waited too; they wait in
    the event loop instead."""
    import time

    from fastapi.testclient import TestClient

    from c360.api.app import create_app
    from c360.settings import Settings

    from .conftest import KEYS

    wh = private_copy(tmp_path, review_warehouse, "run-r")
    settings = Settings(warehouse=wh, graph="networkx", api_keys=dict(KEYS),
                        api={"rate_limits": {"review": {"per_second": 1000.0, "burst": 1000}}})
    with TestClient(create_app(settings)) as client:
        sid = _sets(client)[0]["labeling_set_id"]
        with _held(client.app.state.served.review._lock):
            posted, posts = _started(lambda: _post(client, {"labeling_set_id": sid, "label": "unsure"}).status_code, 45)
            read, reads = _started(lambda: client.get("/review/next", headers=STEWARD).status_code, 45)
            time.sleep(1)
            looked = _within(lambda: client.get("/customer360/17", headers=READER, follow_redirects=False))
        for t in posts + reads:
            t.join(30)
        assert looked, "a lookup waited for a thread behind the decisions"
        assert posted + read == [200] * 90


def test_the_queue_lock_is_never_taken_on_the_event_loop(review_warehouse, monkeypatch):
    """`remaining` takes the queue's lock: taken on the event loop while a split held it, every request of the
    worker (even /healthz) waited for the split."""
    with app(review_warehouse) as client:
        queue = client.app.state.served.review
        monkeypatch.setattr(queue, "pending", lambda n: [])   # answers at once: what follows takes the lock
        with _held(queue._lock):
            _, (reviewing,) = _started(lambda: client.get("/review/next", headers=STEWARD))
            reviewing.join(1)
            health = _within(lambda: client.get("/healthz").status_code)
        reviewing.join(30)
        assert health == [200], "the event loop waited for the review queue's lock"
