"""The NNX building block through which every model applies its activation.

Each nonlinearity of a model is its own :class:`Activation` instance, so the
measurement code can find every one by walking the module graph, and the
activation of a whole model can be replaced in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from sugar_jax import activations

Array = jax.Array


class UnitStatistics(nnx.Intermediate):
  """The variable type under which :class:`Activation` sows its statistics.

  A type of its own lets ``nnx.capture(model, UnitStatistics)`` collect
  these statistics and nothing else a model may sow.
  """


class Activation(nnx.Module):
  """An elementwise activation as an NNX module.

  Attributes:
    function: the activation, a static (hashable) callable.
    record: when True, each call sows :func:`unit_statistics` of its output
      as :class:`UnitStatistics` under the name ``"unit_statistics"``, to be
      collected with ``nnx.capture`` (see :mod:`sugar_jax.measure`). Off by
      default, so training pays nothing.
  """

  def __init__(
    self, activation: str | Callable[[Array], Array] = "relu", **kwargs: Any
  ):
    self.function = activations.resolve(activation, **kwargs)
    self.record = False

  def __call__(self, x: Array) -> Array:
    y = self.function(x)
    if self.record:
      self.sow(UnitStatistics, "unit_statistics", unit_statistics(y))
    return y


def unit_statistics(y: Array) -> dict[str, Array]:
  """Summarises an activation output per input and unit.

  A unit is a feature of the last axis (a channel of a convolution, a
  feature of a dense layer); the first axis indexes inputs. A unit *fires*
  on an input when any of its values for that input (any spatial position
  or token) is non-zero.

  Nothing is summed over the batch here: the caller reduces over the inputs
  it counts, so the padding of a last, incomplete batch can be left out
  without the model knowing about it. The cost is one boolean per input and
  unit, far less than the activation itself.

  Args:
    y: the activation output, shape ``(batch, ..., units)``.

  Returns:
    ``fires``: bool ``(batch, units)``, whether each unit fired on each
    input; ``zeros``: int32 ``(batch,)``, the number of values exactly zero
    per input; ``size``: int32 ``(batch,)``, the number of values per input.
  """
  batch, units = y.shape[0], y.shape[-1]
  nonzero = (y != 0).reshape(batch, -1, units)
  zeros = jnp.sum(~nonzero, axis=(1, 2), dtype=jnp.int32)
  return {
    "fires": jnp.any(nonzero, axis=1),
    "zeros": zeros,
    # Shaped like zeros, so it is sharded like the batch.
    "size": jnp.full_like(zeros, y.size // batch),
  }
