"""Store the Whisper weights already quantized to int8, offline, with CTranslate2's own code.

CTranslate2 has no Python API to save a loaded model and no converter that takes a
CTranslate2 model as input. But its ``model.bin`` format is simple (``ModelSpec._serialize``
writes it) and its int8 quantization is plain NumPy (``LayerSpec._quantize``). So: parse
the float16 ``model.bin``, put every variable back into a ``WhisperSpec``, let the spec
quantize itself exactly as ``ct2-transformers-converter --quantization int8_float16``
would, and serialize it. Nothing is downloaded.

``python -m tests.bench.quantize SRC_DIR DST_DIR [--quantization int8_float16]``
"""

from __future__ import annotations

import argparse
import re
import shutil
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np
from ctranslate2.specs import model_spec
from ctranslate2.specs.whisper_spec import WhisperSpec

DTYPES = ("float32", "int8", "int16", "int32", "float16")  # CTranslate2's DataType order
COPIED_FILES = ("config.json", "tokenizer.json", "vocabulary.txt", "preprocessor_config.json")


def _unpack(handle: BinaryIO, fmt: str) -> int:
    size = struct.calcsize(fmt)
    return int(struct.unpack(fmt, handle.read(size))[0])


def _string(handle: BinaryIO) -> str:
    length = _unpack(handle, "H")
    return handle.read(length)[:-1].decode("utf-8")


def read_model_bin(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Variables and aliases of a CTranslate2 ``model.bin`` (binary version 6)."""
    variables: dict[str, np.ndarray] = {}
    aliases: dict[str, str] = {}
    with path.open("rb") as handle:
        version = _unpack(handle, "I")
        if version != model_spec.CURRENT_BINARY_VERSION:
            raise ValueError(f"unsupported model.bin version {version}")
        name = _string(handle)
        _revision = _unpack(handle, "I")
        if name != "WhisperSpec":
            raise ValueError(f"not a Whisper model: {name}")
        for _ in range(_unpack(handle, "I")):
            variable = _string(handle)
            shape = [_unpack(handle, "I") for _ in range(_unpack(handle, "B"))]
            dtype = DTYPES[_unpack(handle, "B")]
            raw = handle.read(_unpack(handle, "I"))
            variables[variable] = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
        for _ in range(_unpack(handle, "I")):
            alias = _string(handle)
            aliases[alias] = _string(handle)
    return variables, aliases


def _count(variables: dict[str, np.ndarray], prefix: str) -> int:
    pattern = re.compile(rf"^{prefix}/layer_(\d+)/")
    return len({match.group(1) for name in variables if (match := pattern.match(name))})


def whisper_spec(variables: dict[str, np.ndarray], aliases: dict[str, str]) -> WhisperSpec:
    """A ``WhisperSpec`` of the right size holding ``variables`` (and ``aliases``)."""
    spec = WhisperSpec(
        _count(variables, "encoder"),
        int(variables["encoder/num_heads"]),
        _count(variables, "decoder"),
        int(variables["decoder/num_heads"]),
    )
    # Aliases get their target's array back; ``optimize`` finds the duplicates again.
    values = {**variables, **{alias: variables[target] for alias, target in aliases.items()}}
    for name, value in values.items():
        scope, attribute = model_spec._parent_scope(name)
        layer = model_spec.index_spec(spec, scope)
        if not hasattr(layer, attribute):
            raise ValueError(f"variable {name} is not part of WhisperSpec")
        setattr(layer, attribute, value)
    # The layer checks only (the vocabulary is copied as a file): wraps arrays as CTranslate2
    # variables and fails on any weight left unset.
    model_spec.LayerSpec.validate(spec)
    return spec


def quantize_model_dir(source: Path, target: Path, quantization: str = "int8_float16") -> Path:
    """Write ``target`` = ``source`` with its weights stored in ``quantization``."""
    variables, aliases = read_model_bin(source / "model.bin")
    spec = whisper_spec(variables, aliases)
    spec.optimize(quantization)  # alias shared weights, then quantize (the converter's way)
    target.mkdir(parents=True, exist_ok=True)
    spec._serialize(str(target / "model.bin"))
    for name in COPIED_FILES:
        if (source / name).is_file():
            shutil.copy(source / name, target / name)
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--quantization", default="int8_float16")
    args = parser.parse_args(argv)
    quantize_model_dir(args.source, args.target, args.quantization)
    print(f"{args.target / 'model.bin'}: {(args.target / 'model.bin').stat().st_size} bytes")


if __name__ == "__main__":
    main()
