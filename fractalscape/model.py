"""The one model protocol: what a landscape, a network or a user's model tells the lane driver.

A model is anything GD (or another optimizer, :mod:`fractalscape.optimizers`)
trains pointwise over a grid. It says, in plain Python:

* its **slots**: the per-point parameters a grid axis or ``[descent]`` may set
  (:meth:`Model.slots`, with :meth:`Model.groups` for names that set several,
  like ``lr``, and :meth:`Model.defaults`); the first :meth:`Model.lr_slots`
  are the learning rates, one per parameter group;
* its **structural** slots: integer slots (a seed, a width, a dataset size)
  that change the arrays or the shapes the kernels are compiled for. The
  block runner splits a block along an axis that sets one and runs each
  value separately, so a map over ``lr x seed`` is, column by column, the
  maps run with that seed fixed;
* its **lane program** (:class:`Program`) for one structure and precision:
  how many parameters each point trains, which learning rate each uses, and
  a builder of three numba functions over the lanes of the driver's buffer
  (:class:`Layout`)::

      init(buf, data, k, threshold)    # point k's initial parameters, from its slot rows
      gradient(buf, data, step, threshold)
                                       # every lane: the gradient rows, and the NEED row:
                                       #   nonzero where the loss may be above threshold
                                       # (``lanewise`` programs: gradient(buf, data, k, threshold)
                                       #  -> need, lane k only, which the driver fuses with its
                                       #  update; it returns the flag instead of writing the row)
      loss(buf, data, k) -> float      # lane k's loss before its last update

  ``buf`` is the int64 lane buffer (views of its rows: ``fractalscape.gd.rows``
  and ``flat``), ``step`` the row of updates applied so far.

  ``data`` is the tuple :meth:`Model.kernel_data` returns (arrays every lane
  reads). A program whose loss is known at every step (``has_score``: a
  network's forward pass computes it anyway) gets Sohl-Dickstein's score
  readout and runs every step; the others may skip the loss (a cheap bound,
  see :mod:`fractalscape.landscapes.base`) and stop at repeated states;
* its **provenance**: :meth:`Model.description`, :meth:`Model.attrs` and
  :meth:`Model.config_table` (the config table that rebuilds it).

:mod:`fractalscape.gd` combines any program with any optimizer; the public
verb :func:`fractalscape.trainability` and the config reader see only this
protocol. Adding a model is one module that subclasses :class:`Model`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Callable, Mapping, NamedTuple

import numpy as np

from fractalscape.errors import ConfigError, check_finite

#: dtype of one block of readouts, for every model: readouts a model lacks are NaN.
READOUT_DTYPE = np.dtype([("escape_step", np.int32), ("final_loss", np.float64), ("score", np.float64)])

#: Sohl-Dickstein's ``convergence_measure``: normalised losses are clipped here ...
CLIP = 1e6
#: ... and training converged if the mean of this many last normalised losses is < 1.
TAIL = 20


@dataclass(frozen=True)
class Layout:
    """Rows of the driver's lane buffer that a model's program reads and writes.

    Row ``r`` of lane ``k`` is element ``r * lanes + k`` of the lane buffer
    (``size`` rows in all). ``theta`` is the row of the model's first slot (slots in
    :meth:`Model.slots` order); ``scratch`` the first of the program's
    ``n_scratch`` private rows; ``need`` the row ``gradient`` flags (programs
    that are not ``lanewise``).
    """

    lanes: int
    params: int
    grads: int
    theta: int
    scratch: int
    need: int
    size: int


class Program(NamedTuple):
    """A model's lane program for one structure and precision (see the module docstring)."""

    key: tuple  # identifies the compiled code: equal keys, equal programs
    lanes: int  # points in lock-step
    n_params: int
    lr_group: tuple[int, ...]  # per parameter: the index of its learning rate in Model.lr_slots()
    n_scratch: int
    has_score: bool
    lanewise: bool  # gradient(buf, data, k, threshold) -> need of one lane, fused with its update (else all lanes)
    build: Callable[[Layout], tuple[Callable, Callable, Callable]]
    #: Plain values that identify the compiled code in any process (the kernel is then
    #: kept on disk, see :mod:`fractalscape.kernelcache`); None: compiled in every process.
    cache_key: tuple | None = None


