"""Replaces the activation of an existing NNX model in place.

With it, a model written without SUGAR in mind (a pretrained one, say) can
be fine-tuned with a SUGAR activation without editing its code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
from flax import nnx

from sugar_jax import activations, nn

SWAPPABLE: tuple[Callable[..., Any], ...] = (
  jax.nn.relu,
  jax.nn.leaky_relu,
  jax.nn.elu,
  jax.nn.celu,
  jax.nn.selu,
  jax.nn.gelu,
  jax.nn.silu,
  jax.nn.mish,
)
"""The functions :func:`swap_activation` recognises as activations.

``nnx.relu``, ``nnx.gelu``, ``nnx.swish`` and the other Flax names are these
same objects. Gates and output functions (``sigmoid``, ``tanh``,
``softmax``, ``softplus``) are left out on purpose, as are the capped
``relu6`` and ``hard_*`` functions, whose bound is part of the architecture.
"""


def swap_activation(
  model: nnx.Module,
  activation: str | Callable[[jax.Array], jax.Array],
  **hyperparameters: Any,
) -> int:
  """Replaces every activation of ``model`` that it can see, in place.

  It replaces:

  * the ``function`` of every :class:`sugar_jax.nn.Activation`, whatever it
    was;
  * every attribute of an NNX module, including an item of ``nnx.List``
    (as in ``nnx.Sequential``) or ``nnx.Dict``, whose value is one of
    :data:`SWAPPABLE` itself, such as ``self.act = jax.nn.relu``, or an
    activation resolved by name, such as an earlier swap put there.

  It cannot see, and leaves as they are:

  * activations called directly in ``__call__``, as ``jax.nn.relu(x)``;
  * activations wrapped in a lambda, ``functools.partial`` (for example
    ``partial(jax.nn.gelu, approximate=False)``) or another function;
  * activations stored in plain Python containers or objects other than
    NNX modules, or used by non-NNX code.

  Call it outside any jitted function. The replaced attributes are static,
  so jitted functions trace the changed model anew.

  Args:
    model: the model, changed in place.
    activation: a name known to :func:`sugar_jax.activations.resolve`, such
      as ``"sugar_bsilu"``, or a callable.
    **hyperparameters: the named activation's hyperparameters.

  Returns:
    The number of activations replaced; a module shared between several
    places counts once.

  Raises:
    ValueError: nothing to replace (the message suggests
      :class:`sugar_jax.nn.Activation`), or an invalid activation.
  """
  function = activations.resolve(activation, **hyperparameters)
  # Walk the whole graph before changing anything in it.
  graph = dict(nnx.iter_graph(model))

  targets = []
  for path, value in graph.items():
    if isinstance(value, nn.Activation):
      targets.append((value, "function"))
    elif path and _is_swappable(value):
      owner = graph[path[:-1]]
      if isinstance(owner, nnx.Module) and not isinstance(owner, nn.Activation):
        targets.append((owner, path[-1]))
  if not targets:
    raise ValueError(
      "found no activation to swap: store each one as a "
      "sugar_jax.nn.Activation, or as an attribute such as "
      "self.act = jax.nn.relu, rather than calling it directly"
    )

  for owner, key in targets:
    if isinstance(key, int):  # an item of an nnx.List
      owner[key] = function
    else:
      setattr(owner, key, function)
  return len(targets)


def _is_swappable(value: Any) -> bool:
  if isinstance(value, activations.ActivationFunction):
    return True
  return any(value is known for known in SWAPPABLE)
