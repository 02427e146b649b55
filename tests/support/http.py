"""The HTTP response types the tests read.

Starlette's ``TestClient`` answers with httpx2's ``Response`` (Starlette prefers httpx2, which
the openai SDK brings and uv.lock pins); a real server read through httpx answers with httpx's.
Both carry ``status_code``, ``headers``, ``text`` and ``json()``, which is all a test reads.
"""

from __future__ import annotations

import httpx
import httpx2

Response = httpx.Response | httpx2.Response
"""A response from the TestClient or from a real server."""
