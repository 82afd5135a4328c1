"""Recommendation algorithms behind the one Recommender interface.

Importing this package registers every algorithm (each class carries `@register`): the import list below
is the one place that names the algorithm modules, and its order is the order of `ALGORITHMS` (the order
`--algo` choices are listed in), hence isort is off for it.
"""

from ..registry import ALGORITHMS, algorithm_class

# isort: off
from . import implicit_als, spark_als, spark_fm, item_knn, ease, popularity, blend, session  # noqa: F401
# isort: on

__all__ = ["ALGORITHMS", "algorithm_class"]