class Model(abc.ABC):
    """Base of every model: landscapes, networks, user models (see the module docstring).

    Examples
    --------
    >>> import fractalscape as fs
    >>> land = fs.landscape("cosine-additive")
    >>> isinstance(land, Model), land.slots(), land.structural()
    (True, ('lr', 'x0', 'delta', 'wavelength'), ())
    >>> net = fs.NetworkModel("tanh", width=4, depth=3)
    >>> net.lr_slots(), net.structural()
    (('lr_W0', 'lr_W1', 'lr_W2'), ('seed', 'n_data', 'batch_size', 'width'))
    """

    #: Readouts this model produces (of :data:`READOUT_DTYPE`).
    readouts: tuple[str, ...] = ("escape_step", "final_loss")
    #: Default divergence threshold on the loss.
    default_threshold: float = 1e8

    @abc.abstractmethod
    def slots(self) -> tuple[str, ...]:
        """Per-point parameters, learning rates first."""

    @abc.abstractmethod
    def lr_slots(self) -> tuple[str, ...]:
        """The learning-rate slots, one per parameter group."""

    def groups(self) -> dict[str, tuple[str, ...]]:
        """Names that set several slots at once (``lr``: every learning rate)."""
        return {"lr": self.lr_slots()} if len(self.lr_slots()) > 1 else {}

    def defaults(self) -> dict[str, float]:
        """Slot values used when neither an axis nor ``[descent]`` sets the slot."""
        return {}

    def structural(self) -> tuple[str, ...]:
        """Integer slots that change arrays or compiled shapes (the block runner splits on them)."""
        return ()

    def descent_slots(self) -> tuple[str, ...]:
        """Slot and group names ``[descent]`` may set (the rest come from the model's own table)."""
        return (*self.groups(), *(s for s in self.slots() if s not in self.structural()))

    def check_structure(self, structure: Mapping[str, int]) -> None:
        """Raise :class:`ConfigError` for an invalid combination of structural values."""

    @abc.abstractmethod
    def program(self, structure: Mapping[str, int], precision: str) -> Program:
        """The lane program for these structural values and precision."""

    def kernel_data(self, structure: Mapping[str, int], steps: int) -> tuple:
        """Arrays the program reads (one tuple, passed to every kernel call)."""
        return (np.zeros(1),)

    def settings(self, values: Mapping) -> dict:
        """``[descent]`` values, checked, as stored in the map's configuration (``None`` dropped)."""
        valid = self.descent_slots()
        out = {}
        for name, value in values.items():
            if value is None:
                continue
            if name not in valid:
                raise ConfigError(f"unknown descent setting {name!r} for {self.owner()}; valid: "
                                  f"{', '.join(valid)}, steps, threshold, precision, label, optimizer "
                                  "and its hyperparameters")
            out[name] = check_finite(name, value)
        return out

    def slot_values(self, settings: Mapping) -> dict[str, float]:
        """Slot values from stored settings: groups expanded over their slots."""
        out = {}
        for name, value in settings.items():
            out.update(dict.fromkeys(self.groups().get(name, (name,)), float(value)))
        return out

    def run_block(self, values, axes, steps: int, threshold: float | None = None, precision: str = "libm",
                  optimizer: str = "gd", detect_cycles: bool = True) -> np.ndarray:
        """Readouts of the points of ``axes`` (:func:`fractalscape.gd.run_block`; threshold default
        :attr:`default_threshold`)."""
        from fractalscape.gd import run_block

        threshold = self.default_threshold if threshold is None else threshold
        return run_block(self, values, axes, steps=steps, threshold=threshold, precision=precision,
                         optimizer=optimizer, detect_cycles=detect_cycles)

    def owner(self) -> str:
        """The model in a few words, for error messages."""
        return type(self).__name__

    @abc.abstractmethod
    def config_table(self) -> tuple[str, dict]:
        """``(table name, table)`` of a config that rebuilds this model."""

    @abc.abstractmethod
    def description(self) -> str:
        """The model in words, for titles and provenance."""

    def attrs(self) -> dict:
        """Provenance attributes of a map of this model."""
        return {"model": self.config_table()[0], "formula": self.description()}

