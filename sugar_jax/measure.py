"""The paper's measurements: dead units, sparsity, gradient norms.

A unit (a channel of a convolution, a feature of a dense layer) is *dead*
on a set of inputs when it fired on none of them: its ReLU output was zero
at every position for every input. SUGAR's claim is that such units receive
gradient anyway and can come back; :func:`resurrected` counts those that did
between two measurements.

Statistics are collected while the model runs normally, so the logits are
the model's own; jit the collection like any forward pass::

  logits, batch = nnx.jit(measure.forward_with_statistics)(
    model, images, mask
  )
  total = measure.accumulate(total, batch)

:func:`evaluate_statistics` does this over a whole evaluation set. The
result, :class:`Statistics`, is what :func:`dead_fraction`,
:func:`sparsity`, :func:`activation_counts` and :func:`summary` read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import operator
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sugar_jax import nn

Array = jax.Array
BatchStatistics = dict[str, dict[str, Array]]


@contextlib.contextmanager
def recording(model: nnx.Module) -> Iterator[nnx.Module]:
  """Makes every :class:`~sugar_jax.nn.Activation` of ``model`` record.

  :func:`forward_with_statistics` records by itself; use this to collect
  ``nnx.capture(model, nn.UnitStatistics)`` some other way. On exit the
  previous settings come back.

  Args:
    model: the model, changed in place.

  Yields:
    ``model``.

  Raises:
    ValueError: the model has no :class:`~sugar_jax.nn.Activation`.
  """
  modules = (module for _, module in nnx.iter_modules(model))
  layers = [module for module in modules if isinstance(module, nn.Activation)]
  if not layers:
    raise ValueError("the model has no sugar_jax.nn.Activation to record")
  previous = [layer.record for layer in layers]
  for layer in layers:
    layer.record = True
  try:
    yield model
  finally:
    for layer, record in zip(layers, previous, strict=True):
      layer.record = record
  # A call outside nnx.capture stores what it sows on the module itself;
  # drop it, so it never reaches the model's state or a checkpoint.
  nnx.pop(model, nn.UnitStatistics)


def forward_with_statistics(
  model: nnx.Module, images: Array, mask: Array | None = None
) -> tuple[Array, BatchStatistics]:
  """Runs the model and collects the statistics of its activations.

  Jit it with ``nnx.jit``, or call it on a model merged inside
  ``jax.jit``. The model is called as ``model(images)``; put it in
  evaluation mode first. Recording is switched on for this call only, so
  the model's graph, and with it any jit cache, is the same after it.

  Args:
    model: the model.
    images: a batch of inputs, ``(batch, ...)``.
    mask: bool ``(batch,)``, the inputs to count; padding is False. None
      counts every input. The logits are computed for all of them.

  Returns:
    ``(logits, statistics)``. ``statistics`` maps each activation's path,
    such as ``"blocks/0/activation1"``, to int32 arrays: ``fires``
    ``(units,)``, on how many counted inputs each unit fired, and scalars
    ``zeros``, ``size`` and ``examples``. An activation called several
    times per input fires on an input if it fired in any call; its zeros and
    sizes add up.

  Raises:
    ValueError: the model has no :class:`~sugar_jax.nn.Activation`.
  """
  with recording(model):
    logits, sown = nnx.capture(model, nn.UnitStatistics)(images)
  mask = jnp.ones(images.shape[0], bool) if mask is None else mask != 0

  statistics = {}
  for path, variable in nnx.to_flat_state(sown):
    calls = variable.get_value()
    fires = functools.reduce(jnp.logical_or, [c["fires"] for c in calls])
    zeros = sum(c["zeros"] for c in calls)
    size = sum(c["size"] for c in calls)
    statistics[_path_name(path[:-1])] = {
      "fires": jnp.sum(fires & mask[:, None], axis=0, dtype=jnp.int32),
      "zeros": jnp.sum(jnp.where(mask, zeros, 0)),
      "size": jnp.sum(jnp.where(mask, size, 0)),
      "examples": jnp.sum(mask, dtype=jnp.int32),
    }
  return logits, statistics


@dataclasses.dataclass(frozen=True)
class LayerStatistics:
  """Counts for one activation over a set of inputs.

  Attributes:
    fires: int64 ``(units,)``, on how many inputs each unit fired.
    zeros: the number of output values exactly zero.
    size: the number of output values.
    examples: the number of inputs.
  """

  fires: np.ndarray
  zeros: int
  size: int
  examples: int

  def __add__(self, other: LayerStatistics) -> LayerStatistics:
    return LayerStatistics(
      self.fires + other.fires,
      self.zeros + other.zeros,
      self.size + other.size,
      self.examples + other.examples,
    )


@dataclasses.dataclass(frozen=True)
class Statistics:
  """The statistics of every activation over a set of inputs.

  Counts live on the host as int64, so a large set never overflows them.
  Add the statistics of disjoint sets with ``+``.

  Attributes:
    layers: :class:`LayerStatistics` by activation path.
  """

  layers: dict[str, LayerStatistics]

  @classmethod
  def from_batch(cls, batch: BatchStatistics) -> Statistics:
    """Converts :func:`forward_with_statistics`' statistics."""
    batch = jax.device_get(batch)
    return cls(
      {
        path: LayerStatistics(
          np.asarray(counts["fires"], np.int64),
          int(counts["zeros"]),
          int(counts["size"]),
          int(counts["examples"]),
        )
        for path, counts in batch.items()
      }
    )

  def __add__(self, other: Statistics) -> Statistics:
    if self.layers.keys() != other.layers.keys():
      raise ValueError("statistics of different activations cannot be added")
    return Statistics(
      {path: layer + other.layers[path] for path, layer in self.layers.items()}
    )


