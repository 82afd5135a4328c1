"""What a line of the decisions log may be (POST /review/decisions): one home for the rule the API applies when it
reads the log (a bad line is skipped, alone) and the nightly applies when it seals it (a bad line is quarantined).

A line is one steward's answer about two records of a labeling set of the review queue:

    {set, left, right, label, decided_at, key, run, effect}

- `set` the labeling_set_id, `left`/`right` the two record ids (strings), `label` one of LABELS;
- `key` the short hash of the steward's API key (who decided), `run` the run whose queue asked;
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


def _problem_of_effect(effect: Any) -> str | None:
    if effect is None:
        return None
    if not isinstance(effect, dict):
        return "effect: an object or null is required"
    if type(effect.get("from")) is not int or type(effect.get("to")) is not int:  # noqa: E721 - bool is an int
        return "effect: integer from and to are required"
    moved = effect.get("moved")
    if not isinstance(moved, list) or not moved or not all(isinstance(m, str) and m for m in moved):
        return "effect: moved must be a non-empty list of record ids"
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
    return _problem_of_effect(record.get("effect"))
