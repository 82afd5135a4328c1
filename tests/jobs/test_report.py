"""report.html from a run's files (`c360 report --run`, what the nightly writes): titled tables, formatted numbers,
no external script, and the published run it replaces compared column by column. Runs are written by hand here
(a manifest and the summaries the steps write), so no Spark is needed."""

from __future__ import annotations

import re
from pathlib import Path

from c360.cli import main
from c360.io import write_json_file
from c360.jobs.report import VS
from c360.jobs.run_report import replaced_run, write_report
from c360.layout import Warehouse

FLAT = [{"threshold": t, "precision": 0.99, "recall": 0.99, "f1": 0.99, "tp": 990, "fp": 10, "fn": 10}
        for t in (0.5, 0.8, 0.99)]
MOVING = [{"threshold": t, "precision": p, "recall": r, "f1": 2 * p * r / (p + r), "tp": 100, "fp": 5, "fn": 5}
          for t, p, r in ((0.5, 0.80, 0.99), (0.8, 0.90, 0.95), (0.99, 0.99, 0.70))]


# how the match used each labels file (report.json's training.labels, entity_resolution.phases.train.label_usage)
LABEL_USAGE = [{"file": "labels.csv", "pairs": 120, "matches": 80, "weighted": False, "draws": [],
                "how": "known pairs (weight 1)", "used_for": ["m (refit)", "threshold", "links"]},
               {"file": "decision_labels.csv", "pairs": 40, "matches": 25, "weighted": True, "draws": ["r1.51d67620"],
                "how": "sample: weighted by inverse inclusion probability", "used_for": ["m (refit)", "links"]}]


def write_run(wh: Path, run_id: str, *, f1: float, records: int, published: str | None, curve=FLAT,
              ndcg: float = 0.4612) -> Path:
    """A succeeded run's manifest and summaries, as the nightly's steps leave them."""
    run = Warehouse(wh).run(run_id)
    steps = {"validate": {"status": "succeeded", "seconds": 26.4, "rows": {"auto_customer": records},
                          "outputs": {"insurance": "inputs/insurance", "visits": "visits", "format": "sigir17"}},
             "match": {"status": "succeeded", "seconds": 103.67, "rows": {"records": records, "match_ids": 6369},
                       "metrics": {"engine": "spark", "threshold": 0.8, "pairs_scored": 14622, "pairs_linked": 10141,
                                   "decisions_precision": f1, "decisions_recall": 0.75, "decisions_f1": 0.8,
                                   "review_sets": 50},
                       "outputs": {}},
             "recsys_evaluate": {"status": "succeeded", "seconds": 61.0, "rows": {}, "outputs": {}},
             "graph_load": {"status": "succeeded", "seconds": 6.2, "rows": {"vertices": 28033},
                            "outputs": {"counts": {"vertices": {"match": 6369, "customer": 4031},
                                                   "edges": {"SameAs": records}}}}}
    write_json_file(run.manifest, {
        "run_id": run_id, "status": "succeeded", "created_at": "2026-12-07T00:23:21Z",
        "finished_at": "2026-12-07T00:26:41Z", "served_model": "auto", "error": None,
        "config": {"nightly": {"insurance": None, "generate_customers": 2000, "seed": 0},
                   "recsys": {"algorithms": ["popularity", "item-knn"], "k": 10}, "gates": {"er_f1_min": 0.9}},
        "steps": steps,
        "gates": {"er_f1": {"passed": True, "value": f1, "threshold": 0.9, "detail": "pairwise F1 against truth"},
                  "graph_store": {"passed": True, "value": 10400, "threshold": "equal counts", "detail": "ok"}},
        "models": {"popularity": {}, "item-knn": {}, "auto": {"chosen": "blend(alpha=0.95,item-knn(similarity=rp3))"},
                   "als": {"device": "cpu", "gpu_reason": "the gpu extra is not installed"}}})
    write_json_file(run.er_metrics, {"evaluation": {"records": records, "f1": f1, "true_pairs": 10222},
                                     "pr_curve": curve})
    write_json_file(run.match.report, {"threshold": 0.8, "config": "presets/insurance.yaml",
                                       "match_probability_histogram": {"bin_edges": [0, 0.5, 1], "counts": [40, 900]},
                                       "training": {"labels": LABEL_USAGE}})
    write_json_file(run.recsys_metrics, {
        "split": {"holdout": 0.2, "seed": 0, "test_users": 4248},
        "algorithms": {"popularity": {"ndcg@10": 0.4474, "train_seconds": 2e-06},
                       "auto": {"ndcg@10": ndcg, "train_seconds": 8.4013, "chosen": "blend(alpha=0.4)"}},
        "time_ordered": {"split": {"protocol": "next-trip", "steps": 900, "test_trips": 300},
                         "algorithms": {"session": {"hit@5": ndcg - 0.1, "mrr@5": 0.2, "steps": 900},
                                        "popularity": {"hit@5": 0.2, "mrr@5": 0.1, "steps": 900}}}})
    write_json_file(run.realtime, {"published": published, "events_through": 0, "events_after": 0})
    return run.root