def evaluate_statistics(
  model: nnx.Module, batches: Iterable[tuple[Array, Array | None]]
) -> Statistics:
  """Collects :class:`Statistics` over a whole set of inputs.

  Args:
    model: the model, in evaluation mode.
    batches: ``(images, mask)`` pairs; ``mask`` is bool ``(batch,)``, False
      on padding, or None to count every input.

  Returns:
    The statistics of every activation of ``model`` over the counted inputs.

  Raises:
    ValueError: no batch, or the model has no activation to record.
  """
  parts = []
  for images, mask in batches:
    if mask is None:
      # One signature for every batch, so one compilation.
      mask = np.ones(np.shape(images)[0], bool)
    parts.append(_jitted_forward(model, images, mask)[1])
  if not parts:
    raise ValueError("no batches to evaluate")
  # Fetching the counts only now keeps the device busy between batches.
  return functools.reduce(operator.add, map(Statistics.from_batch, parts))


_jitted_forward = nnx.jit(forward_with_statistics)


def accumulate(total: Statistics | None, batch: BatchStatistics) -> Statistics:
  """Adds a batch from :func:`forward_with_statistics` to a running total.

  Args:
    total: the statistics so far, or None before the first batch.
    batch: the statistics of one batch, on the device.

  Returns:
    The new total.
  """
  batch = Statistics.from_batch(batch)
  return batch if total is None else total + batch


def examples(stats: Statistics) -> int:
  """The number of inputs the statistics count."""
  return max(s.examples for s in stats.layers.values())


def alive_units(stats: Statistics) -> dict[str, np.ndarray]:
  """Which units fired on at least one input, per activation path.

  These boolean masks are all :func:`resurrected` needs of an earlier
  measurement, so a training run can keep them alone between evaluations.
  """
  return {path: s.fires > 0 for path, s in stats.layers.items()}


def dead_fraction(stats: Statistics) -> tuple[float, dict[str, float]]:
  """The fraction of units that fired on no input.

  Returns:
    ``(network, layers)``: dead units over all units of all activations,
    and the fraction per activation path.
  """
  dead = {path: int(np.sum(s.fires == 0)) for path, s in stats.layers.items()}
  units = {path: s.fires.size for path, s in stats.layers.items()}
  layers = {path: dead[path] / units[path] for path in dead}
  return sum(dead.values()) / sum(units.values()), layers


def sparsity(stats: Statistics) -> tuple[float, dict[str, float]]:
  """The fraction of activation values exactly zero.

  Returns:
    ``(network, layers)``: zeros over all values of all activations, and
    the fraction per activation path.
  """
  layers = {path: s.zeros / s.size for path, s in stats.layers.items()}
  zeros = sum(s.zeros for s in stats.layers.values())
  size = sum(s.size for s in stats.layers.values())
  return zeros / size, layers


