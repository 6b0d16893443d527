"""Read a ``.gguf`` file's header (metadata and tensor names) fast, without its weights.

``gguf.GGUFReader`` parses every array element into numpy objects, which takes
seconds for a 49k-token vocabulary; the plan shown in the window needs the
shape of the model in milliseconds. This reader walks the header once with
``struct`` and skips array contents it does not need (it still counts the
vocabulary). The format is the one ``gguf.constants`` describes (GGUF v2/v3,
little-endian).
"""

from __future__ import annotations

import functools
import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gguf.constants import GGUFValueType

_SCALARS = {
    GGUFValueType.UINT8: "<B",
    GGUFValueType.INT8: "<b",
    GGUFValueType.UINT16: "<H",
    GGUFValueType.INT16: "<h",
    GGUFValueType.UINT32: "<I",
    GGUFValueType.INT32: "<i",
    GGUFValueType.FLOAT32: "<f",
    GGUFValueType.BOOL: "<?",
    GGUFValueType.UINT64: "<Q",
    GGUFValueType.INT64: "<q",
    GGUFValueType.FLOAT64: "<d",
}
# Arrays longer than this are counted and skipped, not read (vocabularies, merges, token types).
_MAX_ARRAY = 64


class GGUFHeaderError(ValueError):
    """The file is not a readable GGUF file (message is one sentence)."""


@dataclass
class GGUFHeader:
    """Metadata (small values only; long arrays appear as their length) and tensor names."""

    metadata: dict[str, Any] = field(default_factory=dict)
    array_lengths: dict[str, int] = field(default_factory=dict)
    tensor_names: list[str] = field(default_factory=list)

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)


class _Cursor:
    def __init__(self, buffer: Any):
        self.buffer = buffer
        self.pos = 0

    def unpack(self, fmt: str) -> Any:
        value = struct.unpack_from(fmt, self.buffer, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        length = self.unpack("<Q")
        raw = self.buffer[self.pos : self.pos + length]
        self.pos += length
        return bytes(raw).decode("utf-8", errors="replace")

    def value(self, kind: int, key: str, header: GGUFHeader) -> Any:
        if kind == GGUFValueType.STRING:
            return self.string()
        if kind == GGUFValueType.ARRAY:
            item_kind, count = self.unpack("<I"), self.unpack("<Q")
            header.array_lengths[key] = count
            if count > _MAX_ARRAY:
                self.skip_array(item_kind, count)
                return None
            return [self.value(item_kind, key, header) for _ in range(count)]
        fmt = _SCALARS.get(GGUFValueType(kind))
        if fmt is None:
            raise GGUFHeaderError(f"value type {kind} of {key!r} is unknown")
        return self.unpack(fmt)

    def skip_array(self, item_kind: int, count: int) -> None:
        if item_kind == GGUFValueType.STRING:
            buffer, pos = self.buffer, self.pos
            for _ in range(count):
                pos += 8 + struct.unpack_from("<Q", buffer, pos)[0]
            self.pos = pos
        elif item_kind == GGUFValueType.ARRAY:
            raise GGUFHeaderError("nested arrays in the metadata are not supported")
        else:
            self.pos += count * struct.calcsize(_SCALARS[GGUFValueType(item_kind)])


def read_header(path: str | Path) -> GGUFHeader:
    """The header of a GGUF file; raises :class:`GGUFHeaderError` (one sentence) for a bad file.

    Remembered per (path, size, modification time), so repeated calls are free.
    """
    file = Path(path)
    try:
        stat = file.stat()
    except OSError as err:
        raise GGUFHeaderError(f"{file.name} cannot be read ({err.strerror or err})") from None
    return _read_header_cached(str(file.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _read_header_cached(path: str, size: int, mtime_ns: int) -> GGUFHeader:
    del size, mtime_ns  # cache key only
    name = Path(path).name
    try:
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
            return _parse(buffer, name)
    except GGUFHeaderError:
        raise
    except (ValueError, struct.error, OSError, IndexError):
        raise GGUFHeaderError(f"{name} is not a valid GGUF file (its header ends early or is damaged)") from None


def _parse(buffer: Any, name: str) -> GGUFHeader:
    if len(buffer) < 24 or bytes(buffer[:4]) != b"GGUF":
        raise GGUFHeaderError(f"{name} is not a GGUF file (it does not start with the GGUF magic bytes)")
    cursor = _Cursor(buffer)
    cursor.pos = 4
    version = cursor.unpack("<I")
    if version not in (2, 3):
        raise GGUFHeaderError(f"{name} is GGUF version {version}; only versions 2 and 3 (little-endian) are read")
    tensor_count, kv_count = cursor.unpack("<Q"), cursor.unpack("<Q")
    header = GGUFHeader()
    for _ in range(kv_count):
        key = cursor.string()
        kind = cursor.unpack("<I")
        header.metadata[key] = cursor.value(kind, key, header)
    for _ in range(tensor_count):
        header.tensor_names.append(cursor.string())
        n_dims = cursor.unpack("<I")
        cursor.pos += 8 * n_dims + 4 + 8  # dims, type, offset
    return header


def hf_config_from_header(header: GGUFHeader, name: str = "the .gguf file") -> Any:
    """A ``LlamaConfig`` for a Llama-architecture GGUF file (the shape only; weights are not read).

    Raises :class:`GGUFHeaderError` for other architectures or missing keys.
    """
    from transformers import LlamaConfig

    arch = header.get("general.architecture")
    if arch != "llama":
        raise GGUFHeaderError(f"{name} holds a {arch!r} model; the plan reads Llama-architecture GGUF files")
    try:
        hidden = int(header.get(f"{arch}.embedding_length"))
        layers = int(header.get(f"{arch}.block_count"))
        heads = int(header.get(f"{arch}.attention.head_count"))
        intermediate = int(header.get(f"{arch}.feed_forward_length"))
    except TypeError:
        raise GGUFHeaderError(
            f"{name} lacks the model shape in its metadata (block count, embedding length, heads)"
        ) from None
    kv_heads = header.get(f"{arch}.attention.head_count_kv") or heads
    vocab = header.array_lengths.get("tokenizer.ggml.tokens") or header.get(f"{arch}.vocab_size")
    if not vocab:
        raise GGUFHeaderError(f"{name} has no vocabulary in its metadata")
    head_dim = (
        header.get(f"{arch}.rope.dimension_count") or header.get(f"{arch}.attention.key_length") or hidden // heads
    )
    return LlamaConfig(
        vocab_size=int(vocab),
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=int(kv_heads),
        head_dim=int(head_dim),
        max_position_embeddings=int(header.get(f"{arch}.context_length") or 2048),
        rms_norm_eps=float(header.get(f"{arch}.attention.layer_norm_rms_epsilon") or 1e-5),
        # no separate output matrix in the file means the head reuses the embeddings
        tie_word_embeddings="output.weight" not in header.tensor_names,
        bos_token_id=header.get("tokenizer.ggml.bos_token_id"),
        eos_token_id=header.get("tokenizer.ggml.eos_token_id"),
        pad_token_id=header.get("tokenizer.ggml.padding_token_id"),
    )
