"""The real-time log contract (c360.log_contract), the same questions to every backend: the file journal and a Kafka
topic on the session's broker; and `realtime.log` as the settings read it."""

from __future__ import annotations

import uuid

import pytest

from c360.errors import InputError
from c360.realtime_log import open_log, position_of
from c360.settings import load_settings


@pytest.fixture(params=["file", pytest.param("kafka", marks=[pytest.mark.jvm, pytest.mark.slow])])
def journal(request, tmp_path):
    spec = "file" if request.param == "file" else f"{request.getfixturevalue('kafka_url')}/t-{uuid.uuid4().hex[:8]}"
    log = open_log(spec, tmp_path / "events", "events")
    yield log
    log.close()


def test_every_backend_appends_tails_seals_and_reads_by_position(journal):
    tail = journal.tail(0)
    assert tail.read() == []
    journal.append([{"n": 1}, {"n": 2}])
    assert tail.read() == [{"n": 1}, {"n": 2}]   # what this process appended, at the next read
    through = journal.seal()
    journal.append([{"n": 3}])
    assert journal.read_through(through) == [{"n": 1}, {"n": 2}]   # fixed once sealed
    assert journal.tail(through).read() == [{"n": 3}]               # a reader after the position
    with journal.exclusive() as writer:
        assert tail.read() == [{"n": 3}]
        writer.append([{"n": 4}])
    end = journal.seal()
    assert journal.read_through(end, after=through) == [{"n": 3}, {"n": 4}]
    journal.drop_through(through)
    assert journal.read_through(end, after=through) == [{"n": 3}, {"n": 4}]
    assert tail.read() == [{"n": 4}] and tail.records_read == 4


def test_realtime_log_is_file_or_a_kafka_topic_and_a_bad_one_is_named():
    assert load_settings(env={}).realtime.log == "file"
    assert load_settings(env={"C360_REALTIME_LOG": "kafka://broker:9092/c360-events"}).realtime.log == \
        "kafka://broker:9092/c360-events"
    for bad in ("kafka://broker/c360-events", "kafka://broker:9092", "kafka://broker:9092/a/b", "s3://x/y"):
        with pytest.raises(InputError, match="realtime.log"):
            load_settings(env={"C360_REALTIME_LOG": bad})


def test_a_position_recorded_on_another_log_counts_as_none(tmp_path):
    kafka = open_log("kafka://127.0.0.1:1/ev", tmp_path / "events", "events")
    files = open_log("file", tmp_path / "events", "events")
    older_run = {"events_through": 7}   # written before runs named their log: the file journal's
    assert position_of(older_run, "events_through", files) == 7
    assert position_of(older_run, "events_through", kafka) == 0
    on_kafka = {"events_through": 7, "events_through_log": "kafka://other-host:9092/ev"}
    assert position_of(on_kafka, "events_through", kafka) == 7   # the same topic, reached by another address
    assert position_of(on_kafka, "events_through", files) == 0
