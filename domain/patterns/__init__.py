"""Patterns: grouping issues that share a root cause. Pure rules; the detector worker runs them."""
