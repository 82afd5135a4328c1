"""The SQL functions a model's comparison levels may call, in Python: DuckDB's string metrics from rapidfuzz, the few
scalar functions Splink's comparisons use. The SQL compiler (`sql_compile`) looks every function up in FUNCTIONS;
a newcomer adds a string comparison type here (its SQL names, its arity, a function returning what DuckDB's does).

tests/realtime/test_matcher.py holds each metric equal to DuckDB's on random strings.
"""

from __future__ import annotations

from collections.abc import Callable

from rapidfuzz.distance import DamerauLevenshtein, Jaro, Levenshtein

PREFIX_WEIGHT = 0.1   # Winkler's boost per common leading character ...
MAX_PREFIX = 4        # ... counted up to 4 characters ...
BOOST_ABOVE = 0.7     # ... for a Jaro similarity above 0.7 (DuckDB's and rapidfuzz's conventions)


def _fma(x: float, y: float, z: float) -> float:
    """x * y + z rounded once (a fused multiply-add; math.fma is Python 3.13): the three doubles' exact rational
    values added as integers over a common power-of-two denominator, then divided (CPython rounds int / int
    correctly)."""
    (a, b), (c, d), (e, f) = x.as_integer_ratio(), y.as_integer_ratio(), z.as_integer_ratio()
    den = b * d
    if f > den:
        return (a * c * (f // den) + e) / f
    return (a * c + e * (den // f)) / den


def jaro_winkler(a: str, b: str) -> float:
    """DuckDB's jaro_winkler_similarity, to the last bit: rapidfuzz's Jaro similarity, boosted as DuckDB's build
    computes it (one rounding of jaro + prefix * 0.1 * (1 - jaro); rapidfuzz's JaroWinkler rounds twice and differs
    in the last bit for about one pair in a hundred). Empty text is 0 (rapidfuzz: two empty strings are 1)."""
    if not a or not b:
        return 0.0
    sim = Jaro.similarity(a, b)
    if sim <= BOOST_ABOVE:
        return sim
    prefix = 0
    for x, y in zip(a[:MAX_PREFIX], b[:MAX_PREFIX], strict=False):
        if x != y:
            break
        prefix += 1
    return _fma(prefix * PREFIX_WEIGHT, 1.0 - sim, sim) if prefix else sim


def levenshtein(a: str, b: str) -> int:
    """DuckDB's levenshtein (unit costs)."""
    return Levenshtein.distance(a, b)


def damerau_levenshtein(a: str, b: str) -> int:
    """DuckDB's damerau_levenshtein: the unrestricted distance (Lowrance-Wagner), not optimal string alignment
    (rapidfuzz's OSA)."""
    return DamerauLevenshtein.distance(a, b)


# SQL function name (lower case; DuckDB's and Spark's spellings) -> (arity, the Python function)
FUNCTIONS: dict[str, tuple[int, Callable]] = {
    "jaro_winkler": (2, jaro_winkler), "jaro_winkler_similarity": (2, jaro_winkler),
    "jarowinklersimilarity": (2, jaro_winkler),
    "levenshtein": (2, levenshtein), "damerau_levenshtein": (2, damerau_levenshtein),
    "abs": (1, abs), "lower": (1, str.lower), "upper": (1, str.upper), "length": (1, len),
}
