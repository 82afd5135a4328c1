"""Attraction recommenders sharing one fit/recommend interface, with ranking evaluation.

Public entry points:
- `recsys.data.load_interactions(interactions, items, fmt, engine)` -> (interactions, items)
- `recsys.data.aggregate_files(interactions, items, out, fmt, spark)` -> (Parquet parts written by Spark, items);
  `recsys.interactions.InteractionsFile(path)`: what `train` and `evaluate` take instead of a frame (the matrix is
  built from its columns, Spark ALS and FM read it with Spark)
- `recsys.models.train(algo, interactions, items, params, item_group_col, seed)` -> Recommender
- `recsys.models.load_model(path)`, `recsys.models.ALGORITHMS` (the registry: `recsys.registry`, filled by `recsys.algorithms`)
- `recsys.evaluate.evaluate(algos, interactions, items, holdout, seed, k, item_group_col)` -> metrics dict
- `recsys.auto.choose(...)` / `train("auto", ...)`
- `recsys.recs.write_recs(model, path, user_ids=None, k=20)` -> recs.csv (USER_ID,ITEM_ID,RANK,SCORE): written by
  Spark as a directory of CSV parts for a Spark model trained in this process, else by the driver in chunks
- `recsys.trips.load_trips(interactions, items, fmt, gap_minutes)` -> TripData (trips, items, walking minutes);
  `train("session", trips, items, walks=...)`, `recsys.recs.recommend_sessions(model, sessions, k)` ->
  SESSION_ID,ITEM_ID,RANK,SCORE; `recsys.evaluate.evaluate_sessions(algos, data, protocol)` (time-ordered)
"""