def activation_counts(stats: Statistics) -> dict[str, np.ndarray]:
  """On how many inputs each unit fired, per activation path.

  A histogram of these counts shows how many units are dead (count 0),
  rarely active or always active.
  """
  return {path: s.fires.copy() for path, s in stats.layers.items()}


def resurrected(
  before: Statistics | Mapping[str, np.ndarray],
  after: Statistics | Mapping[str, np.ndarray],
) -> dict[str, Any]:
  """Units that came back to life, and units that died, between two sets.

  A unit is resurrected when it was dead in ``before`` and fires in
  ``after``; it newly died in the reverse case. Fractions are of the units
  dead (for resurrection) or alive (for death) in ``before``, and 0 when
  there were none.

  Args:
    before: the earlier measurement, as :class:`Statistics` or as the
      masks of :func:`alive_units`.
    after: the later one, likewise.

  Returns:
    A JSON-serialisable dict: ``resurrected``, ``resurrected_fraction``,
    ``newly_dead``, ``newly_dead_fraction`` for the whole network, and the
    same per activation path under ``layers``.
  """
  if isinstance(before, Statistics):
    before = alive_units(before)
  if isinstance(after, Statistics):
    after = alive_units(after)
  if before.keys() != after.keys():
    raise ValueError("before and after measure different activations")
  totals = np.zeros(4, np.int64)
  layers = {}
  for path, was_alive in before.items():
    was_dead = ~np.asarray(was_alive, bool)
    is_dead = ~np.asarray(after[path], bool)
    counts = np.array(
      [
        np.sum(was_dead & ~is_dead),
        np.sum(was_dead),
        np.sum(~was_dead & is_dead),
        np.sum(~was_dead),
      ]
    )
    totals += counts
    layers[path] = _resurrection(counts)
  return _resurrection(totals) | {"layers": layers}


def _resurrection(counts: np.ndarray) -> dict[str, Any]:
  came_back, dead, died, alive = (int(c) for c in counts)
  return {
    "resurrected": came_back,
    "resurrected_fraction": came_back / dead if dead else 0.0,
    "newly_dead": died,
    "newly_dead_fraction": died / alive if alive else 0.0,
  }


def summary(stats: Statistics) -> dict[str, Any]:
  """Dead fraction and sparsity, overall and per layer, as plain Python.

  Returns:
    ``{"dead_fraction": float, "sparsity": float, "layers": {path:
    {"dead_fraction": float, "sparsity": float, "units": int}}}``, ready
    for ``json.dumps``.
  """
  dead, dead_layers = dead_fraction(stats)
  sparse, sparse_layers = sparsity(stats)
  layers = {
    path: {
      "dead_fraction": dead_layers[path],
      "sparsity": sparse_layers[path],
      "units": int(s.fires.size),
    }
    for path, s in stats.layers.items()
  }
  return {"dead_fraction": dead, "sparsity": sparse, "layers": layers}


def gradient_norms(grads: nnx.State) -> dict[str, Array]:
  """The L2 norm of the gradient of each parameterised module.

  The parameters of one module (a convolution's kernel and bias) count
  together. Jittable: compute the norms inside the train step and fetch a
  few scalars rather than the whole gradient.

  Args:
    grads: a gradient, as ``nnx.grad`` returns it for a model's parameters.

  Returns:
    0-d float32 arrays by module path (``"blocks/0/conv1"``), and
    ``"total"``, the norm of the whole gradient.
  """
  squares = {}
  for path, value in nnx.to_flat_state(grads):
    if isinstance(value, nnx.Variable):
      value = value.get_value()
    # A parameter of the root module is a group of its own.
    module = _path_name(path[:-1]) or _path_name(path)
    square = jnp.sum(jnp.square(jnp.asarray(value, jnp.float32)))
    squares[module] = squares.get(module, 0.0) + square
  norms = {module: jnp.sqrt(square) for module, square in squares.items()}
  norms["total"] = jnp.sqrt(sum(squares.values(), jnp.float32(0)))
  return norms


def _path_name(path: tuple[Any, ...]) -> str:
  return "/".join(str(key) for key in path)
