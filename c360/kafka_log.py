"""A real-time log on a Kafka topic (`realtime.log: kafka://HOST:PORT/TOPIC`; c360.log_contract has the contract).

- One partition per topic: a position is an offset, the order of the log is the order of the topic (the customers
  log decides match_ids in that order). The topic is created when absent: events keep every record until a published
  run contains them (`retention.ms=-1`, then `drop_through` deletes the records before the run's offset); a keyed log
  (customers, by record id) is compacted instead, and compaction never changes what a reader decides (`record_key`).
- `append` returns once every in-sync replica has the records (idempotent producer, `acks=all`), within
  `timeout_s`; otherwise LogUnavailable (an OSError: the API answers 503). Concurrent appends share the producer's
  batches, as the file journal's share one fsync.
- Every tail has its own consumer on its own thread (no consumer group: it assigns the partition from the run's
  offset), so a record appended on any host reaches every worker in about a fetch round trip. A tail's first read
  waits (at most `timeout_s`) for the end of the topic as it was then: a restarted worker has caught up before it
  serves. After an append of its own process or of another worker of this host, a read waits (at most `timeout_s`)
  for the appended records, so a POST then a GET on any worker of the host sees the event, as with the file journal:
  the workers share how far they appended in a small file beside the lock file (c360.host_barrier). A consumer that
  does not get there in time is not waited for again up to that offset (the answer comes without the newest
  records, and a warning is logged).
- `exclusive` holds a lock file under the warehouse (every worker of this host) and makes the tails read to the end
  of the topic first. Workers of two hosts are not excluded from each other: two commits racing on two hosts may both
  decide before either reads the other's; every reader then applies the topic's order (c360.commits.CommitOrder:
  the first line of a record id wins, a new customer or a split whose id an earlier line took gets the next free
  one), and a writer whose line lost answers 409.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from c360.host_barrier import HostBarrier
from c360.log_contract import LogUnavailable, RealtimeLog

log = logging.getLogger("c360.kafka_log")

DELIVERY_TIMEOUT_S = 5.0   # an append not acknowledged within this fails (503): no request waits longer on the log
COMPACTION_LAG_S = 7 * 86400.0   # a keyed topic's min.compaction.lag.ms (realtime.log_compaction_lag_s)
LAG_TIMEOUT_S = 1.0        # a consumer-lag gauge waits at most this for the broker's end offset ...
LAG_CACHE_S = 1.0          # ... and reuses one it read within this (every tail of the topic: one query a second)
LAG_RETRY_S = 10.0         # ... or, the broker not answering, the last one known for this long
RETRY_S = 1.0              # a tail that lost the broker tries again after this
LOCK_FILE = ".lock"
TOPIC_ID_RETRY_S = 10.0    # a topic whose id the broker did not give is asked again after this


class KafkaLog(RealtimeLog):
    """The log of one topic on the brokers `bootstrap` (thread-safe; a producer and tails opened on first use)."""

    def __init__(self, bootstrap: str, topic: str, lock_dir: Path | None = None, keyed_by: str | None = None,
                 timeout_s: float = DELIVERY_TIMEOUT_S, compaction_lag_s: float = COMPACTION_LAG_S):
        self.bootstrap, self.topic, self.lock_dir, self.keyed_by = bootstrap, topic, lock_dir, keyed_by
        self.timeout_s, self.compaction_lag_s = timeout_s, compaction_lag_s
        self._lock = threading.Lock()            # the producer, the admin client, the topic check
        self._mutex = threading.Lock()           # exclusive() among this process's threads
        self._lock_fd: int | None = None
        self._producer = None
        self._admin = None
        self._meta = None                        # a consumer handle for watermark queries (thread-safe in librdkafka)
        self._topic_ready = False
        self._barrier = 0                        # tails read up to this offset before they answer
        self._host: HostBarrier | None = None    # how far this host's workers appended (needs the topic's id)
        self._host_asked = float("-inf")         # when the topic's id was last asked for
        self._host_lock = threading.Lock()       # one question at a time (never taken on the event loop)
        self._end_seen: tuple[float, int | None] | None = None   # (valid until, end offset): the lag's query
        self._tails: weakref.WeakSet[KafkaTail] = weakref.WeakSet()

    def __repr__(self) -> str:
        return f"KafkaLog({self.name!r})"

    @property
    def name(self) -> str:
        return f"kafka://{self.bootstrap}/{self.topic}"

    # ---- clients ------------------------------------------------------------------------------------------------
    def _config(self, **extra) -> dict[str, Any]:
        ms = int(self.timeout_s * 1000)
        return {"bootstrap.servers": self.bootstrap, "socket.timeout.ms": max(ms, 1000),
                "socket.connection.setup.timeout.ms": max(ms, 1000), "log_level": 3, **extra}

    def _admin_client(self):
        from confluent_kafka.admin import AdminClient

        with self._lock:
            if self._admin is None:
                self._admin = AdminClient(self._config())
            return self._admin

    def topic_config(self) -> dict[str, str]:
        """The configuration the topic is created with: kept until dropped, or (keyed) compacted, no record younger
        than `compaction_lag_s`."""
        if self.keyed_by is None:
            return {"retention.ms": "-1"}
        return {"cleanup.policy": "compact", "min.compaction.lag.ms": str(int(self.compaction_lag_s * 1000))}

    def ensure_topic(self) -> None:
        """Create the topic when absent (one partition; compacted when keyed, else kept until dropped); a topic of
        several partitions is refused (its offsets are not one position)."""
        if self._topic_ready:
            return
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import NewTopic

        admin = self._admin_client()
        try:
            meta = admin.list_topics(self.topic, timeout=self.timeout_s).topics.get(self.topic)
            if meta is None or meta.error is not None:
                config = self.topic_config()
                future = admin.create_topics([NewTopic(self.topic, 1, -1, config=config)],
                                             operation_timeout=self.timeout_s)[self.topic]
                try:
                    future.result(timeout=self.timeout_s)
                    log.info("created topic %s (%s)", self.name, config)
                except KafkaException as exc:
                    if "TOPIC_ALREADY_EXISTS" not in str(exc):
                        raise
            elif len(meta.partitions) != 1:
                raise LogUnavailable(f"{self.name}: the topic has {len(meta.partitions)} partitions; a real-time "
                                     f"log is one partition (its offsets are the nightly's positions)")
        except LogUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - KafkaException, timeouts: the broker is not reachable
            raise LogUnavailable(f"{self.name}: the topic cannot be checked or created: {exc}") from exc
        self._topic_ready = True

    def host_barrier(self) -> HostBarrier | None:
        """The file where this host's workers share how far they appended (None without a lock directory, or while
        the broker does not give the topic's id: asked again every TOPIC_ID_RETRY_S). Blocking: off the loop."""
        if self._host is not None or self.lock_dir is None or time.monotonic() - self._host_asked < TOPIC_ID_RETRY_S:
            return self._host
        with self._host_lock:
            if self._host is None and time.monotonic() - self._host_asked >= TOPIC_ID_RETRY_S:
                self._host_asked = time.monotonic()
                self._host = self._describe_host()
        return self._host

    def _describe_host(self) -> HostBarrier | None:
        from confluent_kafka import TopicCollection

        try:
            self.ensure_topic()
            future = self._admin_client().describe_topics(TopicCollection([self.topic]),
                                                          request_timeout=self.timeout_s)[self.topic]
            topic_id = future.result(timeout=self.timeout_s).topic_id
        except Exception as exc:  # noqa: BLE001 - the broker away or a denied describe: asked again later
            log.warning("%s: the topic's id is not known (%s): other workers' appends are not waited for",
                        self.name, exc)
            return None
        if topic_id is None or (topic_id.get_most_significant_bits(), topic_id.get_least_significant_bits()) == (0, 0):
            log.warning("%s: the broker gives no topic id: other workers' appends are not waited for", self.name)
            return None
        return HostBarrier(self.lock_dir, self.topic, str(topic_id))

    def shared_barrier(self) -> int:
        """How far this host's workers appended (0: not known). One read of a small file: safe on the event loop."""
        host = self._host
        return host.read() if host is not None else 0

    def heal_shared_barrier(self, bad: int) -> bool:
        """A tail could not read to `bad`, the host's shared offset: when the topic ends before it (a broker restored
        from a snapshot), the shared offset is set back to the end. Blocking: off the loop."""
        host = self._host
        if host is None:
            return False
        try:
            end = self.end_offset()
            if bad <= end or not host.heal(bad, end):
                return False
        except OSError as exc:   # LogUnavailable included
            log.warning("%s: the shared offset %d is not checked: %s", self.name, bad, exc)
            return False
        log.warning("%s: the shared offset %d lay beyond the end of the topic (%d): set back", self.name, bad, end)
        return True

    def _producer_client(self):
        from confluent_kafka import Producer

        with self._lock:
            if self._producer is None:
                ms = int(self.timeout_s * 1000)
                self._producer = Producer(self._config(**{
                    "enable.idempotence": True, "acks": "all", "linger.ms": 1,
                    "message.timeout.ms": ms, "request.timeout.ms": min(ms, 30000)}))
                # one thread serves the delivery reports of every append (each waits on its own event): waiting
                # appends polling in turn cost a wake-up each per poll interval and added that interval to each
                threading.Thread(target=self._serve_deliveries, args=(self._producer,), daemon=True,
                                 name=f"c360-deliveries-{self.topic}").start()
            return self._producer

    def _serve_deliveries(self, producer) -> None:
        while self._producer is producer:
            producer.poll(0.05)

    def end_offset(self, timeout_s: float | None = None) -> int:
        """The topic's high watermark now (LogUnavailable when the broker does not answer within `timeout_s`, by
        default the log's timeout)."""
        from confluent_kafka import Consumer, TopicPartition

        self.ensure_topic()
        with self._lock:
            if self._meta is None:
                self._meta = Consumer(self._config(**{"group.id": f"c360-{self.topic}", "enable.auto.commit": False}))
            meta = self._meta
        try:
            timeout = self.timeout_s if timeout_s is None else timeout_s
            return int(meta.get_watermark_offsets(TopicPartition(self.topic, 0), timeout=timeout)[1])
        except Exception as exc:  # noqa: BLE001 - KafkaException: not reachable
            raise LogUnavailable(f"{self.name}: the end of the log cannot be read: {exc}") from exc

    def recent_end_offset(self) -> int | None:
        """The end offset for a lag gauge: read within LAG_CACHE_S, else asked for (at most LAG_TIMEOUT_S); the last
        one known while the broker does not answer, asked again after LAG_RETRY_S (None: never known)."""
        seen = self._end_seen
        if seen is not None and time.monotonic() < seen[0]:
            return seen[1]
        end = None if seen is None else seen[1]
        if not self._topic_ready:   # the topic check waits the log's timeout: not a gauge's to wait
            return end
        try:
            end, keep = self.end_offset(LAG_TIMEOUT_S), LAG_CACHE_S
        except LogUnavailable as exc:   # a broker away: asked again only after LAG_RETRY_S
            log.debug("%s: lag not measured: %s", self.name, exc)
            keep = LAG_RETRY_S
        self._end_seen = (time.monotonic() + keep, end)
        return end

    # ---- writing ------------------------------------------------------------------------------------------------
    def _key(self, record: dict[str, Any]) -> bytes | None:
        return None if self.keyed_by is None else record_key(record, self.keyed_by)

    def _produce(self, records: list[dict[str, Any]]) -> int:
        """Send and wait for the acknowledgement of every record; the offset after the last one."""
        self.ensure_topic()
        producer = self._producer_client()
        done = threading.Event()
        state = {"left": len(records), "error": None, "end": 0}

        def delivered(err, msg):
            if err is not None:
                state["error"] = state["error"] or err
            else:
                state["end"] = max(state["end"], msg.offset() + 1)
            state["left"] -= 1
            if state["left"] == 0:
                done.set()

        try:
            for record in records:
                producer.produce(self.topic, orjson.dumps(record), key=self._key(record), partition=0,
                                 on_delivery=delivered)
        except BufferError as exc:
            raise LogUnavailable(f"{self.name}: the producer's queue is full: {exc}") from exc
        done.wait(self.timeout_s + 1.0)   # the producer fails what it has not delivered within timeout_s
        if not done.is_set() or state["error"] is not None:
            error = state["error"]
            if error is not None and error.fatal():   # an idempotent producer that cannot go on: a new one next time
                with self._lock:
                    if self._producer is producer:
                        self._producer = None
            raise LogUnavailable(f"{self.name}: {len(records)} record(s) not acknowledged: "
                                 f"{state['error'] or 'no answer'}")
        self._raise_barrier(state["end"])
        self._tell_host(state["end"])
        return state["end"]

    def _raise_barrier(self, offset: int) -> None:
        with self._lock:
            self._barrier = max(self._barrier, offset)

    def _tell_host(self, offset: int) -> None:
        """Tell this host's other workers (host_barrier) that their next read must reach `offset`."""
        host = self.host_barrier()
        if host is None:
            return
        try:
            host.raise_to(offset)
        except OSError as exc:   # the records are in the log: a worker that misses this reads them a fetch later
            log.warning("%s: the other workers are not told of the append: %s", self.name, exc)

    def append(self, records: list[dict[str, Any]]) -> None:
        if records:
            self._produce(records)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[_Writer]:
        with self._mutex:
            if self.lock_dir is not None and self._lock_fd is None:
                os.makedirs(self.lock_dir, mode=0o700, exist_ok=True)
                self._lock_fd = os.open(self.lock_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
            if self._lock_fd is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                self._raise_barrier(self.end_offset())   # the tails read everything before the caller decides
                yield _Writer(self)
            finally:
                if self._lock_fd is not None:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def seal(self) -> int:
        return self.end_offset()

    def drop_through(self, through: int) -> list[int]:
        """Delete the records before offset `through` (a keyed log is compacted instead: nothing to do)."""
        if self.keyed_by is not None or through <= 0:
            return []
        from confluent_kafka import TopicPartition

        self.ensure_topic()
        try:
            future = self._admin_client().delete_records([TopicPartition(self.topic, 0, through)],
                                                         request_timeout=self.timeout_s)
            for f in future.values():
                f.result(timeout=self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - the next run drops them
            raise LogUnavailable(f"{self.name}: records before offset {through} not deleted: {exc}") from exc
        return [through]

    # ---- reading ------------------------------------------------------------------------------------------------
    def read_through(self, through: int, after: int = 0) -> list[dict[str, Any]]:
        """The records from offset `after` to before `through` (LogUnavailable when they cannot all be read)."""
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        if through <= after:
            return []
        self.ensure_topic()
        consumer = Consumer(self._config(**{"group.id": f"c360-{self.topic}", "enable.auto.commit": False,
                                            "auto.offset.reset": "earliest"}))
        out: list[dict[str, Any]] = []
        try:
            try:
                low = consumer.get_watermark_offsets(TopicPartition(self.topic, 0), timeout=self.timeout_s)[0]
            except Exception as exc:  # noqa: BLE001 - KafkaException: not reachable
                raise LogUnavailable(f"{self.name}: the log cannot be read: {exc}") from exc
            if low >= through:   # dropped: a published run contained them
                return out
            after = max(after, low)
            consumer.assign([TopicPartition(self.topic, 0, after if after > 0 else OFFSET_BEGINNING)])
            idle_since = time.monotonic()
            while True:
                msgs = consumer.consume(1000, timeout=0.2)
                for m in msgs:
                    if m.error() is not None:
                        continue
                    if m.offset() >= through:
                        return out
                    out.extend(_records(m.value(), self.name, m.offset()))
                    if m.offset() >= through - 1:
                        return out
                if msgs:
                    idle_since = time.monotonic()
                else:
                    position = consumer.position([TopicPartition(self.topic, 0)])[0].offset
                    if position >= through:   # the last records were compacted away
                        return out
                    if time.monotonic() - idle_since > max(self.timeout_s, 10.0):
                        raise LogUnavailable(f"{self.name}: offsets {after} to {through} not readable "
                                             f"(read to {position})")
        finally:
            consumer.close()

    def tail(self, after: int = 0) -> KafkaTail:
        tail = KafkaTail(self, after)
        self._tails.add(tail)
        return tail

    def close(self) -> None:
        """Stop the tails, flush and drop the producer, release the lock file (a later use opens them again)."""
        for tail in list(self._tails):
            tail.close()
        with self._lock:
            producer, meta = self._producer, self._meta
            self._producer, self._admin, self._meta = None, None, None
        if producer is not None:
            producer.flush(1.0)
        if meta is not None:
            meta.close()
        with self._mutex:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
        with self._host_lock:   # a later use asks for the topic's id again and opens the file again
            host, self._host, self._host_asked = self._host, None, float("-inf")
        if host is not None:
            host.close()


class _Writer:
    """Appends and seals while `KafkaLog.exclusive` is held."""

    def __init__(self, journal: KafkaLog):
        self.journal = journal

    def append(self, records: list[dict[str, Any]]) -> None:
        self.journal.append(records)

    def seal(self) -> int:
        return self.journal.end_offset()


def record_key(record: dict[str, Any], keyed_by: str) -> bytes:
    """The key of a record of a compacted topic: JSON `[the value of keyed_by (a record without it: its first field's
    name), the record's line nonce]`, and for a record without a nonce a new random one, so no two records share a key.

    Compaction keeps the latest record of each key. The customers log is decided in log order, first line of a record
    id wins (c360.commits.CommitOrder): keyed by record id alone, a racing writer's later line would outlive the line
    that won, one reservation would remove another, and a nightly's reservation line ({reserved_through: N}, which
    has no nonce) could be removed by the next while a published run does not contain it yet (a week of failed
    gates). With a key of its own, no record is ever removed by compaction; the record id leads the key, and
    min.compaction.lag.ms (realtime.log_compaction_lag_s) stays as a second guard for topics keyed by older versions."""
    value = record.get(keyed_by)
    key = str(value) if value is not None else str(next(iter(record), ""))
    nonce = record.get("line")
    return orjson.dumps([key, str(nonce) if nonce is not None else uuid.uuid4().hex])


def _records(value: bytes | None, where: str, offset: int) -> list[dict[str, Any]]:
    """The record of one message; a value no writer of this module wrote (not JSON) is logged and skipped."""
    try:
        return [orjson.loads(value or b"")]
    except orjson.JSONDecodeError:
        log.error("%s: skipped offset %d, not JSON (%d bytes)", where, offset, len(value or b""))
        return []


class KafkaTail:
    """An API worker's reader of one topic from an offset: a consumer on its own thread queues what arrives; `read`
    hands it over (not thread-safe: its owner holds a lock)."""

    def __init__(self, journal: KafkaLog, after: int = 0):
        self.journal, self.after = journal, after
        self.records_read = 0
        self.position = after                  # the next offset the consumer delivers
        self.read_position = after             # ... that `read` hands over (everything before it was read)
        self._queue: deque[tuple[int, bytes]] = deque()
        self._queued_bytes = 0
        self._cv = threading.Condition()
        self._stop = threading.Event()
        self._caught_up = False                # the first read waits for the end of the topic
        self._given_up = 0                     # an offset of this process's the consumer did not reach in time ...
        self._shared_given_up = 0              # ... and one of the host's: neither waited for again
        self._thread = threading.Thread(target=self._run, name=f"c360-tail-{journal.topic}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        warned = False
        while not self._stop.is_set():
            consumer = None
            try:
                self.journal.ensure_topic()
                consumer = Consumer(self.journal._config(**{
                    "group.id": f"c360-{self.journal.topic}", "enable.auto.commit": False,
                    "auto.offset.reset": "earliest", "fetch.wait.max.ms": 100}))
                consumer.assign([TopicPartition(self.journal.topic, 0,
                                                self.position if self.position > 0 else OFFSET_BEGINNING)])
                warned = False
                while not self._stop.is_set():
                    # the first message as soon as it arrives, then what else is there (consume() alone waits for
                    # a full batch or its timeout: that timeout was every record's delay)
                    first = consumer.poll(0.1)
                    msgs = [] if first is None else [first, *consumer.consume(1000, timeout=0)]
                    good = [m for m in msgs if m.error() is None]
                    if good:
                        with self._cv:
                            for m in good:
                                value = m.value() or b""
                                self._queue.append((m.offset(), value))
                                self._queued_bytes += len(value)
                            self.position = good[-1].offset() + 1
                            self._cv.notify_all()
            except Exception as exc:  # noqa: BLE001 - the broker is away: serve what was read, try again
                if not warned:
                    log.warning("%s: not reading the log (%s); retrying every %.0f s", self.journal.name, exc,
                                RETRY_S)
                    warned = True
                self._stop.wait(RETRY_S)
            finally:
                if consumer is not None:
                    with contextlib.suppress(Exception):
                        consumer.close()

    def _targets(self) -> tuple[int, int]:
        """The offsets a read must reach: (what this process appended or was told to read to, and on the first read
        the end of the topic; how far this host's workers appended)."""
        own = self.journal._barrier
        if not self._caught_up:
            self._caught_up = True
            try:
                own = max(own, self.journal.end_offset())
            except LogUnavailable as exc:
                log.warning("%s: serving without the log's latest records: %s", self.journal.name, exc)
        self.journal.host_barrier()   # known from the first read on (asked again while the broker does not say)
        return own, self.journal.shared_barrier()

    def read(self) -> list[dict[str, Any]]:
        own, shared = self._targets()
        own = own if own > self._given_up else 0
        shared = shared if shared > self._shared_given_up else 0
        target = max(own, shared)
        with self._cv:
            if self.position < target:
                self._cv.wait_for(lambda: self.position >= target or self._stop.is_set(),
                                  timeout=self.journal.timeout_s)
            missed_own, missed_shared = self.position < own, self.position < shared
            if missed_own:
                self._given_up = own
                if self.journal._mutex.locked():   # a writer decides on what it read: it must have everything
                    raise LogUnavailable(f"{self.journal.name}: not read to offset {own} in time")
            if missed_own or missed_shared:
                log.warning("%s: read to offset %d of %d in time", self.journal.name, self.position, target)
            batch, self._queue, self._queued_bytes = list(self._queue), deque(), 0
            self.read_position = max(self.read_position, self.position)
        if missed_shared and not self.journal.heal_shared_barrier(shared):
            self._shared_given_up = shared
        out: list[dict[str, Any]] = []
        for offset, value in batch:
            out.extend(_records(value, self.journal.name, offset))
        self.records_read += len(out)
        return out

    def quiet(self) -> bool:
        """True when nothing arrived since the last read and nothing this process or another worker of this host
        appended is still on its way (unless the consumer was not waited for past it). Safe on the event loop."""
        own, shared = self.journal._barrier, self.journal.shared_barrier()
        return (not self._queue and self._caught_up and (self.position >= own or own <= self._given_up)
                and (self.position >= shared or shared <= self._shared_given_up))

    def unread_bytes(self) -> int:
        """Bytes that arrived and were not read yet (what this process fetched: `lag_records` counts the topic)."""
        return self._queued_bytes

    def lag_records(self) -> int | None:
        """Offsets of the topic after what was read: the broker's end offset (KafkaLog.recent_end_offset: cached,
        bounded) minus the read position, fetched or not; with the broker away, against the last end known."""
        end = self.journal.recent_end_offset()
        return None if end is None else max(0, end - self.read_position)

    def close(self) -> None:
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
