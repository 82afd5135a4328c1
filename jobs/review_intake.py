"""The nightly's side of the review queue: the stewards' decisions since the published run become labels this run
trains on, and the run draws the next queue, never asking about a pair already decided.

- The decisions log is sealed like the other real-time logs (c360.jobs.live_intake: the same positions in
  `realtime.json`, quarantine of a line c360.decisions refuses, drop after publish). Every decision ever made is
  carried from run to run in `er/decisions.parquet`; the latest about a pair is its answer.
- `match` and `non-match` answers become a labeling file (`er/decision_labels.csv`, one two-record set per pair) in
  the form `c360 er review` writes: the drawn pair of a set keeps the set's stratum and weight, so the match uses it
  as the probability sample it is (c360.entity_resolution.answers); a pair of a set's other records is `context`
  (taken as known, never extrapolated). The API serves sets in random order, so the sets answered of a draw are a
  random part of it: a drawn pair's weight is scaled by (sets of its stratum drawn) / (of them answered).
- `unsure` answers train nothing but are never asked again either.

Its files name records (park accounts' ids among them) and who decided: owner-only, as every file of a run (the
nightly writes under umask 077 and makes the run private before it publishes: c360.jobs.nightly).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from c360.decisions import NON_MATCH, UNSURE, decision_problem, pair_key
from c360.entity_resolution.labels import CONTEXT
from c360.io import spreadsheet_safe, write_table
from c360.jobs import live_intake
from c360.jobs.pipeline import RunContext

log = logging.getLogger("c360.nightly")

LOG_NAME = "decisions"
STATE_KEY = "decisions_through"   # realtime.json: the position of the decisions log this run contains
COLUMNS = ["set", "left", "right", "label", "decided_at", "run", "key", "chosen_by", "match_probability",
           "inclusion_probability", "weight", "sample", "drawn", "split_off", "split_to", "read_by"]


def _frame(records: list[dict], read_by: str | None = None) -> pd.DataFrame:
    rows = [{**{k: r.get(k) for k in ("set", "left", "right", "label", "decided_at", "run", "key")},
             **{k: (r.get("sample") or {}).get(k) for k in ("chosen_by", "match_probability", "inclusion_probability",
                                                            "weight", "sample", "drawn")},
             **_split(r.get("effect")), "read_by": read_by} for r in records]
    return pd.DataFrame(rows, columns=COLUMNS).astype({"split_to": "Int64"})


def _split(effect: dict | None) -> dict:
    """The records a decision split off and the new id they got (a join moves no id: the next match decides, and
    the stable ids name the survivor as for any merge)."""
    if not effect or not effect.get("new_match"):
        return {"split_off": [], "split_to": None}
    return {"split_off": list(effect["moved"]), "split_to": int(effect["to"])}


def run_decisions(ctx: RunContext) -> pd.DataFrame:
    """Every decision up to this run, the latest per pair last (written once into the run; a resumed run reads it
    back)."""
    run, state = ctx.run, live_intake._state(ctx.run)
    if STATE_KEY in state:
        return pd.read_parquet(run.decisions) if run.decisions.is_file() else _frame([])
    journal = live_intake._log(ctx, LOG_NAME)
    current, after = live_intake._published(ctx, STATE_KEY, journal)
    try:
        live_intake._drop_quietly(journal, after)
        through = journal.seal()
        after, logged = live_intake._read_sealed(journal, through, after)
    finally:
        journal.close()
    good, bad = live_intake._checked(logged, decision_problem)
    live_intake._quarantine(run, "decisions", bad)
    carried = live_intake._carried(current.decisions if current else None)
    parts = [p for p in (carried, _frame(good, run.run_id)) if p is not None and len(p)]
    decisions = pd.concat(parts, ignore_index=True) if parts else _frame([])
    if len(decisions):
        write_table(decisions, run.decisions)
    live_intake._update_state(run, published=live_intake._base(run, current), **{STATE_KEY: through},
                              **{f"{STATE_KEY}_log": journal.name}, decisions_after=after, decisions=len(decisions), decisions_quarantined=len(bad))
    log.info("steward decisions: %d (%s sealed at %d; %d new, %d quarantined)", len(decisions),
             journal.name, through, len(good), len(bad))
    return decisions


def decision_moves(ctx: RunContext) -> pd.DataFrame | None:
    """(id, match_id): the parts the decisions this run read from the log split off, under the ids they got, the last
    of each record (c360.jobs.live_intake.match_inputs keeps those ids stable: the part keeps its id, or the id
    changes list what became of it); None when they split none."""
    d = run_decisions(ctx)
    if not len(d):
        return None
    d = d[(d["read_by"] == ctx.run.run_id) & d["split_to"].notna()]
    rows = [(str(rid), int(to)) for moved, to in zip(d["split_off"], d["split_to"], strict=True) for rid in moved]
    if not rows:
        return None
    return pd.DataFrame(rows, columns=["id", "match_id"]).drop_duplicates("id", keep="last")


def latest(decisions: pd.DataFrame) -> pd.DataFrame:
    """The answer about each pair: its last decision."""
    if not len(decisions):
        return decisions
    keys = [pair_key(str(a), str(b)) for a, b in zip(decisions["left"], decisions["right"], strict=True)]
    return decisions.assign(_k=keys).drop_duplicates("_k", keep="last").drop(columns="_k").reset_index(drop=True)


def decision_labels(ctx: RunContext, id_col: str) -> Path | None:
    """The decisions' match / non-match answers as a labeling file in the run, or None when there are none. The
    match trains on them from the first one, with no floor: their threshold is kept unless they give evidence of a
    better one (threshold.from_sample's EVIDENCE_SE; before it, one informative non-match weighted up moved a run's
    threshold from 0.995 to 0.39 and lowered its F1)."""
    answers = latest(run_decisions(ctx))
    answers = answers[answers["label"] != UNSURE] if len(answers) else answers
    if not len(answers):
        return None
    drawn = answers["chosen_by"].fillna(CONTEXT) != CONTEXT
    answered = answers[drawn].groupby(["sample", "chosen_by"])["set"].transform("nunique")
    scale = (pd.to_numeric(answers.loc[drawn, "drawn"], errors="coerce") / answered).clip(lower=1.0).fillna(1.0)
    weight = pd.to_numeric(answers["weight"], errors="coerce").fillna(1.0).clip(lower=1.0)
    weight.loc[drawn] = weight.loc[drawn] * scale
    rows = []
    for i, a in enumerate(answers.itertuples(index=False)):
        set_id = f"{a.set}/{i + 1}"
        for side, rid in (("A", a.left), ("B" if a.label == NON_MATCH else "A", a.right)):
            rows.append({"labeling_set_id": set_id, "label": side, id_col: spreadsheet_safe(str(rid)),
                         "match_probability": a.match_probability if drawn.iloc[i] else None,
                         "chosen_by": a.chosen_by if drawn.iloc[i] else CONTEXT,
                         "inclusion_probability": 1.0 / weight.iloc[i], "weight": weight.iloc[i],
                         "sample": a.sample if isinstance(a.sample, str) else ""})
    write_table(pd.DataFrame(rows), ctx.run.decision_labels)
    return ctx.run.decision_labels


def decided_pairs(ctx: RunContext) -> pd.DataFrame:
    """Every pair a steward answered (unsure included): never asked again."""
    d = latest(run_decisions(ctx))
    return pd.DataFrame({"unique_id_l": d["left"].astype(str) if len(d) else [],
                         "unique_id_r": d["right"].astype(str) if len(d) else []})


def write_queue(ctx: RunContext, matched: str | Path, labels: list[str]) -> dict | None:
    """Draw the next review queue from this run's match (None when the settings ask for none)."""
    from c360.entity_resolution.review import NothingToReview, review

    n = ctx.settings.er.review_sets
    if n <= 0:
        return None
    out = ctx.run.review_queue
    try:
        drawn = review(matched, labels=labels, n=n, out=out, exclude=decided_pairs(ctx))
    except NothingToReview as exc:   # labels answer every scored pair: nobody needs to be asked anything
        log.info("review queue: %s", exc)
        return {"sets": 0}
    return drawn
