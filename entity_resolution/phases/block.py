"""Block: the rules that generate the pairs to score (the config's, or chosen from the data with the trained
model), and the model that predicts with them."""

from __future__ import annotations

from dataclasses import dataclass

from c360.entity_resolution import blocking as B
from c360.entity_resolution.phases.prepare import Prepared
from c360.entity_resolution.phases.run import MatchRun, Warnings
from c360.entity_resolution.phases.train import Trained
from c360.errors import InputError


@dataclass(frozen=True)
class Blocking:
    """The prediction rules, the report's account of them, the trained model that predicts with them."""

    rules: tuple[B.Rule, ...]
    report: dict   # the report's "blocking"
    model: dict
    warnings: tuple[str, ...]


def block(run: MatchRun, prepared: Prepared, trained: Trained) -> Blocking:
    """Choose the prediction rules (the config's, or the most estimated recall per comparison within the budget,
    recall estimated from the trained model's agreement rates); count them (Splink's blocking analysis)."""
    warnings = Warnings()
    base = B.keys(run.cfg)
    agree = B.agreement(run.cfg, trained.model, prepared.null_share)
    limit = B.budget(run.cfg, prepared.records)
    if run.cfg.blocking.rules:
        rules, chosen_by = B.configured(run.cfg), "config"
    else:
        rules, chosen_by = _from_data(run, prepared, base, agree, limit, warnings), "data"
    rows = prepared.counter.count(rules)
    report = {
        "chosen_by": chosen_by, "max_comparisons": limit,
        "comparisons": int(rows[-1]["cumulative_comparison_count"]), "estimated": bool(rows[-1]["is_estimate"]),
        "estimated_recall": B.estimated_recall(rules, base, agree),
        "rules": [{"rule": r.label(), "marginal": int(x["marginal_comparison_count"]),
                   "cumulative": int(x["cumulative_comparison_count"])} for r, x in zip(rules, rows, strict=True)],
        "fields_without_backup": B.uncovered(rules, base),
        "agreement_of_true_matches": {k: round(v, 4) for k, v in agree.items()},
        "candidates": [{"rule": r.label(), "comparisons": c}
                       for r, c in sorted(prepared.candidates, key=lambda x: x[1])]}
    for f in report["fields_without_backup"]:
        warnings.warn(f"every blocking rule needs {f}: a pair with {f} missing or wrong is never compared")
    return Blocking(tuple(rules), report, _predicting_with(trained.model, rules), tuple(warnings))


def _from_data(run: MatchRun, prepared: Prepared, base: dict[str, str], agree: dict[str, float], limit: float,
               warnings: Warnings) -> list[B.Rule]:
    """The candidates blocking.choose picks; if every one exceeds the budget alone, the smallest that finds pairs
    (none: InputError naming the inputs)."""
    rules, counts = [r for r, _ in prepared.candidates], [c for _, c in prepared.candidates]
    chosen = [rules[i] for i in B.choose(rules, counts, base, agree, limit)]
    if chosen:
        return chosen
    usable = [(c, r) for r, c in prepared.candidates if c > 0]
    if not usable:
        raise InputError(f"{', '.join(map(str, run.inputs))}: no blocking rule finds any candidate pair "
                         f"(fields: {', '.join(sorted(run.cfg.names))})")
    smallest = min(usable, key=lambda x: x[0])[1]
    warnings.warn(f"every candidate blocking rule exceeds the budget of {limit:,.0f} comparisons: "
                  f"using the smallest, {smallest.label()}")
    return [smallest]


def _predicting_with(model: dict, rules: list[B.Rule]) -> dict:
    """The model with `rules` as its prediction rules (SQL rules as given, others in the model's dialect)."""
    return {**model, "blocking_rules_to_generate_predictions": [
        r.creator() if r.sql is not None else r.creator().get_blocking_rule(model["sql_dialect"]).as_dict()
        for r in rules]}
