"""Which per-point parameters (slots) each grid axis sets: one rule for landscapes and networks."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from numba import njit

from fractalscape.errors import ConfigError


def slot_table(names: Sequence[str], slots: Sequence[str], groups: Mapping[str, Sequence[str]], owner: str) -> np.ndarray:
    """Boolean matrix ``(len(names), len(slots))``: the slots each named axis sets.

    An axis named like a slot sets that slot; an axis named like a group
    (``lr``: every learning rate) sets all of the group's slots. Two axes may
    not set the same slot.

    Examples
    --------
    >>> slot_table(["lr"], ["lr_0", "lr_1", "x0_0"], {"lr": ["lr_0", "lr_1"]}, "a landscape").astype(int)
    array([[1, 1, 0]])
    """
    table = np.zeros((len(names), len(slots)), dtype=np.bool_)
    for row, name in enumerate(names):
        targets = groups.get(name) or ([name] if name in slots else None)
        if targets is None:
            valid = ", ".join(dict.fromkeys([*groups, *slots]))
            raise ConfigError(f"unknown axis {name!r} for {owner}; valid axes: {valid}")
        table[row, [list(slots).index(t) for t in targets]] = True
    overlap = table.sum(axis=0) > 1
    if overlap.any():
        slot = slots[int(np.argmax(overlap))]
        both = [n for n, r in zip(names, table) if r[list(slots).index(slot)]]
        raise ConfigError(f"axes {both[0]!r} and {both[1]!r} both set {slot!r}: keep one of them")
    return table


@njit(nogil=True, inline="always")
def point_value(params, slots, c0, c1, c2, i0, i1, i2, s):
    """Slot ``s`` of the block's point ``(i0, i1, i2)``: the coordinate of the axis that sets it, else ``params[s]``.

    The block's points are the outer product of ``c0, c1, c2``;
    ``slots`` is a :func:`slot_table` padded to 3 rows (absent axes: one
    coordinate, no slot). The driver steps the indices with
    :func:`next_index`, so a refill costs no integer division.
    """
    value = params[s]
    if slots[0, s]:
        value = c0[i0]
    if slots[1, s]:
        value = c1[i1]
    if slots[2, s]:
        value = c2[i2]
    return value


@njit(nogil=True, inline="always")
def next_index(i0, i1, i2, n1, n2):
    """The point after ``(i0, i1, i2)`` in C order over axes of lengths ``(., n1, n2)``."""
    i2 += 1
    if i2 == n2:
        i2 = 0
        i1 += 1
        if i1 == n1:
            i1 = 0
            i0 += 1
    return i0, i1, i2
