"""Spark MLlib factorization machine on the book's pipeline, plus item side features and sampled negatives.

Book pipeline: StringIndexer + OneHotEncoder for user and attraction, QuantileDiscretizer of the photo count
into 5 interest levels, FMRegressor on the assembled vector. Here the park and theme of the attraction are
added as one-hot side features, and (for ranking) `negatives` unvisited attractions per visit get level 0
while visits get level 1..5. The fitted weights are exported so serving needs no Spark:
score(u, i) = w0 + w_u + w_i + w_park + w_theme + sum of pairwise <v_f, v_g> over the row's features.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..base import Recommender
from ..registry import register

SIDE_COLUMNS = ("PARK", "THEME")


def fm_rows(pairs: pd.DataFrame, item_side: pd.DataFrame) -> pd.DataFrame:
    """(USER_ID, ITEM_ID, EVENT_VALUE, ...) joined with the item side columns (missing -> "")."""
    out = pairs.merge(item_side, on="ITEM_ID", how="left")
    for col in SIDE_COLUMNS:
        out[col] = out[col].fillna("").astype(str)
    return out


def build_pipeline(levels: int, factors: int, iterations: int, step: float, reg: float, seed: int,
                   side: bool, label: str = "label"):
    """The book's Spark ML pipeline (with optional side features) up to and including FMRegressor."""
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import OneHotEncoder, StringIndexer, VectorAssembler
    from pyspark.ml.regression import FMRegressor

    cols = ["USER_ID", "ITEM_ID", *(SIDE_COLUMNS if side else ())]
    indexers = [StringIndexer(inputCol=c, outputCol=f"{c}_idx", handleInvalid="keep", stringOrderType="alphabetAsc")
                for c in cols]
    encoder = OneHotEncoder(inputCols=[f"{c}_idx" for c in cols], outputCols=[f"{c}_vec" for c in cols],
                            dropLast=False, handleInvalid="keep")
    assembler = VectorAssembler(inputCols=[f"{c}_vec" for c in cols], outputCol="features")
    fm = FMRegressor(featuresCol="features", labelCol=label, factorSize=factors, maxIter=iterations,
                     stepSize=step, regParam=reg, seed=seed)
    return Pipeline(stages=[*indexers, encoder, assembler, fm]), cols


def interest_levels(spark_df, levels: int):
    """QuantileDiscretizer of EVENT_VALUE into `levels` buckets (book: 5) -> column `level` and the splits."""
    from pyspark.ml.feature import QuantileDiscretizer

    model = QuantileDiscretizer(numBuckets=levels, inputCol="EVENT_VALUE", outputCol="level",
                                relativeError=0.0).fit(spark_df)
    return model, list(model.getSplits())


