"""Re-store a CTranslate2 Whisper ``model.bin`` with its weights quantized, offline.

CTranslate2 has no Python API to save a loaded model and no converter that reads a
CTranslate2 model, so this module parses the float16 ``model.bin``, puts every variable back
into a ``WhisperSpec`` and lets CTranslate2's own spec code alias, quantize and serialize it,
exactly as ``ct2-transformers-converter --quantization ...`` would. Nothing is downloaded.

It relies on these CTranslate2 internals (``ctranslate2.specs``), checked at 4.8.5:

- the ``model.bin`` layout of binary version 6 (``model_spec.CURRENT_BINARY_VERSION``) and
  the ``DataType`` order float32, int8, int16, int32, float16, bfloat16;
- ``WhisperSpec(enc_layers, enc_heads, dec_layers, dec_heads)`` and its ``revision``;
- ``model_spec._parent_scope``, ``model_spec.index_spec``, ``LayerSpec.validate``,
  ``LayerSpec.optimize`` and ``ModelSpec._serialize``.

If any of them changes, the build fails loudly rather than producing a wrong model: the
reader refuses other binary versions, spec names, revisions and dtypes; missing or renamed
helpers raise :class:`QuantizeError`; the written file is read back and must hold every
source variable, int8 weights and the same aliases; and ``build_layer.py`` then loads it with
CTranslate2 (and, when pinned, checks its sha256) before the layer appears.

``python layers/quantize.py SRC_DIR DST_DIR [--quantization int8_float16]``
"""

from __future__ import annotations

import argparse
import re
import shutil
import struct
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

# CTranslate2's DataType enum order (include/ctranslate2/types.h); bfloat16 has no NumPy dtype.
DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
BINARY_VERSION = 6
SPEC_NAME = "WhisperSpec"
COPIED_FILES = ("config.json", "tokenizer.json", "vocabulary.txt", "preprocessor_config.json")
# Measured with CTranslate2 4.8.5 on this float16 export: "int8" and "int8_float16" write
# byte-identical files (sha256 ced00dbc...), because "int8" leaves the non-quantized tensors
# (biases, norms, positional encodings) in their source dtype, which here is float16. So
# load time and transcripts are the same by construction. "int8_float16" names that result
# explicitly and would keep it so if "int8" ever started converting those tensors to float32.
DEFAULT_QUANTIZATION = "int8_float16"


class QuantizeError(Exception):
    """The model file or the installed CTranslate2 is not what this module understands."""


Variables = dict[str, np.ndarray]
Aliases = dict[str, str]


def _unpack(handle: BinaryIO, fmt: str) -> int:
    size = struct.calcsize(fmt)
    data = handle.read(size)
    if len(data) != size:
        raise QuantizeError("model.bin is truncated")
    return int(struct.unpack(fmt, data)[0])


def _string(handle: BinaryIO) -> str:
    length = _unpack(handle, "H")
    return handle.read(length)[:-1].decode("utf-8")


def read_model_bin(path: Path) -> tuple[Variables, Aliases]:
    """Variables and aliases of a CTranslate2 Whisper ``model.bin`` (binary version 6)."""
    from ctranslate2.specs.whisper_spec import WhisperSpec

    variables: Variables = {}
    aliases: Aliases = {}
    with path.open("rb") as handle:
        version = _unpack(handle, "I")
        if version != BINARY_VERSION:
            raise QuantizeError(f"{path}: model.bin version {version}, expected {BINARY_VERSION}")
        name = _string(handle)
        revision = _unpack(handle, "I")
        if name != SPEC_NAME:
            raise QuantizeError(f"{path}: not a Whisper model ({name})")
        if revision != WhisperSpec.revision.fget(None):
            raise QuantizeError(f"{path}: WhisperSpec revision {revision} is not this one's")
        for _ in range(_unpack(handle, "I")):
            variable = _string(handle)
            shape = [_unpack(handle, "I") for _ in range(_unpack(handle, "B"))]
            type_id = _unpack(handle, "B")
            if type_id >= len(DTYPES) or DTYPES[type_id] == "bfloat16":
                raise QuantizeError(f"{path}: {variable} has unsupported type id {type_id}")
            raw = handle.read(_unpack(handle, "I"))
            array = np.frombuffer(raw, dtype=DTYPES[type_id])
            variables[variable] = array.reshape(shape).copy()
        for _ in range(_unpack(handle, "I")):
            alias = _string(handle)
            aliases[alias] = _string(handle)
        if handle.read(1):
            raise QuantizeError(f"{path}: trailing bytes after the aliases")
    return variables, aliases


