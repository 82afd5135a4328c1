"""Entity resolution for the insurance customers: generate, merge, match (Splink on Spark or DuckDB), evaluate.

Public API: generate.generate, merge.merge, match.match, evaluate.evaluate, evaluate.evaluate_labels,
explain.explain_pair, explain.explain_match.
"""
