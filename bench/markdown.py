"""``RESULTS.md``: the benchmark's numbers as short markdown tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Row = dict[str, Any]


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table; floats are printed by :func:`cell`."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    return str(value)


def _find(summary: list[Row], threads: int, file: str, mode: str) -> Row:
    match = [r for r in summary if (r["threads"], r["file"], r["mode"]) == (threads, file, mode)]
    return match[0] if match else {}


def header(results: Row) -> str:
    meta = results["meta"]
    settings = meta["settings"]
    files = ", ".join(
        f"{f['name']} = {f['seconds']:.1f} s ({f['source']})" for f in results["files"]
    )
    return "\n".join(
        [
            "# tinyscribe benchmark",
            "",
            f"- Date: {meta['date']}; CPU: {meta['cpu']} ({meta['cores']} cores, shared); "
            f"Python {meta['python']}; measured in {meta.get('measured_with', 'the dev venv')}",
            f"- faster-whisper {meta['faster_whisper']}, ctranslate2 {meta['ctranslate2']}; "
            f"Whisper tiny.en {settings['compute_type']}, beam {settings['beam_size']}; every "
            f"format: speech windows of at most {settings['window_seconds']:g} s "
            f"(+{settings['lookahead_seconds']:g} s lookahead), batches of "
            f"{settings['batch_size']}, with timestamps and word alignment",
            f"- Speech: {meta['speech']}; files: {files}",
            f"- Whole run: {meta['bench_seconds']:.0f} s. Times are medians; ratios and overheads "
            "are medians of paired runs (service next to engine in the same repetition).",
        ]
    )


def warm_section(results: Row) -> str:
    summary = results["summary"]
    rows2, rows1 = [], []
    for f in results["files"]:
        e, lam, h = (_find(summary, 2, f["name"], m) for m in ("engine", "lambda", "http"))
        rows2.append(
            [
                f["name"],
                e["median_seconds"],
                lam["median_seconds"],
                h["median_seconds"],
                e["rtf"],
                h["rtf"],
                lam["ratio"],
                h["ratio"],
                lam["overhead_ms"],
                h["overhead_ms"],
                f"{e['peak_rss_mb']:.0f} / {lam['peak_rss_mb']:.0f} / {h['peak_rss_mb']:.0f}",
                e["wer"],
                h["wer"],
            ]
        )
        e1, l1 = _find(summary, 1, f["name"], "engine"), _find(summary, 1, f["name"], "lambda")
        rows1.append(
            [
                f["name"],
                e1["median_seconds"],
                l1["median_seconds"],
                e1["rtf"],
                l1["rtf"],
                l1["ratio"],
                l1["overhead_ms"],
                f"{e1['peak_rss_mb']:.0f} / {l1['peak_rss_mb']:.0f}",
            ]
        )
    head2 = [
        "file",
        "engine s",
        "Lambda s",
        "HTTP s",
        "x RT engine",
        "x RT HTTP",
        "Lambda/engine",
        "HTTP/engine",
        "Lambda +ms",
        "HTTP +ms",
        "peak RSS MB e/L/H",
        "WER engine",
        "WER HTTP",
    ]
    head1 = [
        "file",
        "engine s",
        "Lambda s",
        "x RT engine",
        "x RT Lambda",
        "Lambda/engine",
        "Lambda +ms",
        "peak RSS MB e/L",
    ]
    return "\n\n".join(
        [
            "## Warm requests, 2 threads (engine vs Lambda entry point vs HTTP)",
            table(head2, rows2),
            "## Warm requests, 1 thread pinned to 1 core (Lambda at <= 1,769 MB)",
            table(head1, rows1),
        ]
    )


def attribution_section(results: Row) -> str:
    a = results["attribution_ms"]
    rows = [
        ["GET /health through lambda_handler (Mangum + FastAPI + middleware)", a["health_ms"]],
        ["GET /v1/wallet (+ key lookup and wallet read in DynamoDB Local)", a["wallet_ms"]],
        ["decode 2 s clip: handler.audio.decode_audio", a["service_decode_ms"]],
        [
            "decode 2 s clip: faster_whisper.decode_audio (what the raw engine does)",
            a["engine_decode_ms"],
        ],
    ]
    return "## Where the service's own time goes (best of 5, ms)\n\n" + table(["step", "ms"], rows)


def cold_section(results: Row) -> str:
    cold = results["cold_start"]
    rows = [
        [
            label,
            cold[kind]["import"],
            cold[kind]["load"],
            cold[kind]["first_request"],
            cold[kind]["total"],
            cold[kind]["process_seconds"],
            cold[kind]["peak_rss_mb"],
        ]
        for kind, label in (("engine", "raw engine"), ("lambda", "service (lambda_handler)"))
    ]
    head = [
        "2 s clip, new process",
        "import s",
        "model load s",
        "first request s",
        "total s",
        "process wall s",
        "peak RSS MB",
    ]
    note = (
        f"Service/engine: **{cold['ratio']:.2f}x** (median of {cold['reps']}). The service's "
        "model load includes importing faster-whisper (lazy); its import is Lambda's init phase."
    )
    return "## Cold start\n\n" + table(head, rows) + "\n\n" + note


def cost_section(results: Row) -> str:
    cost = results["cost"]
    minute, five = cost["files"]["60s"], cost["files"]["5min"]
    rows = []
    for row60, row5 in zip(minute["table"], five["table"], strict=True):
        rows.append(
            [
                row60["memory_mb"],
                row60["seconds"],
                row5["seconds"],
                row60["x86_64"],
                row60["arm64"],
                f"{cost['reference_price_per_minute'] / row60['x86_64']:.0f}x",
            ]
        )
    best = cost["recommended"]
    head = [
        "MemorySize MB",
        "60 s file, s",
        "5 min file, s",
        "x86 $/audio min",
        "arm64 $/audio min",
        "cheaper than $0.004",
    ]
    note = (
        f"Template default: {cost['template_memory_mb']} MB. Model: CPU share = memory/1769 "
        "vCPU, threads = round(memory/1769) (as `default_cpu_threads`), times from the 1-thread "
        "pinned and 2-thread runs of the Lambda entry point; arm64 priced at the same speed "
        "(not measured). Recommended: **"
        f"{best['memory_mb']} MB** (60 s file {best['seconds']:.1f} s, 5 min file "
        f"{best['five_minute_seconds']:.1f} s, ${best['x86_64']:.6f}/min x86, "
        f"${best['arm64']:.6f}/min arm64)."
    )
    return "## Lambda cost per audio minute (60 s file)\n\n" + table(head, rows) + "\n\n" + note


def targets_section(results: Row) -> str:
    rows = [[t["target"], t["value"], t["threshold"], t["met"]] for t in results["targets"]]
    return "## Targets\n\n" + table(["target", "measured", "wanted", "met"], rows)


def long_audio_section(results: Row) -> str:
    """Per long file: WER and recall in every format beside the sequential reference's, and
    the speed of every format on the 60 s and 5 min files."""
    accuracy = results.get("accuracy") or {}
    rows = accuracy.get("rows", [])
    if not rows:
        return "## Long audio\n\nNot run this time (`--no-accuracy`)."
    formats = list(dict.fromkeys(r["format"] for r in rows))
    names = list(dict.fromkeys(r["file"] for r in rows))
    table_rows = []
    for name in names:
        runs = {r["format"]: r for r in rows if r["file"] == name}
        first = next(iter(runs.values()))
        table_rows.append(
            [
                name,
                first["kind"],
                first["audio_seconds"] / 60,
                first["utterances"],
                f"{first['reference_wer']:.3f} / {first['reference_recall']:.2f}",
                *[f"{runs[f]['wer']:.3f} / {runs[f]['recall']:.2f}" for f in formats],
                max(r["wer"] - r["reference_wer"] for r in runs.values()),
            ]
        )
    head = ["file", "kind", "min", "utterances", "sequential beam 5: WER / recall"]
    head += [f"{f}: WER / recall" for f in formats] + ["worst WER - sequential"]
    speed_rows = []
    one_thread = results.get("formats_one_thread", [])
    for name in ("60s", "5min"):
        two = {r["format"]: r for r in rows if r["file"] == name}
        one = {r["format"]: r for r in one_thread if r["file"] == name}
        if two:
            speed_rows.append([f"{name}, 2 threads (HTTP)", *[two[f]["rtf"] for f in formats]])
        if one:
            speed_rows.append([f"{name}, 1 thread (Lambda)", *[one[f]["rtf"] for f in formats]])
    stream_rows = [
        [
            r["file"],
            r["first_delta_seconds"],
            r["seconds"],
            r["plain_seconds"],
            r["first_delta_seconds"] / r["seconds"],
        ]
        for r in accuracy.get("streaming", [])
    ]
    clips = accuracy["clips"]
    note = (
        f"Reference clips ({clips['count']}, json, one by one): WER {clips['wer']:.4f}, "
        f"sequential beam 5 {clips['reference_wer']:.4f}. Recall: share of utterances with at "
        "least half their words in the transcript. Meetings are built from clips that each "
        "transcribe correctly alone (`bench/longform.py`)."
    )
    return "\n\n".join(
        [
            "## Long audio: accuracy in every format (HTTP, 2 threads)",
            table(head, table_rows),
            note,
            "## Speed of every format, x real time",
            table(["file", *formats], speed_rows),
            "## Streaming (json, `stream=true`, HTTP, 2 threads)",
            table(
                ["file", "first delta (s)", "done (s)", "not streamed (s)", "first / done"],
                stream_rows,
            ),
        ]
    )


def render(results: Row) -> str:
    """The whole ``RESULTS.md``."""
    sections = [
        header(results),
        targets_section(results),
        warm_section(results),
        long_audio_section(results),
        cold_section(results),
        cost_section(results),
        attribution_section(results),
    ]
    return "\n\n".join(sections) + "\n"
