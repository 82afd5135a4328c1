"""Spark MLlib ALS (implicitPrefs) for data that outgrows one machine; factors exported to numpy for serving."""

from __future__ import annotations

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..base import FactorModel
from ..registry import register
from .implicit_als import confidence


def factors_to_numpy(frame, n: int, rank: int) -> np.ndarray:
    """Spark (id, features) rows -> dense (n x rank) array; ids never seen stay zero."""
    pdf = frame.toPandas()
    out = np.zeros((n, rank), dtype=np.float32)
    if len(pdf):
        out[pdf["id"].to_numpy()] = np.stack(pdf["features"].to_numpy()).astype(np.float32)
    return out


@register
class SparkALS(FactorModel):
    """pyspark.ml.recommendation.ALS(implicitPrefs=True); confidence c = 1 + alpha * weighting(photos)."""

    name = "spark-als"
    defaults = {"factors": 64, "regularization": 0.05, "alpha": 10.0, "iterations": 15, "weighting": "log",
                "seed": 0}

    def _fit(self, items, show_progress):
        from pyspark.ml.recommendation import ALS

        from c360.spark import get_spark

        steps = tqdm(total=3, desc="spark-als", disable=not show_progress)
        spark = get_spark(app_name="c360-recsys")
        coo = confidence(self.matrix, self.params["weighting"], 1.0).tocoo()
        ratings = spark.createDataFrame(pd.DataFrame({"user": coo.row.astype("int32"), "item": coo.col.astype("int32"),
                                                      "rating": coo.data.astype("float32")}))
        steps.update()
        als = ALS(rank=int(self.params["factors"]), maxIter=int(self.params["iterations"]),
                  regParam=float(self.params["regularization"]), implicitPrefs=True,
                  alpha=float(self.params["alpha"]), seed=int(self.params["seed"]), userCol="user", itemCol="item",
                  ratingCol="rating", coldStartStrategy="drop")
        model = als.fit(ratings)
        steps.update()
        rank = int(self.params["factors"])
        self.user_factors = factors_to_numpy(model.userFactors, len(self.user_ids), rank)
        self.item_factors_ = factors_to_numpy(model.itemFactors, len(self.item_ids), rank)
        steps.update()
        steps.close()

    def _scores(self, rows):
        return self.user_factors[rows] @ self.item_factors_.T

    def _scores_for_vector(self, vector):
        """Fold the user in against the fixed Spark item factors with implicit's least-squares solver."""
        from implicit.cpu.als import AlternatingLeastSquares

        weighted = confidence(vector, self.params["weighting"], float(self.params["alpha"]))
        # Spark's ALS-WR scales the regularization by the user's number of ratings.
        model = AlternatingLeastSquares(factors=self.item_factors_.shape[1], alpha=1.0,
                                        regularization=float(self.params["regularization"]) * max(vector.nnz, 1))
        model.user_factors = np.zeros((1, self.item_factors_.shape[1]), dtype=np.float32)
        model.item_factors = self.item_factors_
        user = model.recalculate_user(0, weighted)
        return self.item_factors_ @ np.asarray(user, dtype=np.float32)
