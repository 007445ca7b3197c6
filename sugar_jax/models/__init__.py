"""The paper's image classifiers, built by name with a swappable activation.

Every model maps NHWC float images to logits (B, num_classes), and every
one of its nonlinearities is its own `sugar_jax.nn.Activation`, so the
activation can be chosen here, swapped later, and measured per layer.
Models with batch norm start in training mode; call `model.eval()` before
evaluating and `model.train()` to go back.

Example:
  model = models.create(
    "resnet18", num_classes=10, activation="sugar_bsilu", rngs=nnx.Rngs(0)
  )
"""

import math
from collections.abc import Callable, Sequence

import jax
from flax import nnx

from sugar_jax.models import _width
from sugar_jax.models.convnext import ConvNeXt
from sugar_jax.models.mlp import MLP
from sugar_jax.models.resnet import ResNet18
from sugar_jax.models.swin import SwinTransformer
from sugar_jax.models.vgg import VGG16

_MODELS = {
  "vgg16": VGG16,
  "resnet18": ResNet18,
  "convnext": ConvNeXt,
  "swin": SwinTransformer,
  "mlp": MLP,
}

NAMES = tuple(_MODELS)


def create(
  name: str,
  *,
  num_classes: int,
  activation: str | Callable[[jax.Array], jax.Array] = "relu",
  width: float = 1.0,
  rngs: nnx.Rngs,
  image_shape: Sequence[int] = (32, 32, 3),
  **options,
) -> nnx.Module:
  """Builds the model called `name`.

  Args:
    name: one of `NAMES`.
    num_classes: number of logits.
    activation: every swappable nonlinearity of the model, a name known to
      `sugar_jax.activations.resolve` or a callable (for a surrogate with
      other hyperparameters than the defaults, pass
      `activations.resolve(name, **hyperparameters)`).
    width: multiplies every channel and feature count of the model.
    rngs: the random streams for parameter initialization.
    image_shape: (height, width, channels) of an input image.
    **options: model-specific keyword arguments, e.g. `batch_norm` for
      "vgg16", `depths` for "convnext" and "swin", `hidden_sizes` for
      "mlp"; see each model's constructor.

  Returns:
    The model, in training mode.

  Raises:
    ValueError: for an unknown name, a non-positive width, or options the
      model cannot be built with.
  """
  if name not in _MODELS:
    raise ValueError(
      f"Unknown model {name!r}; valid names are {', '.join(NAMES)}."
    )
  _width.check_width(width)
  return _MODELS[name](
    num_classes,
    image_shape=tuple(image_shape),
    activation=activation,
    width=width,
    rngs=rngs,
    **options,
  )


def parameter_count(model: nnx.Module) -> int:
  """The number of scalars in the model's `nnx.Param`s (not batch stats)."""
  parameters = nnx.state(model, nnx.Param)
  return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(parameters))


__all__ = [
  "MLP",
  "NAMES",
  "VGG16",
  "ConvNeXt",
  "ResNet18",
  "SwinTransformer",
  "create",
  "parameter_count",
]
