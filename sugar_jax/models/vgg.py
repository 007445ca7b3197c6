"""VGG-16 for small images (the common CIFAR variant).

Thirteen 3x3 convolutions in five blocks, each block closed by a 2x2
max-pool, then one linear classifier on the pooled 512 features. This is
the VGG-16 most CIFAR code bases train (for instance the widely used
kuangliu/pytorch-cifar one): no 4096-wide fully connected layers, so the
13 convolutions are its only nonlinearities.

Parameter count at width 1 for 10 classes: 14,728,266 with batch norm
(convolutions keep their biases, as in that reference) and 14,719,818
without.
"""

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from sugar_jax import nn
from sugar_jax.models import _width

# Output channels of the 13 convolutions at width 1; "M" is a 2x2 max-pool.
LAYOUT = (
  (64, 64, "M")
  + (128, 128, "M")
  + (256, 256, 256, "M")
  + (512, 512, 512, "M")
  + (512, 512, 512, "M")
)


class ConvLayer(nnx.Module):
  """A 3x3 convolution, optional batch norm, then the activation."""

  def __init__(
    self,
    in_channels: int,
    out_channels: int,
    *,
    activation: str | Callable[[jax.Array], jax.Array],
    batch_norm: bool,
    rngs: nnx.Rngs,
  ):
    self.conv = nnx.Conv(
      in_channels,
      out_channels,
      (3, 3),
      padding="SAME",
      kernel_init=nnx.initializers.he_normal(),
      rngs=rngs,
    )
    # Momentum 0.9 here is PyTorch's 0.1: the running averages of the
    # reference recipes.
    self.norm = (
      nnx.BatchNorm(out_channels, momentum=0.9, epsilon=1e-5, rngs=rngs)
      if batch_norm
      else None
    )
    self.activation = nn.Activation(activation)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = self.conv(x)
    if self.norm is not None:
      x = self.norm(x)
    return self.activation(x)


class VGG16(nnx.Module):
  """VGG-16 with a single linear classifier, for NHWC images.

  The input may be any size divisible by 32; the last feature map is
  averaged over space (a no-op at 32x32, where it is 1x1) before the
  classifier.
  """

  def __init__(
    self,
    num_classes: int,
    *,
    image_shape: Sequence[int] = (32, 32, 3),
    activation: str | Callable[[jax.Array], jax.Array] = "relu",
    width: float = 1.0,
    batch_norm: bool = True,
    rngs: nnx.Rngs,
  ):
    """Builds the model.

    Args:
      num_classes: number of logits.
      image_shape: (height, width, channels) of an input image; only the
        channels matter to the layers.
      activation: the nonlinearity of every layer, a name known to
        `sugar_jax.activations.resolve` or a callable.
      width: multiplies every channel count.
      batch_norm: whether each convolution is followed by batch norm.
      rngs: the random streams for parameter initialization.
    """
    _width.check_width(width)
    in_channels = image_shape[-1]
    layers = []
    pool_after = []
    for entry in LAYOUT:
      if entry == "M":
        pool_after.append(len(layers) - 1)
        continue
      out_channels = _width.scale(entry, width)
      layers.append(
        ConvLayer(
          in_channels,
          out_channels,
          activation=activation,
          batch_norm=batch_norm,
          rngs=rngs,
        )
      )
      in_channels = out_channels
    self.layers = nnx.List(layers)
    self.pool_after = tuple(pool_after)
    self.classifier = nnx.Linear(in_channels, num_classes, rngs=rngs)

  def __call__(self, images: jax.Array) -> jax.Array:
    """Maps images (B, H, W, C) to logits (B, num_classes)."""
    x = images
    for index, layer in enumerate(self.layers):
      x = layer(x)
      if index in self.pool_after:
        x = nnx.max_pool(x, (2, 2), strides=(2, 2))

    features = jnp.mean(x, axis=(1, 2))
    return self.classifier(features)
