"""Where things live: the warehouse, a run's directory and a match output. The one place that spells those paths.

    warehouse/
      current -> runs/<run_id>          the published run (one atomic symlink)
      inputs/insurance-<n>-seed<s>/     generated insurance sources (made once)
      realtime/events/  realtime/customers/  realtime/decisions/   append-only logs the API writes (c360.append_log)
      runs/<run_id>/
        manifest.json  report.html  tmp/  realtime.json (how much of each real-time log the run contains)
        quarantine.jsonl (logged lines the run refused: an event no rule of c360.events allows; owner-only)
        er/committed.parquet (customers committed in real time)  er/input.parquet  er/previous_ids.parquet
        recsys/events.parquet (events posted in real time)
        er/merged.parquet  er/matched.parquet (+ .report.json .model.json .pairs.parquet .id_changes.parquet)
        er/metrics.json
        er/review.csv (the sets stewards are asked next: c360 er review's file)  er/decisions.parquet (every steward
          decision up to this run)  er/decision_labels.csv (them as a labeling file, what the match trained on)
        recsys/interactions.parquet  recsys/items.csv  recsys/metrics.json  recsys/recs.csv  recsys/<algo>/
        recsys/served/ (recs.csv as the API maps it: recsys.served_table)
        recsys/trips.parquet  recsys/walks.parquet (the session model's trips and measured walking minutes)
        graph/master_vertex.csv  graph/master_edge.csv  graph/graph.json (embedded store of the run)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from c360.errors import InputError
from c360.hadoop_fs import beside, is_uri, local_path

EMBEDDED_GRAPH_FILE = "graph.json"


@dataclass(frozen=True)
class MatchOutput:
    """A match result (`c360 er match --out`) and the files written beside it.

    `matched` is a local Path, or a Hadoop URI kept as the string given (hdfs://, s3a://, file://: a Spark run
    writes there); the files beside it are then URIs too."""

    matched: Path | str

    def __post_init__(self):
        m = self.matched
        object.__setattr__(self, "matched", str(m) if is_uri(m) else Path(m))

    @classmethod
    def local(cls, matched: str | Path | MatchOutput) -> MatchOutput:
        """The output as local paths, for readers of this machine's files (file: URIs are local); InputError naming
        the path for another URI (hdfs://, s3a://)."""
        m = matched.matched if isinstance(matched, MatchOutput) else matched
        path = local_path(m)
        if path is None:
            raise InputError(f"{m}: a match output is read from local paths only: copy it and the files beside it "
                             f"(.report.json, .model.json, .pairs.parquet, .id_changes.parquet) here first "
                             f"(hadoop fs -get)")
        return cls(path)

    @property
    def is_uri(self) -> bool:
        return isinstance(self.matched, str)

    def _beside(self, suffix: str) -> Path | str:
        if isinstance(self.matched, str):
            return beside(self.matched, suffix)
        return self.matched.with_name(self.matched.name + suffix)

    @property
    def report(self) -> Path | str:
        """Counts, timings, histogram and parameters of the run."""
        return self._beside(".report.json")

    @property
    def model(self) -> Path | str:
        """The trained Splink model (JSON)."""
        return self._beside(".model.json")

    @property
    def pairs(self) -> Path | str:
        """Every scored pair with its match probability."""
        return self._beside(".pairs.parquet")

    @property
    def id_changes(self) -> Path | str:
        """What became of every match_id of the previous output (kept, merged, split, retired) and the new ids
        (c360.entity_resolution.id_changes); only when the run had a previous output."""
        return self._beside(".id_changes.parquet")


@dataclass(frozen=True)
class RunLayout:
    """The files of one run under warehouse/runs/<run_id>/."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @property
    def run_id(self) -> str:
        return self.root.name

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    @property
    def tmp(self) -> Path:
        """Scratch space of the run (Spark checkpoints); removed when the run ends."""
        return self.root / "tmp"

    @property
    def spark_checkpoints(self) -> Path:
        return self.tmp / "spark-checkpoints"

    @property
    def realtime(self) -> Path:
        """How much of each real-time log the run contains (the segments it sealed) and the match_ids it reserved."""
        return self.root / "realtime.json"

    @property
    def quarantine(self) -> Path:
        """The real-time logs' lines this run refused (JSON lines: log, problem, the record as logged; mode 0600)."""
        return self.root / "quarantine.jsonl"

    # entity resolution
    @property
    def merged(self) -> Path:
        return self.root / "er" / "merged.parquet"

    @property
    def match(self) -> MatchOutput:
        return MatchOutput(self.root / "er" / "matched.parquet")

    @property
    def er_metrics(self) -> Path:
        return self.root / "er" / "metrics.json"

    @property
    def committed(self) -> Path:
        """Every customer record committed in real time up to this run, with the match_id it was given."""
        return self.root / "er" / "committed.parquet"

    @property
    def match_input(self) -> Path:
        """The merged records plus the committed ones: what the match step matches when there are committed ones."""
        return self.root / "er" / "input.parquet"

    @property
    def previous_ids(self) -> Path:
        """The match_ids to keep stable: the published run's and those given to committed records."""
        return self.root / "er" / "previous_ids.parquet"

    @property
    def review_queue(self) -> Path:
        """The labeling sets the API's review queue asks stewards (c360 er review's file; records' fields: 0600)."""
        return self.root / "er" / "review.csv"

    @property
    def decisions(self) -> Path:
        """Every steward decision (POST /review/decisions) up to this run, carried from run to run."""
        return self.root / "er" / "decisions.parquet"

    @property
    def decision_labels(self) -> Path:
        """The decisions as a labeling file (c360 er match --labels), what this run's match trained on."""
        return self.root / "er" / "decision_labels.csv"

    @property
    def labels_pr_html(self) -> Path:
        return self.root / "er" / "labels_pr.html"

    # recommenders
    @property
    def interactions(self) -> Path:
        return self.root / "recsys" / "interactions.parquet"

    @property
    def items(self) -> Path:
        return self.root / "recsys" / "items.csv"

    @property
    def trips(self) -> Path:
        return self.root / "recsys" / "trips.parquet"

    @property
    def walks(self) -> Path:
        return self.root / "recsys" / "walks.parquet"

    @property
    def events(self) -> Path:
        """Every event posted in real time up to this run (USER_ID, ITEM_ID, TIMESTAMP, EVENT_VALUE)."""
        return self.root / "recsys" / "events.parquet"

    @property
    def identities(self) -> Path:
        """The accounts the run's match joined: one person's accounts share one history (c360.recsys.identities)."""
        return self.root / "recsys" / "identities.parquet"

    @property
    def shared_interactions(self) -> Path:
        """The interactions the models trained on when accounts share their person's history."""
        return self.root / "recsys" / "shared_interactions.parquet"

    @property
    def recsys_metrics(self) -> Path:
        return self.root / "recsys" / "metrics.json"

    @property
    def recs(self) -> Path:
        return self.root / "recsys" / "recs.csv"

    @property
    def served_table(self) -> Path:
        """The recs as the API serves them: a memory-mapped table every worker shares (c360.recsys.served_table)."""
        return self.root / "recsys" / "served"

    def model_relpath(self, algo: str) -> str:
        """A saved model's directory relative to the run (what the manifest records)."""
        return f"recsys/{algo}"

    def model_dir(self, algo: str) -> Path:
        return self.root / self.model_relpath(algo)

    # graph
    @property
    def graph_dir(self) -> Path:
        """The run's graph: Neptune bulk-load CSV parts (vertex-*, edge-*) and the embedded store."""
        return self.root / "graph"

    @property
    def embedded_graph(self) -> Path:
        """The run's own networkx store (the embedded default)."""
        return self.root / "graph" / EMBEDDED_GRAPH_FILE


@dataclass(frozen=True)
class Warehouse:
    """The warehouse: runs, the published `current`, generated inputs."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def current_link(self) -> Path:
        return self.root / "current"

    def run(self, run_id: str) -> RunLayout:
        return RunLayout(self.runs / run_id)

    def current(self) -> RunLayout | None:
        """The published run, or None when nothing is published (or the link is broken)."""
        link = self.current_link
        try:
            return RunLayout(Path(os.path.realpath(link))) if link.exists() else None
        except OSError:
            return None

    @property
    def events_log(self) -> Path:
        """POST /events appends here (c360.append_log segments)."""
        return self.realtime_logs / "events"

    @property
    def customers_log(self) -> Path:
        """POST /customers/match?commit=true appends here (c360.append_log segments)."""
        return self.realtime_logs / "customers"

    @property
    def realtime_logs(self) -> Path:
        """The real-time logs' directory (events_log, customers_log, and decisions: c360.realtime_log)."""
        return self.root / "realtime"

    @property
    def inputs(self) -> Path:
        """Inputs the nightly made (generated insurance sources)."""
        return self.root / "inputs"

    def generated_insurance(self, customers: int, seed: int) -> Path:
        """Where generated insurance sources of this size and seed are kept (made once, reused)."""
        return self.inputs / f"insurance-{customers}-seed{seed}"

    def publish(self, run: RunLayout) -> Path:
        """Point `current` at `run` with one atomic rename of a fresh symlink.

        Readers see either the old or the new version, never a missing or half-switched one.
        """
        target = os.path.relpath(run.root.resolve(), self.root.resolve())
        tmp = self.root / f".current.{run.run_id}.tmp"
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(target, tmp, target_is_directory=True)
        os.replace(tmp, self.current_link)
        return self.current_link
