"""``make bench``: the raw engine and the full service measured side by side.

Run with ``.venv/bin/python -m tests.bench.run``. Module names here do not start with
``test_`` so pytest never collects them.
"""
