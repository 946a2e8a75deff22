"""Benchmarks of the aftercare pipeline; run them with `python bench/run.py`."""
