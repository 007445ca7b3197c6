"""ResNet-18 for small images (the common CIFAR variant).

A 3x3 stem convolution with 64 channels and no max-pool, then four stages
of two basic blocks with 64, 128, 256 and 512 channels and strides 1, 2,
2, 2, global average pooling and a linear classifier. A block's shortcut is
the identity, or a 1x1 convolution with batch norm where the block changes
the shape. Convolutions have no bias (batch norm follows each one).

It has 17 nonlinearities: one after the stem and two in each of the eight
blocks (after the first convolution, and after the residual sum).

Parameter count at width 1 for 10 classes: 11,173,962, that of the widely
used kuangliu/pytorch-cifar ResNet-18.
"""

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from sugar_jax import nn
from sugar_jax.models import _width

STAGE_CHANNELS = (64, 128, 256, 512)
STAGE_STRIDES = (1, 2, 2, 2)
BLOCKS_PER_STAGE = 2


def _conv(
  in_channels: int,
  out_channels: int,
  kernel_size: int,
  stride: int,
  rngs: nnx.Rngs,
) -> nnx.Conv:
  return nnx.Conv(
    in_channels,
    out_channels,
    (kernel_size, kernel_size),
    strides=(stride, stride),
    padding="SAME",
    use_bias=False,
    kernel_init=nnx.initializers.he_normal(),
    rngs=rngs,
  )


def _batch_norm(channels: int, rngs: nnx.Rngs) -> nnx.BatchNorm:
  # Momentum 0.9 here is PyTorch's 0.1: the running averages of the
  # reference recipes.
  return nnx.BatchNorm(channels, momentum=0.9, epsilon=1e-5, rngs=rngs)


class BasicBlock(nnx.Module):
  """Two 3x3 convolutions with batch norm and a residual connection."""

  def __init__(
    self,
    in_channels: int,
    out_channels: int,
    stride: int,
    *,
    activation: str | Callable[[jax.Array], jax.Array],
    rngs: nnx.Rngs,
  ):
    self.conv1 = _conv(in_channels, out_channels, 3, stride, rngs)
    self.norm1 = _batch_norm(out_channels, rngs)
    self.activation1 = nn.Activation(activation)
    self.conv2 = _conv(out_channels, out_channels, 3, 1, rngs)
    self.norm2 = _batch_norm(out_channels, rngs)
    if stride != 1 or in_channels != out_channels:
      self.shortcut_conv = _conv(in_channels, out_channels, 1, stride, rngs)
      self.shortcut_norm = _batch_norm(out_channels, rngs)
    else:
      self.shortcut_conv = None
      self.shortcut_norm = None
    self.activation2 = nn.Activation(activation)

  def __call__(self, x: jax.Array) -> jax.Array:
    y = self.activation1(self.norm1(self.conv1(x)))
    y = self.norm2(self.conv2(y))

    shortcut = x
    if self.shortcut_conv is not None:
      shortcut = self.shortcut_norm(self.shortcut_conv(x))
    return self.activation2(y + shortcut)


class ResNet18(nnx.Module):
  """ResNet-18 with a 3x3 stem and no max-pool, for NHWC images."""

  def __init__(
    self,
    num_classes: int,
    *,
    image_shape: Sequence[int] = (32, 32, 3),
    activation: str | Callable[[jax.Array], jax.Array] = "relu",
    width: float = 1.0,
    rngs: nnx.Rngs,
  ):
    """Builds the model.

    Args:
      num_classes: number of logits.
      image_shape: (height, width, channels) of an input image; only the
        channels matter to the layers.
      activation: the nonlinearity everywhere, a name known to
        `sugar_jax.activations.resolve` or a callable.
      width: multiplies every channel count.
      rngs: the random streams for parameter initialization.
    """
    _width.check_width(width)
    channels = [_width.scale(c, width) for c in STAGE_CHANNELS]

    self.stem_conv = _conv(image_shape[-1], channels[0], 3, 1, rngs)
    self.stem_norm = _batch_norm(channels[0], rngs)
    self.stem_activation = nn.Activation(activation)

    blocks = []
    in_channels = channels[0]
    for out_channels, stride in zip(channels, STAGE_STRIDES, strict=True):
      for index in range(BLOCKS_PER_STAGE):
        blocks.append(
          BasicBlock(
            in_channels,
            out_channels,
            stride if index == 0 else 1,
            activation=activation,
            rngs=rngs,
          )
        )
        in_channels = out_channels
    self.blocks = nnx.List(blocks)
    self.classifier = nnx.Linear(in_channels, num_classes, rngs=rngs)

  def __call__(self, images: jax.Array) -> jax.Array:
    """Maps images (B, H, W, C) to logits (B, num_classes)."""
    x = self.stem_activation(self.stem_norm(self.stem_conv(images)))
    for block in self.blocks:
      x = block(x)

    features = jnp.mean(x, axis=(1, 2))
    return self.classifier(features)
