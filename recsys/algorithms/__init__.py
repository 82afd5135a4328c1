"""Recommendation algorithms behind the one Recommender interface."""
