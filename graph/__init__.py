"""Property graph of customers, policies, vehicles, addresses, visitors and attractions.

- graph.export.export_graph(out_dir, matched=, sources=, visits=|interactions=, items=, recs=, model=)
  → master_vertex.csv / master_edge.csv (Neptune bulk-load format, graph.neptune_csv).
- graph.loader.load_graph_files(csv_dir, target, drop=False, batch_size=1000, workers=4) → counts;
  target gremlin://HOST:PORT, wss://NEPTUNE:8182 (see graph.gremlin_store for IAM) or networkx:PATH.
- graph.store.open_store(spec, current_dir=None) → GraphStore (customer360, search, visitor, neighbourhood,
  vertex_ids, counts, ping, upsert, drop_all, close); GraphUnavailable when the store cannot be reached.
  graph.store.parse_spec(spec) → StoreSpec; graph.backends maps a spec's scheme to its GraphStore class.
"""
