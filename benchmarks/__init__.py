"""Speed and accuracy benchmarks that write JSON (never run as tests).

Run one as a module, e.g. ``python -m benchmarks.layers --out results.json``.
"""
