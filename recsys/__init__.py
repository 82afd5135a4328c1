"""Attraction recommenders sharing one fit/recommend interface, with ranking evaluation."""
