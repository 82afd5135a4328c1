"""Nightly pipeline: raw sources → matched customers, recommendations, graph → a published version."""
