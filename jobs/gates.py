"""Configurable quality gates: a failed gate publishes nothing."""

from __future__ import annotations

from typing import Any


def gate(passed: bool, value: Any, threshold: Any, detail: str = "") -> dict[str, Any]:
    return {"passed": bool(passed), "value": value, "threshold": threshold, "detail": detail}


def er_gate(f1: float | None, floor: float, source: str) -> dict[str, Any]:
    """ER pairwise F1 (on labels, or on the truth when present) must reach the floor."""
    if f1 is None:
        return gate(True, None, floor, "no labels or truth given: gate not applicable")
    return gate(f1 >= floor, round(float(f1), 4), floor, f"pairwise F1 against {source}")


def recsys_gate(served: str, metrics: dict[str, dict[str, float]], baseline: str, min_ratio: float,
                metric: str = "ndcg@10") -> dict[str, Any]:
    """The served model's `metric` (ndcg@k of the configured k) must not fall below the baseline's (× min_ratio)."""
    served_ndcg = metrics.get(served, {}).get(metric)
    base_ndcg = metrics.get(baseline, {}).get(metric)
    if served_ndcg is None or base_ndcg is None:
        return gate(False, served_ndcg, base_ndcg, f"missing {metric} for {served} or baseline {baseline}")
    need = base_ndcg * min_ratio
    return gate(served_ndcg >= need - 1e-12, round(served_ndcg, 4), round(need, 4),
                f"{metric}: {served} vs {baseline} × {min_ratio}")


def session_gate(metrics: dict[str, dict[str, float]], baseline: str, min_ratio: float, metric: str = "hit@5",
                 protocol: str = "next-trip") -> dict[str, Any]:
    """The session model's `metric` on the time-ordered `protocol` must not fall below the baseline's (× min_ratio)."""
    result = recsys_gate("session", metrics, baseline, min_ratio, metric=metric)
    result["detail"] = f"{protocol} (time-ordered) {result['detail']}"
    return result


def graph_gate(expected: dict[str, dict[str, int]], actual: dict[str, dict[str, int]], exact: bool = True) -> dict[str, Any]:
    """Counts by label in `actual` must equal those in `expected` (or, for a shared store loaded without
    --drop that may hold earlier runs' elements, be at least as large)."""
    diffs = []
    for kind in ("vertices", "edges"):
        for label, n in sorted(expected.get(kind, {}).items()):
            got = actual.get(kind, {}).get(label, 0)
            if got != n if exact else got < n:
                diffs.append(f"{kind} {label}: expected {'' if exact else 'at least '}{n}, found {got}")
    total = sum(sum(v.values()) for v in expected.values())
    ok = "all label counts match" if exact else "every label holds at least the exported count"
    return gate(not diffs, total, "equal counts" if exact else "at least the exported counts", "; ".join(diffs) or ok)