@register
class SparkFM(Recommender):
    """pyspark.ml.regression.FMRegressor on one-hot user, attraction, park and theme."""

    name = "fm"
    defaults = {"factors": 8, "iterations": 100, "step_size": 0.05, "regularization": 0.01, "levels": 5,
                "negatives": 2, "side_features": True, "seed": 0}

    def _fit(self, items, show_progress):
        from c360.spark import get_spark

        steps = tqdm(total=3, desc="fm", disable=not show_progress)
        spark = get_spark(app_name="c360-recsys")
        p = self.params
        side = bool(p["side_features"]) and items is not None and all(c in items.columns for c in SIDE_COLUMNS)
        self.extra["side_features"] = side
        item_side = (items[["ITEM_ID", *SIDE_COLUMNS]].astype(str) if side else
                     pd.DataFrame({"ITEM_ID": self.item_ids, "PARK": "", "THEME": ""}))
        self.item_side = fm_rows(pd.DataFrame({"ITEM_ID": self.item_ids}), item_side)
        coo = self.matrix.tocoo()
        positives = pd.DataFrame({"USER_ID": np.array(self.user_ids, dtype=object)[coo.row],
                                  "ITEM_ID": np.array(self.item_ids, dtype=object)[coo.col],
                                  "EVENT_VALUE": coo.data.astype(np.float64)})
        pos_sdf = spark.createDataFrame(positives)
        discretizer, self.splits = interest_levels(pos_sdf, int(p["levels"]))
        positives["label"] = np.digitize(positives["EVENT_VALUE"], self.splits[1:-1]).astype(float)
        shift = 1.0 if int(p["negatives"]) > 0 else 0.0
        positives["label"] += shift
        self.extra["label_shift"] = shift
        rows = [positives]
        if int(p["negatives"]) > 0:
            rows.append(self._negatives(int(p["negatives"]), int(p["seed"])))
        train = fm_rows(pd.concat(rows, ignore_index=True), self.item_side[["ITEM_ID", *SIDE_COLUMNS]])
        steps.update()
        pipeline, cols = build_pipeline(int(p["levels"]), int(p["factors"]), int(p["iterations"]),
                                        float(p["step_size"]), float(p["regularization"]), int(p["seed"]), side)
        sdf = spark.createDataFrame(train[[*cols, "label"]])
        self.pipeline_model = pipeline.fit(sdf)
        steps.update()
        self._export(cols)
        steps.update()
        steps.close()

    def _negatives(self, per_positive: int, seed: int) -> pd.DataFrame:
        """Sample unvisited (user, item) pairs, `per_positive` per visit, label 0."""
        rng = np.random.default_rng(seed)
        n_items = len(self.item_ids)
        users, items = [], []
        seen = self.matrix.tolil().rows
        for u, row in enumerate(seen):
            unseen = np.setdiff1d(np.arange(n_items), row)
            take = min(len(unseen), per_positive * len(row))
            if take:
                users.extend([u] * take)
                items.extend(rng.choice(unseen, size=take, replace=False))
        return pd.DataFrame({"USER_ID": np.array(self.user_ids, dtype=object)[users],
                             "ITEM_ID": np.array(self.item_ids, dtype=object)[items],
                             "EVENT_VALUE": 0.0, "label": 0.0})

    def _export(self, cols: list[str]) -> None:
        """Turn the fitted FM into numpy arrays: per-user bias and vector, per-item bias, self term and vector."""
        stages = self.pipeline_model.stages
        indexers, fm = stages[:len(cols)], stages[-1]
        linear = np.asarray(fm.linear.toArray(), dtype=np.float64)
        V = np.asarray(fm.factors.toArray(), dtype=np.float64)
        offsets, offset = {}, 0
        positions = {}
        for col, indexer in zip(cols, indexers, strict=False):
            labels = list(indexer.labelsArray[0])
            positions[col] = {label: offset + j for j, label in enumerate(labels)}
            offsets[col] = offset
            offset += len(labels) + 2          # "keep" in StringIndexer and in OneHotEncoder: one slot each
        upos = np.array([positions["USER_ID"][u] for u in self.user_ids])
        self.user_bias = linear[upos]
        self.user_vecs = V[upos]
        feats = [np.array([positions["ITEM_ID"][i] for i in self.item_ids])]
        for col in cols[2:]:
            feats.append(np.array([positions[col].get(v, offsets[col] + len(positions[col]))
                                   for v in self.item_side[col]]))
        self.item_bias = sum(linear[f] for f in feats) + float(fm.intercept)
        self.item_vecs = sum(V[f] for f in feats)
        self.item_self = 0.5 * ((self.item_vecs ** 2).sum(axis=1) - sum((V[f] ** 2).sum(axis=1) for f in feats))

    def _scores(self, rows):
        return (self.user_bias[rows][:, None] + self.item_bias[None, :] + self.item_self[None, :]
                + self.user_vecs[rows] @ self.item_vecs.T)

    def _scores_for_vector(self, vector, ridge: float = 0.1):
        """Fold a new user in: ridge-solve (bias, vector) so that its scores fit the visits' interest levels."""
        target = np.zeros(len(self.item_ids))
        idx = vector.indices
        levels = np.digitize(vector.data, np.asarray(self.splits)[1:-1]) + self.extra.get("label_shift", 0.0)
        target[idx] = levels
        fit_items = np.arange(len(self.item_ids)) if self.extra.get("label_shift", 0.0) else idx
        X = np.hstack([np.ones((len(fit_items), 1)), self.item_vecs[fit_items]])
        y = target[fit_items] - self.item_bias[fit_items] - self.item_self[fit_items]
        coef = np.linalg.solve(X.T @ X + ridge * np.eye(X.shape[1]), X.T @ y)
        return coef[0] + self.item_bias + self.item_self + self.item_vecs @ coef[1:]

    def item_factors(self):
        return self.item_vecs

    def _arrays(self):
        return {"user_bias": self.user_bias, "user_vecs": self.user_vecs, "item_bias": self.item_bias,
                "item_vecs": self.item_vecs, "item_self": self.item_self, "splits": np.asarray(self.splits)}

    def _restore(self, a):
        for key in ("user_bias", "user_vecs", "item_bias", "item_vecs", "item_self"):
            setattr(self, key, a[key])
        self.splits = a["splits"].tolist()


def book_rmse(train: pd.DataFrame, test: pd.DataFrame, items: pd.DataFrame | None, seed: int = 0,
              levels: int = 5, factors: int = 8, iterations: int = 100, step_size: float = 0.05,
              regularization: float = 0.01, side_features: bool = False) -> dict:
    """The book's FM (visits only, 5 quantile interest levels): RMSE on the training rows and on a holdout.

    The book reports 0.19 measured on its training data; the holdout RMSE is the honest figure.
    """
    from pyspark.ml.evaluation import RegressionEvaluator

    from c360.spark import get_spark

    spark = get_spark(app_name="c360-recsys")
    side = side_features and items is not None and all(c in items.columns for c in SIDE_COLUMNS)
    item_side = (items[["ITEM_ID", *SIDE_COLUMNS]].astype(str) if side else
                 pd.DataFrame({"ITEM_ID": pd.concat([train["ITEM_ID"], test["ITEM_ID"]]).unique(), "PARK": "",
                               "THEME": ""}))
    disc, splits = interest_levels(spark.createDataFrame(train[["EVENT_VALUE"]].astype(float)), levels)
    frames = {}
    for name, df in (("train", train), ("holdout", test)):
        rows = fm_rows(df[["USER_ID", "ITEM_ID", "EVENT_VALUE"]].astype({"EVENT_VALUE": float}), item_side)
        rows["label"] = np.digitize(rows["EVENT_VALUE"], splits[1:-1]).astype(float)
        frames[name] = rows
    pipeline, cols = build_pipeline(levels, factors, iterations, step_size, regularization, seed, side)
    model = pipeline.fit(spark.createDataFrame(frames["train"][[*cols, "label"]]))
    evaluator = RegressionEvaluator(labelCol="label", predictionCol="prediction", metricName="rmse")
    out = {"book_rmse_training_data": 0.19}
    for name, rows in frames.items():
        out[f"rmse_{name}"] = float(evaluator.evaluate(model.transform(spark.createDataFrame(rows[[*cols, "label"]]))))
    out["rmse_holdout_predict_mean"] = float(np.sqrt(np.mean(
        (frames["holdout"]["label"] - frames["train"]["label"].mean()) ** 2)))
    return out
