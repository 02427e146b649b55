"""Helpers shared by the tests and the benchmark: generated audio, the local stack, checks."""
