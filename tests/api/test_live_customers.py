"""What each worker holds of the customers log (api.live_updates.LiveCustomers): a line that is no commit is skipped, alone,
by a running worker and by one that starts on it, with the rule the nightly quarantines it by (c360.commits)."""

from __future__ import annotations

import logging

import orjson

from c360.append_log import AppendLog
from c360.layout import Warehouse

from .conftest import PII, WRITER
from .test_customers_match import NEW, app_client, customer_ids, match

# as written by hand or by an older version: no commit and no reservation
BAD_LINES = b'{"id":"77009-x","match_id":"abc","fields":{}}\n{"reserved_through":"soon"}\n["no"]\n'


def test_a_bad_line_of_the_customers_log_is_skipped_and_the_good_ones_kept(fresh_warehouse, caplog):
    log = AppendLog(Warehouse(fresh_warehouse).customers_log)
    with app_client(fresh_warehouse) as worker:
        first = match(worker, {**NEW, "id": "77002-auto", "source": "auto"}, headers=WRITER, commit="true").json()
        new_id = first["match_id"]
        # one write, so one batch of the worker's tail: the bad lines, then a good commit
        good = {"id": "77004-auto", "match_id": int(new_id), "new_match": False, "fields": {**NEW, "source": "auto"}}
        with log.exclusive() as writer:
            writer.write(BAD_LINES + orjson.dumps(good) + b"\n")
        with caplog.at_level(logging.ERROR, logger="c360.api.live_updates"):
            assert sorted(customer_ids(worker, new_id)) == ["77002-auto", "77004-auto"]
        skipped = [r.getMessage() for r in caplog.records if r.name == "c360.api.live_updates"]
        assert len(skipped) == 3 and "match_id: an integer is required" in skipped[0], skipped
        assert not any(NEW["ssn"] in m or "77009" in m for m in skipped)   # the problem, never the record
        r = match(worker, {**NEW, "id": "77003-property", "first_name": "Ingrd"}, headers=WRITER, commit="true")
        assert r.status_code == 200 and r.json()["match_id"] == new_id, r.text
        assert worker.app.state.served.customers.skipped == 3
    with app_client(fresh_warehouse) as restarted:   # matching in real time still loads, with every good line
        customers = restarted.app.state.served.customers
        assert customers is not None and customers.skipped == 3
        assert sorted(customer_ids(restarted, new_id)) == ["77002-auto", "77003-property", "77004-auto"]
        assert match(restarted, {**NEW, "ssn": None}, headers=PII).json()["match_id"] == new_id


def test_hosts_without_a_common_lock_agree_by_the_logs_order(fresh_warehouse):
    """Two hosts on one Kafka topic each commit under their own lock: both may give a new customer the same next id,
    or commit one record id twice, or a steward's split may reserve an id a commit took. Every reader decides by the
    log's order (c360.commits.CommitOrder): the first new customer keeps the id and the second gets the next free one;
    a record id's first line is its commit; a split's reservation gets a free id. A worker reading the lines, one
    started on them and the nightly's intake agree."""
    from c360.jobs.live_intake import _in_log_order
    from c360.layout import RunLayout

    wh = Warehouse(fresh_warehouse)
    log = AppendLog(wh.customers_log)
    with app_client(fresh_warehouse) as worker:
        top = worker.app.state.served.customers.order.issued
        host_a = {"id": "77101-auto", "match_id": top + 1, "new_match": True, "line": "a",
                  "fields": {**NEW, "source": "auto"}}
        host_b = {"id": "77102-auto", "match_id": top + 1, "new_match": True, "line": "b",
                  "fields": {**NEW, "first_name": "Zelda", "last_name": "Quarrington", "source": "auto"}}
        again = {**host_b, "id": "77101-auto", "line": "c"}   # the same record id, committed by the other host too
        split = {"reserved_through": top + 2, "line": "d"}    # a steward's split on a host that had not read b
        log.append([host_a, host_b, again, split])
        assert customer_ids(worker, str(top + 1)) == ["77101-auto"]
        assert customer_ids(worker, str(top + 2)) == ["77102-auto"]
        customers = worker.app.state.served.customers
        assert customers.order.reservations["d"] == top + 3 and customers.reserve() == top + 4
    with app_client(fresh_warehouse) as restarted:
        assert customer_ids(restarted, str(top + 1)) == ["77101-auto"]
        assert customer_ids(restarted, str(top + 2)) == ["77102-auto"]
    decided, _ = _in_log_order([host_a, host_b, again, split],
                               RunLayout(fresh_warehouse / "runs" / "run-1").match.matched)
    assert [(r.get("id"), r.get("match_id"), r.get("reserved_through")) for r in decided] == [
        ("77101-auto", top + 1, None), ("77102-auto", top + 2, None), (None, None, top + 3)]
