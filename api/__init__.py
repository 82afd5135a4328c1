"""HTTP API: recommendations, customer 360, search and similar attractions over the published warehouse."""
