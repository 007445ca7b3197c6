"""A multilayer perceptron on flattened images.

Parameter count at width 1 for 10 classes and 32x32x3 images, with the
default hidden sizes (512, 512): 1,841,162.
"""

import math
from collections.abc import Callable, Sequence

import jax
from flax import nnx

from sugar_jax import nn
from sugar_jax.models import _width


class HiddenLayer(nnx.Module):
  """A linear layer followed by the activation."""

  def __init__(
    self,
    in_features: int,
    out_features: int,
    *,
    activation: str | Callable[[jax.Array], jax.Array],
    rngs: nnx.Rngs,
  ):
    self.linear = nnx.Linear(
      in_features,
      out_features,
      kernel_init=nnx.initializers.he_normal(),
      rngs=rngs,
    )
    self.activation = nn.Activation(activation)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.activation(self.linear(x))


class MLP(nnx.Module):
  """Flatten, hidden layers each followed by the activation, linear output."""

  def __init__(
    self,
    num_classes: int,
    *,
    image_shape: Sequence[int] = (32, 32, 3),
    activation: str | Callable[[jax.Array], jax.Array] = "relu",
    width: float = 1.0,
    hidden_sizes: Sequence[int] = (512, 512),
    rngs: nnx.Rngs,
  ):
    """Builds the model.

    Args:
      num_classes: number of logits.
      image_shape: (height, width, channels) of an input image.
      activation: the nonlinearity of every hidden layer, a name known to
        `sugar_jax.activations.resolve` or a callable.
      width: multiplies every hidden size.
      hidden_sizes: the hidden layers' sizes at width 1.
      rngs: the random streams for parameter initialization.
    """
    _width.check_width(width)
    in_features = math.prod(image_shape)
    layers = []
    for size in hidden_sizes:
      out_features = _width.scale(size, width)
      layers.append(
        HiddenLayer(in_features, out_features, activation=activation, rngs=rngs)
      )
      in_features = out_features
    self.hidden_layers = nnx.List(layers)
    self.classifier = nnx.Linear(in_features, num_classes, rngs=rngs)

  def __call__(self, images: jax.Array) -> jax.Array:
    """Maps images (B, H, W, C) to logits (B, num_classes)."""
    x = images.reshape(images.shape[0], -1)
    for layer in self.hidden_layers:
      x = layer(x)
    return self.classifier(x)