def test_a_second_run_is_compared_with_the_run_it_replaced(tmp_path):
    wh = tmp_path / "wh"
    first = write_run(wh, "run-1", f1=0.97, records=12000, published=None)
    write_run(wh, "run-2", f1=0.9828, records=12162, published="run-1", curve=MOVING, ndcg=0.4712)
    assert replaced_run(Warehouse(wh).run("run-1")) is None
    assert replaced_run(Warehouse(wh).run("run-2")).run_id == "run-1"
    # a run that stopped before it read the real-time logs (no realtime.json): the run published now
    (wh / "current").symlink_to("runs/run-2")
    write_run(wh, "run-3", f1=0.98, records=12162, published=None)
    Warehouse(wh).run("run-3").realtime.unlink()
    assert replaced_run(Warehouse(wh).run("run-3")).run_id == "run-2"
    assert replaced_run(Warehouse(wh).run("run-2")).run_id == "run-1"   # recorded: not the run published now
    page = write_report(Warehouse(wh).run("run-2")).read_text()
    # offline: nothing fetched, no script at all
    assert "<script" not in page and not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    # every table titled; no empty header
    assert page.count("<table") == page.count("<caption>") > 8 and "<th></th>" not in page
    # numbers: seconds, 4 places, thousands separators (ids as they are)
    assert "<td>26.4 s</td>" in page and "26.4000" not in page and "<td>0.9828</td>" in page
    assert "<td>12,162</td>" in page and "<td>0.0 s</td>" in page
    # total time, inputs and settings
    assert "total time <b>3 min 17 s</b>" in page and "Inputs and settings" in page
    assert "generated: 2,000 customers, seed 0" in page and "<td class=\"t\">popularity, item-knn</td>" in page
    # the published run it replaces, for every gate value and count
    assert page.count(f"<th>{VS}</th>") >= 5 and "href='../run-1/report.html'" in page
    assert "<td>+0.0128 (was 0.9700)</td>" in page        # the er_f1 gate
    assert "<td>+162 (was 12,000)</td>" in page           # rows counted by a step, and the SameAs edges
    assert page.count("<td>same</td>") >= 3               # unchanged counts and seconds
    # the recommenders' gated metrics too, per algorithm: holdout ndcg@10 and the next attraction's hit@5
    assert f"<th>ndcg@10 {VS}</th>" in page and f"<th>hit@5 {VS}</th>" in page
    assert page.count("<td>+0.0100 (was 0.4612)</td>") == 1 and page.count("<td>+0.0100 (was 0.3612)</td>") == 1
    # the stewards' decisions: labelled precision / recall at the threshold, compared; how each labels file was used
    assert "<caption>Stewards&#x27; decisions" in page and "<td>decisions_recall</td><td>0.7500</td>" in page
    assert "<td>decisions_precision</td><td>0.9828</td><td>+0.0128 (was 0.9700)</td>" in page
    assert "<td>review_sets</td><td>50</td><td>same</td>" in page
    assert "<caption>How each labels file was used</caption>" in page
    assert ('<td class="t">decision_labels.csv</td><td>40</td><td>25</td><td class="t">sample: weighted by inverse '
            'inclusion probability</td><td class="t">m (refit), links</td>') in page
    # charts: the histogram with its threshold; precision/recall drawn only when it moves
    assert 'alt="Match probability of candidate pairs"' in page
    assert 'alt="Precision / recall on the labels by threshold"' in page
    # long chosen models are notes, not table cells; trained models without empty cells
    assert "<code>blend(alpha=0.4)</code>" in page and "<td>blend(" not in page
    assert "trained on cpu (the gpu extra is not installed)" in page and "popularity, item-knn: trained" in page

    # the first run: nothing to compare with, and flat precision/recall lines are not drawn
    assert main(["report", "--run", str(first)]) == 0
    page = (first / "report.html").read_text()
    assert VS not in page and "nothing to compare with" in page
    assert 'alt="Precision / recall' not in page and "barely move" in page
