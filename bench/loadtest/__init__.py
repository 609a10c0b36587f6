"""Load-test benchmarks; run from the repository root as ``python -m bench.loadtest.NAME``."""
