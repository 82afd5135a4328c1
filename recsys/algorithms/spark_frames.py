"""What the Spark models share: their training data as a Spark DataFrame, integer ids that equal the positions of
the model's sorted id lists, factor tables brought to numpy in bounded chunks, and the top-k of a scored
(user, item) frame without the user's training items, ranked by Spark.

Data read from a Parquet file (`InteractionData.source`) is read by Spark from that file; data given in memory (a
pandas frame in tests, `auto`'s validation splits) is handed to Spark from the matrix's triples.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..base import InteractionData

# One collect of factor rows stays under this many bytes, and under a quarter of the session's effective
# spark.driver.maxResultSize (chunk_bytes): a limit set through spark-submit or spark-defaults.conf counts as well.
CHUNK_BYTES = 8 << 20
CHUNK_MIN_BYTES = 64 << 10   # however small the limit: a 1k limit made a million-user table a million Spark jobs
RESULT_SIZE_DEFAULT = "1g"   # Spark's spark.driver.maxResultSize when nothing sets it
REC_COLUMNS = ["USER_ID", "ITEM_ID", "RANK", "SCORE"]


def training_frame(spark, data: InteractionData):
    """USER_ID, ITEM_ID, EVENT_VALUE (double), one row per pair (duplicates summed), as Spark reads it."""
    from pyspark.sql import functions as F

    if data.source is not None:
        df = data.source.spark_frame(spark)
        value = F.col("EVENT_VALUE").cast("double") if "EVENT_VALUE" in df.columns else F.lit(1.0)
        return (df.select(F.col("USER_ID").cast("string").alias("USER_ID"),
                          F.col("ITEM_ID").cast("string").alias("ITEM_ID"), value.alias("EVENT_VALUE"))
                .groupBy("USER_ID", "ITEM_ID").agg(F.sum("EVENT_VALUE").alias("EVENT_VALUE")))
    coo = data.matrix.tocoo()
    return spark.createDataFrame(pd.DataFrame({"USER_ID": np.array(data.user_ids, dtype=object)[coo.row],
                                               "ITEM_ID": np.array(data.item_ids, dtype=object)[coo.col],
                                               "EVENT_VALUE": coo.data.astype(np.float64)}))


def id_index(frame, column: str, out: str, expected: int):
    """(column, out): every distinct id of `column` with its position in sorted order (Spark compares strings by
    their UTF-8 bytes, which is code point order: the order of Python's sorted(), hence of the model's id lists).

    One window over the distinct ids: Spark sorts them in a single task (ids only, a few seconds for millions of
    users), and everything runs in the JVM: no Python on the executors."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ids = frame.select(column).distinct()
    index = ids.select(column, (F.row_number().over(Window.orderBy(column)) - 1).cast("int").alias(out))
    index = index.cache()       # joined more than once (training, recommendations): sorted once
    n = index.count()
    if n != expected:
        raise RuntimeError(f"Spark sees {n} distinct {column} values, the model {expected}")
    return index


def chunk_bytes(max_result_size: str | None) -> int:
    """The bytes one collect to the driver may hold: CHUNK_BYTES, or a quarter of spark.driver.maxResultSize when
    that is smaller, at least CHUNK_MIN_BYTES ("0": unlimited; unset or unreadable: Spark's default, 1g)."""
    from c360.spark import size_bytes

    limit = size_bytes(max_result_size or RESULT_SIZE_DEFAULT)
    if limit is None or limit <= 0:
        return CHUNK_BYTES
    return max(CHUNK_MIN_BYTES, min(CHUNK_BYTES, limit // 4))


def session_chunk_bytes(spark) -> int:
    """chunk_bytes of the session's effective configuration (whatever set it: settings, spark-submit,
    PYSPARK_SUBMIT_ARGS, spark-defaults.conf)."""
    return chunk_bytes(spark.sparkContext.getConf().get("spark.driver.maxResultSize", None))


def factors_to_numpy(frame, n: int, rank: int) -> np.ndarray:
    """Spark (id, features) rows -> dense (n x rank) float32 array; ids never seen stay zero. Collected in id ranges
    of at most `session_chunk_bytes` each, so no single result approaches the driver's result-size limit."""
    from pyspark.sql import functions as F

    out = np.zeros((n, rank), dtype=np.float32)
    step = max(1, session_chunk_bytes(frame.sparkSession) // max(1, rank * 8))
    for start in range(0, n, step):
        pdf = frame.where((F.col("id") >= start) & (F.col("id") < start + step)).toPandas()
        if len(pdf):
            out[pdf["id"].to_numpy()] = np.stack(pdf["features"].to_numpy()).astype(np.float32)
    return out


def top_unseen(scored, seen, k: int):
    """USER_ID, ITEM_ID, RANK (from 1), SCORE: the k best of `scored` (USER_ID, ITEM_ID, SCORE) per user, never a
    pair of `seen`; ties by ITEM_ID, as `Recommender.recommend` breaks them (item order)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    unseen = scored.join(seen.select("USER_ID", "ITEM_ID"), ["USER_ID", "ITEM_ID"], "left_anti")
    order = Window.partitionBy("USER_ID").orderBy(F.desc("SCORE"), F.asc("ITEM_ID"))
    return (unseen.withColumn("RANK", F.row_number().over(order)).where(F.col("RANK") <= k)
            .select("USER_ID", "ITEM_ID", F.col("RANK").cast("int"), F.col("SCORE").cast("double"))
            .orderBy("USER_ID", "RANK"))
