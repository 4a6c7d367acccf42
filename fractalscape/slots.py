"""Which per-point parameters (slots) each grid axis sets: one rule for landscapes and networks."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

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
