"""The transcript's text out of a response body, whatever its format."""

from __future__ import annotations

import json
import re

CUE_TEXT = re.compile(r"\d\d:\d\d:\d\d[,.]\d{3} --> \d\d:\d\d:\d\d[,.]\d{3}\n(.+?)\n(?:\n|$)", re.S)


def transcript_text(response_format: str, body: str) -> str:
    """``text`` of json and verbose_json, the body of text, the cues of srt and vtt."""
    if response_format in ("json", "verbose_json"):
        return str(json.loads(body)["text"]).strip()
    if response_format in ("srt", "vtt"):
        return " ".join(cue.strip() for cue in CUE_TEXT.findall(body))
    return body.strip()
