"""segledger's benchmarks, run by hand: python -m bench (see bench/__main__.py)."""
