"""Byte encoding of tensors passed between partitions (hidden states through Redis).

Format: the 4-byte magic ``SYT1``, one byte dtype code, one byte rank, the shape as
unsigned 64-bit little-endian integers, then the tensor's elements in little-endian
row-major order. No pickle: a payload read from a shared store cannot run code, and the
encoding is lossless, so a hidden state decoded on the next node is bit-identical.
"""

from __future__ import annotations

import struct
import sys

import torch

MAGIC = b"SYT1"
MAX_RANK = 8

_DTYPE_CODES: dict[torch.dtype, int] = {
    torch.float32: 1,
    torch.float16: 2,
    torch.bfloat16: 3,
    torch.float64: 4,
    torch.int64: 5,
    torch.int32: 6,
    torch.uint8: 7,
    torch.bool: 8,
}
_CODE_DTYPES = {code: dtype for dtype, code in _DTYPE_CODES.items()}

if sys.byteorder != "little":  # pragma: no cover - every supported host is little-endian
    raise ImportError("inference.wire assumes a little-endian host")


class WireFormatError(ValueError):
    """A payload that is not a tensor encoded by ``encode_tensor``."""


def encode_tensor(tensor: torch.Tensor) -> bytes:
    """Return the tensor as header plus raw bytes (copied to the CPU first)."""
    dtype_code = _DTYPE_CODES.get(tensor.dtype)
    if dtype_code is None:
        raise WireFormatError(f"dtype {tensor.dtype} cannot be encoded")
    if tensor.ndim > MAX_RANK:
        raise WireFormatError(f"rank {tensor.ndim} exceeds {MAX_RANK}")
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    header = MAGIC + struct.pack("<BB", dtype_code, tensor.ndim)
    header += struct.pack(f"<{tensor.ndim}Q", *tensor.shape)
    # Reinterpreting as bytes works for every dtype, bfloat16 included, which numpy lacks.
    return header + flat.view(torch.uint8).numpy().tobytes()


def decode_tensor(payload: bytes, device: torch.device | str | None = None) -> torch.Tensor:
    """Return the tensor encoded in ``payload``, on ``device`` (CPU by default)."""
    if len(payload) < len(MAGIC) + 2 or payload[: len(MAGIC)] != MAGIC:
        raise WireFormatError("payload does not start with the tensor magic")
    dtype_code, rank = struct.unpack_from("<BB", payload, len(MAGIC))
    dtype = _CODE_DTYPES.get(dtype_code)
    if dtype is None:
        raise WireFormatError(f"unknown dtype code {dtype_code}")
    if rank > MAX_RANK:
        raise WireFormatError(f"rank {rank} exceeds {MAX_RANK}")
    offset = len(MAGIC) + 2
    if len(payload) < offset + 8 * rank:
        raise WireFormatError("payload ends inside the shape")
    shape = struct.unpack_from(f"<{rank}Q", payload, offset)
    offset += 8 * rank
    element_size = torch.empty((), dtype=dtype).element_size()
    count = 1
    for size in shape:
        count *= size
    if len(payload) - offset != count * element_size:
        raise WireFormatError(
            f"payload holds {len(payload) - offset} data bytes; shape {tuple(shape)} of {dtype} "
            f"needs {count * element_size}"
        )
    # bytearray: torch.frombuffer wants a writable buffer, and the result must own its memory.
    data = torch.frombuffer(bytearray(payload[offset:]), dtype=torch.uint8) if count else None
    tensor = data.view(dtype).reshape(shape) if data is not None else torch.empty(shape, dtype=dtype)
    return tensor.to(device) if device is not None else tensor
