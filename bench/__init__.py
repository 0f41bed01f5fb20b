"""Benchmarks of the program against OpenTofu and the engine (issue 11)."""
