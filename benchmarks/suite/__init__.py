"""The convostore benchmark suite (entry point: benchmarks/run.py)."""
