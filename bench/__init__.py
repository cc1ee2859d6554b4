"""Benchmarks run by `make bench` (bench/run.py); each module exposes run()."""
