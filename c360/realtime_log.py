"""The real-time logs (events, committed customer records, steward decisions, ...) opened where `realtime.log`
says: the one factory of the backends of the log contract (c360.log_contract): the file journal under the warehouse
(c360.append_log, the embedded default) or a Kafka topic (c360.kafka_log). The API and the nightly open their logs
here (`warehouse_log`) and never ask which backend it is; the contract's names are importable from here too."""

from __future__ import annotations

from pathlib import Path

from c360.append_log import AppendLog
from c360.kafka_log import COMPACTION_LAG_S, KafkaLog
from c360.layout import Warehouse
from c360.log_contract import LogSpec, LogUnavailable, RealtimeLog, parse_log_spec, position_of
from c360.settings import RealtimeSettings

# the record field a log is keyed by (a compacted topic on Kafka, c360.kafka_log.record_key: a line is keyed by the
# field's value and its `line` nonce, or a random one, so compaction never removes a line a reader may decide on);
# a log not named here keeps every record until a published run contains it
KEYED_BY = {"customers": "id"}

__all__ = ["KEYED_BY", "LogSpec", "LogUnavailable", "RealtimeLog", "open_log", "parse_log_spec", "position_of",
           "warehouse_log"]


def warehouse_log(warehouse: Warehouse, log_name: str, realtime: RealtimeSettings | None = None) -> RealtimeLog:
    """The warehouse's log `log_name` (events, customers, ...) where `realtime.log` says: its directory under
    `warehouse/realtime/`, or its topic."""
    realtime = realtime or RealtimeSettings()
    return open_log(realtime.log, warehouse.realtime_logs / log_name, log_name, keyed_by=KEYED_BY.get(log_name),
                    timeout_s=realtime.log_timeout_s, compaction_lag_s=realtime.log_compaction_lag_s)


def open_log(spec: str | LogSpec | None, directory: str | Path, log_name: str, keyed_by: str | None = None,
             timeout_s: float = 5.0, compaction_lag_s: float = COMPACTION_LAG_S) -> RealtimeLog:
    """The log `log_name` ("events", "customers", ...) as `spec` says: the file journal in `directory`, or its
    Kafka topic. `keyed_by`: the record field that keys it (a compacted topic, c360.kafka_log.record_key: records
    without the field are keyed by their first field's name; a record's `line` nonce, or a random one, joins its key:
    no two share one), compacting no record younger than `compaction_lag_s`. On Kafka `directory` still holds the
    lock file of `exclusive`; `timeout_s` bounds an append's wait for the broker."""
    parsed = spec if isinstance(spec, LogSpec) else parse_log_spec(spec)
    if not parsed.is_kafka:
        return AppendLog(directory)
    return KafkaLog(parsed.bootstrap, parsed.topic_of(log_name), lock_dir=Path(directory), keyed_by=keyed_by,
                    timeout_s=timeout_s, compaction_lag_s=compaction_lag_s)
