"""What a line of the decisions log may be (POST /review/decisions): one home for the rule the API applies when it
reads the log (a bad line is skipped, alone) and the nightly applies when it seals it (a bad line is quarantined).

A line is one steward's answer about two records of a labeling set of the review queue:

    {set, left, right, label, decided_at, key, run, sample, effect}

- `set` the labeling_set_id, `left`/`right` the two record ids (strings), `label` one of LABELS;
- `key` the short hash of the steward's API key (who decided), `run` the run whose queue asked, `sample` how the
  pair was drawn (the set's weight and stratum: what the nightly weighs its label by);
- `effect` what the API did at once: `{from, to, moved, new_match}` (the records `moved` from match `from` to match
  `to`; `new_match`: `to` is an id reserved for the split-off part), or null (nothing to do: already apart/together,
  unsure, or records the graph does not hold).

The latest line about a pair is its decision; a line repeating it is never written (idempotent POSTs).
"""

from __future__ import annotations

from typing import Any

MATCH, NON_MATCH, UNSURE = "match", "non-match", "unsure"
LABELS = (MATCH, NON_MATCH, UNSURE)


def pair_key(left: str, right: str) -> tuple[str, str]:
    """A pair of record ids in one order, whichever order it was given in."""
    return (left, right) if left <= right else (right, left)


MAX_MATCH_ID = 2 ** 63 - 1   # match ids are int64 wherever they are held (the matcher's index, parquet files)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _problem_of_effect(effect: Any) -> str | None:
    if effect is None:
        return None
    if not isinstance(effect, dict):
        return "effect: an object or null is required"
    if not all(type(effect.get(k)) is int and 0 <= effect[k] <= MAX_MATCH_ID for k in ("from", "to")):  # noqa: E721
        return f"effect: from and to must be integer match ids (0 to {MAX_MATCH_ID})"   # bool is an int: type()
    if not isinstance(effect.get("new_match"), bool):
        return "effect: new_match must be true or false"
    moved = effect.get("moved")
    if not isinstance(moved, list) or not moved or not all(isinstance(m, str) and m for m in moved):
        return "effect: moved must be a non-empty list of record ids"
    return None


def _problem_of_provenance(record: dict) -> str | None:
    """Who decided, when and how the pair was drawn: optional, but of their types (the nightly writes them into a
    typed parquet file and weighs the labels by the sample)."""
    if "decided_at" in record and not _is_number(record["decided_at"]):
        return "decided_at: a number (seconds since the epoch) is required"
    for field in ("run", "key"):
        if field in record and not isinstance(record[field], str):
            return f"{field}: a string is required"
    sample = record.get("sample")
    if sample is None:
        return None
    if not isinstance(sample, dict):
        return "sample: an object or null is required"
    for k in ("weight", "inclusion_probability", "match_probability", "drawn"):
        if sample.get(k) is not None and not _is_number(sample[k]):
            return f"sample: {k} must be a number"
    for k in ("sample", "chosen_by"):
        if sample.get(k) is not None and not isinstance(sample[k], str):
            return f"sample: {k} must be a string"
    return None


def decision_problem(record: Any) -> str | None:
    """Why a decisions-log line is not a decision ("field: why"), or None when it is one."""
    if not isinstance(record, dict):
        return "record: not a JSON object"
    for field in ("set", "left", "right"):
        if not isinstance(record.get(field), str) or not record[field]:
            return f"{field}: a non-empty string is required"
    if record["left"] == record["right"]:
        return "right: the two records of a decision must differ"
    if record.get("label") not in LABELS:
        return f"label: one of {', '.join(LABELS)} is required"
    return _problem_of_provenance(record) or _problem_of_effect(record.get("effect"))
