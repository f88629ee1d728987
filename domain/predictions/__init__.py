"""Predictions: will a pattern recur within W days, alert rules on those probabilities, and notifications."""
