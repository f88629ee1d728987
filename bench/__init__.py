"""Causeloop benchmarks: `python -m bench` starts the real processes, measures them, prints one table."""