def _count(variables: Variables, prefix: str) -> int:
    pattern = re.compile(rf"^{prefix}/layer_(\d+)/")
    return len({match.group(1) for name in variables if (match := pattern.match(name))})


def whisper_spec(variables: Variables, aliases: Aliases) -> Any:
    """A ``WhisperSpec`` of the right size holding ``variables`` (aliases resolved)."""
    from ctranslate2.specs import model_spec
    from ctranslate2.specs.whisper_spec import WhisperSpec

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
            raise QuantizeError(f"variable {name} is not part of WhisperSpec")
        setattr(layer, attribute, value)
    # Only the layer checks (the vocabulary is copied as a file): wraps the arrays as
    # CTranslate2 variables and fails on any weight left unset.
    model_spec.LayerSpec.validate(spec)
    return spec


def quantize_model_bin(
    source: Path, target: Path, quantization: str = DEFAULT_QUANTIZATION
) -> None:
    """Write ``target`` = the ``model.bin`` at ``source`` with weights in ``quantization``.

    ``target`` may be ``source``: the source is read completely before anything is written.
    """
    variables, aliases = read_model_bin(source)
    if any(name.endswith("_scale") for name in variables):
        # Re-quantizing int8 values as if they were floats would silently break the model.
        raise QuantizeError(f"{source} is already quantized; start from the float16 export")
    try:
        spec = whisper_spec(variables, aliases)
        spec.optimize(quantization)  # alias shared weights, then quantize (the converter's way)
        target.parent.mkdir(parents=True, exist_ok=True)
        spec._serialize(str(target))
    except (AttributeError, TypeError, KeyError, IndexError) as exc:
        raise QuantizeError(f"CTranslate2's spec internals changed: {exc!r}") from exc
    _check_written(target, variables, aliases, quantization)


def _check_written(target: Path, source: Variables, aliases: Aliases, quantization: str) -> None:
    """Read ``target`` back: same variables (plus scales), same aliases, int8 weights."""
    written, written_aliases = read_model_bin(target)
    missing = set(source) - set(written)
    if missing or written_aliases != aliases:
        raise QuantizeError(
            f"{target}: quantized model lost variables {sorted(missing)[:5]} "
            f"or changed aliases ({len(written_aliases)} vs {len(aliases)})"
        )
    if quantization.startswith("int8"):
        weights = weight_dtypes(written)
        if not weights or set(weights.values()) != {"int8"}:
            raise QuantizeError(f"{target}: weights not all int8: {sorted(set(weights.values()))}")


def weight_dtypes(variables: Variables) -> dict[str, str]:
    """dtype of every quantizable matrix (the ones that come with a ``*_scale``)."""
    return {
        name: str(value.dtype)
        for name, value in variables.items()
        if f"{name}_scale" in variables or (name.endswith("/weight") and value.ndim >= 2)
    }


def quantize_model_dir(
    source: Path, target: Path, quantization: str = DEFAULT_QUANTIZATION
) -> Path:
    """Write the model directory ``target`` = ``source`` with its weights quantized."""
    quantize_model_bin(source / "model.bin", target / "model.bin", quantization)
    for name in COPIED_FILES:
        if (source / name).is_file():
            shutil.copy(source / name, target / name)
    return target


def main(argv: list[str] | None = None) -> None:
    """Command line: quantize one model directory into another."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--quantization", default=DEFAULT_QUANTIZATION)
    args = parser.parse_args(argv)
    quantize_model_dir(args.source, args.target, args.quantization)
    print(f"{args.target / 'model.bin'}: {(args.target / 'model.bin').stat().st_size} bytes")


if __name__ == "__main__":
    main()
