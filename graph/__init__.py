"""Property graph of customers, policies, vehicles, addresses, visitors and attractions.

- graph.schema: every vertex and edge label, its properties and their types, declared once (VERTICES, EDGES);
  the exports, the Neptune CSV headers and the stores derive from it.
- graph.export.export_graph(out_dir, spark=, matched=, sources=, visits=|interactions=, items=, recs=, model=)
  → computed by Spark (graph.spark_graph), written as Neptune bulk-load CSV parts per label in one folder
  (graph.neptune_parts: vertex-<label>-NNNNN.csv, edge-<label>-NNNNN.csv); returns counts by label.
- graph.loader.load_graph_files(csv_dir, target, drop=False, batch_size=1000, workers=4) → counts; streams the
  parts file by file, vertices first; target gremlin://HOST:PORT, wss://NEPTUNE:8182 (Neptune IAM: every
  handshake SigV4-signed, graph.neptune_auth) or networkx:PATH.
- graph.neptune_loader.load_with_neptune(csv_dir, target, settings, run_id) → the parts uploaded to S3 and loaded by
  Neptune's bulk loader (POST /loader, SigV4-signed, polled to its end), then the store's counts: the nightly's graph
  step for exports of at least graph.neptune_loader.min_elements when graph.neptune_loader is configured.
- graph.store.open_store(spec, current_dir=None) → GraphStore (customer360, search, visitor, neighbourhood,
  vertex_ids, counts, ping, upsert, drop_all, close); GraphUnavailable when the store cannot be reached.
  graph.store.parse_spec(spec) → StoreSpec; graph.backends maps a spec's scheme to its GraphStore class.
"""
