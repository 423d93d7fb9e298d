"""Merging the payloads of several requests into one model input, and splitting the output back.

Used by the TF Serving handler's ``run_batch``: whether a batch may be merged is part of what the
handler promises (one request's output never leaks into another's).
"""

from __future__ import annotations

from typing import Any


def leading_size(value: Any) -> int | None:
    """The batch dimension of a tensor/array with at least 2 dimensions, else None.

    1-D inputs are never merged: concatenating two feature vectors would change what the model
    sees (one longer vector), not add a batch row.
    """
    shape = getattr(value, "shape", None)
    if shape is None or len(shape) < 2:
        return None
    return int(shape[0])


def merge_key(value: Any) -> tuple[Any, ...]:
    """Payloads with the same key can be concatenated along the first axis."""
    return (type(value).__name__, str(getattr(value, "dtype", "")), tuple(value.shape[1:]))


def split_output(output: Any, sizes: list[int]) -> list[Any] | None:
    """Split a batched model output back into per-request pieces, or None when it cannot be.

    Supports a tensor/array whose first dimension is the total batch, a list/tuple of that length,
    and a dict of such values (e.g. ``{"probabilities": ..., "labels": ...}``).
    """
    total = sum(sizes)
    if isinstance(output, dict):
        parts = {k: split_output(v, sizes) for k, v in output.items()}
        if not parts or any(p is None for p in parts.values()):
            return None
        return [{k: p[i] for k, p in parts.items()} for i in range(len(sizes))]  # type: ignore[index]
    shape = getattr(output, "shape", None)
    if shape is not None and len(shape) >= 1 and int(shape[0]) == total:
        pieces, start = [], 0
        for n in sizes:
            pieces.append(output[start : start + n])
            start += n
        return pieces
    if isinstance(output, list | tuple) and len(output) == total:
        pieces, start = [], 0
        for n in sizes:
            pieces.append(type(output)(output[start : start + n]))
            start += n
        return pieces
    return None
