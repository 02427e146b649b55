"""``make bench``: the raw engine and the full service measured side by side.

Run with ``.venv/bin/python -m bench.run``. Module names here do not start with
``test_``, and the package lives outside ``tests/``, so pytest never collects them.
"""
