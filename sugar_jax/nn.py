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


class Activation(nnx.Module):
  """An elementwise activation as an NNX module.

  Attributes:
    function: the activation, a static (hashable) callable.
    record: when True, each call sows per-unit statistics of its output into
      ``nnx.Intermediate`` under the name ``"unit_statistics"`` (see
      :func:`unit_statistics`). Off by default, so training pays nothing.
  """

  def __init__(
    self, activation: str | Callable[[Array], Array] = "relu", **kwargs: Any
  ):
    self.function = activations.resolve(activation, **kwargs)
    self.record = False

  def __call__(self, x: Array) -> Array:
    y = self.function(x)
    if self.record:
      self.sow(nnx.Intermediate, "unit_statistics", unit_statistics(y))
    return y


def unit_statistics(y: Array) -> dict[str, Array]:
  """Summarises an activation output per unit.

  A unit is a feature of the last axis (a channel of a convolution, a
  feature of a dense layer); the first axis indexes inputs. A unit *fires*
  on an input when any of its values for that input (any spatial position
  or token) is non-zero.

  Args:
    y: the activation output, shape ``(batch, ..., units)``.

  Returns:
    ``fires``: int32 ``(units,)``, for how many inputs each unit fired;
    ``zeros``: the number of values exactly zero; ``size``: the number of
    values.
  """
  nonzero = (y != 0).reshape(y.shape[0], -1, y.shape[-1])
  return {
    "fires": jnp.any(nonzero, axis=1).sum(axis=0, dtype=jnp.int32),
    "zeros": jnp.sum(~nonzero, dtype=jnp.int32),
    "size": jnp.asarray(y.size, jnp.int32),
  }
