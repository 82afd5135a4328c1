"""Entity resolution: match any person table(s) mapped by a config (config.py; the insurance preset by default) with
Splink on Spark or DuckDB; the insurance generator and merge job; evaluation and explanations.

Public API: generate.generate, merge.merge, match.match, evaluate.evaluate, evaluate.evaluate_labels,
explain.explain_pair, explain.explain_match.
"""
