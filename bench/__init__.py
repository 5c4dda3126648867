"""Benchmarks: ``python -m bench`` (or ``make bench``) runs them all. See ``bench/README.md``."""
