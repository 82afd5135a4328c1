"""Spark MLlib ALS (implicitPrefs) for data that outgrows one machine: trained on a Spark frame of the interactions
(read by Spark from their Parquet file), recommendations for every user ranked and written by Spark, factors
exported to numpy for serving (loading and fold-in need no Spark)."""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from ..base import FactorModel
from ..registry import register
from .implicit_als import WEIGHTINGS, confidence
from .spark_frames import factors_to_numpy, id_index, top_unseen, training_frame


def confidence_column(value, weighting: str):
    """The Spark column of `implicit_als.confidence` with alpha 1 (Spark's ALS applies its own alpha)."""
    from pyspark.sql import functions as F

    if weighting == "log":
        return F.lit(1.0) + F.log(F.greatest(value, F.lit(1.0)))
    if weighting == "binary":
        return F.lit(1.0)
    return value


@register
class SparkALS(FactorModel):
    """pyspark.ml.recommendation.ALS(implicitPrefs=True); confidence c = 1 + alpha * weighting(photos)."""

    name = "spark-als"
    defaults = {"factors": 64, "regularization": 0.05, "alpha": 10.0, "iterations": 15, "weighting": "log",
                "seed": 0}

    def _fit(self, items, show_progress):
        from pyspark.ml.recommendation import ALS
        from pyspark.sql import functions as F

        from c360.spark import get_spark

        if self.params["weighting"] not in WEIGHTINGS:
            confidence(self.matrix[:0], self.params["weighting"], 1.0)   # raises the InputError naming the choices
        steps = tqdm(total=3, desc="spark-als", disable=not show_progress)
        spark = get_spark(app_name="c360-recsys")
        pairs = training_frame(spark, self.data)
        users = id_index(pairs, "USER_ID", "user", len(self.user_ids))
        items_index = id_index(pairs, "ITEM_ID", "item", len(self.item_ids))
        ratings = (pairs.join(users, "USER_ID").join(F.broadcast(items_index), "ITEM_ID")
                   .select("user", "item", confidence_column(F.col("EVENT_VALUE"), self.params["weighting"])
                           .cast("float").alias("rating")))
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
        # kept for `spark_recommendations` in this process (a loaded model has only its numpy factors)
        self._spark = {"model": model, "pairs": pairs, "users": users, "items": items_index}
        steps.update()
        steps.close()

    def spark_recommendations(self, k: int):
        """Top-k for every user, never a training item, scored (ALSModel.recommendForAllUsers) and ranked by
        Spark; None when the Spark model is not in this process (a loaded model)."""
        state = getattr(self, "_spark", None)
        if state is None:
            return None
        from pyspark.sql import functions as F

        most_seen = state["pairs"].groupBy("USER_ID").count().agg(F.max("count")).first()[0]
        wanted = int(min(len(self.item_ids), k + int(most_seen)))
        recs = state["model"].recommendForAllUsers(wanted)
        scored = (recs.select("user", F.explode("recommendations").alias("r"))
                  .select("user", F.col("r.item").alias("item"), F.col("r.rating").cast("double").alias("SCORE"))
                  .join(state["users"], "user").join(F.broadcast(state["items"]), "item")
                  .select("USER_ID", "ITEM_ID", "SCORE"))
        return top_unseen(scored, state["pairs"], k)

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
