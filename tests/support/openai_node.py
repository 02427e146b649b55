"""openai-node, the official JS SDK, driven from the tests (installed by ``make openai-node``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
OPENAI_NODE_DIR = Path(
    os.environ.get("TINYSCRIBE_OPENAI_NODE_DIR", REPO_ROOT / ".data" / "openai-node")
)
SCRIPT = Path(__file__).with_name("openai_node.mjs")
STAINLESS_HEADER = re.compile(r"""['"](x-stainless-[a-z-]+)['"]""", re.IGNORECASE)


def sdk_package() -> Path:
    """The installed ``openai`` npm package; fails (never skips) when it is missing."""
    package = OPENAI_NODE_DIR / "node_modules" / "openai"
    assert (package / "package.json").is_file(), (
        f"openai-node is not installed under {OPENAI_NODE_DIR}: run `make openai-node`"
    )
    return package


def sdk_version() -> str:
    return str(json.loads((sdk_package() / "package.json").read_text())["version"])


def run_openai_node(
    base_url: str, api_key: str, audio: Path, calls: list[dict[str, Any]], workdir: Path
) -> dict[str, Any]:
    """Run ``calls`` (``{"endpoint": "transcriptions" | "translations", "params": {...}}``) with
    openai-node, uploading ``audio`` with ``toFile``. Returns ``{"results": [...],
    "sentHeaders": [[[name, value], ...], ...]}`` (see ``openai_node.mjs``)."""
    sdk_package()
    request = workdir / "openai-node-request.json"
    request.write_text(
        json.dumps({"baseURL": base_url, "apiKey": api_key, "audio": str(audio), "calls": calls})
    )
    completed = subprocess.run(
        ["node", str(SCRIPT), str(OPENAI_NODE_DIR), str(request)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def stainless_headers_in(package: Path, suffix: str) -> set[str]:
    """Every ``x-stainless-*`` header name written in an SDK's sources (lowercase)."""
    return {
        match.lower()
        for path in package.rglob(f"*{suffix}")
        for match in STAINLESS_HEADER.findall(path.read_text(encoding="utf-8", errors="replace"))
    }
