"""The online matcher: one record matched against a published run in about a millisecond.

    metrics      the SQL string functions in Python (rapidfuzz), as DuckDB computes them
    sql_compile  a comparison level's or blocking rule's SQL condition compiled to a Python function
    weights      Splink's Fellegi-Sunter weights of a trained model
    index        the run's standardized records, term frequencies and blocking keys in memory
    scorers      the compiled scorer (served) and the Splink scorer (reference, fallback)
    matcher      RealtimeMatcher: load a run's match output, match a record, add a committed one

A record is standardized by the shared rules (`c360.entity_resolution.standardize.standardize_record`).
"""

from c360.entity_resolution.online.index import RecordIndex
from c360.entity_resolution.online.matcher import MatchAnswer, RealtimeMatcher, input_record
from c360.entity_resolution.online.metrics import FUNCTIONS, damerau_levenshtein, jaro_winkler, levenshtein
from c360.entity_resolution.online.scorers import CompiledScorer, Scored, Scorer, SplinkScorer, duckdb_model
from c360.entity_resolution.online.sql_compile import CompileError, ConditionCompiler, equality_columns
from c360.entity_resolution.online.weights import Comparison, Level, model_comparisons, probability
from c360.entity_resolution.standardize import SOURCE_DATASET, standardize_record

__all__ = [
    "FUNCTIONS", "SOURCE_DATASET", "CompileError", "CompiledScorer", "Comparison", "ConditionCompiler", "Level",
    "MatchAnswer", "RealtimeMatcher", "RecordIndex", "Scored", "Scorer", "SplinkScorer", "damerau_levenshtein",
    "duckdb_model", "equality_columns", "input_record", "jaro_winkler", "levenshtein", "model_comparisons",
    "probability", "standardize_record",
]
