"""Benchmark: synthetic landing data at scale, full and incremental pipeline runs (`python -m bench`)."""
