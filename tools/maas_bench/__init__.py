"""Benchmarks (``make bench``): not tests; each prints ratios against its baseline, measured in one run."""
