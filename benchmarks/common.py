"""Timing helpers shared by the benchmarks."""

import functools
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from sugar_jax import models, training


def describe_machine() -> str:
  """One line naming the processor, the devices and JAX's version."""
  return (
    f"machine: {platform.processor() or platform.machine()}, "
    f"{jax.device_count()} x {jax.devices()[0].device_kind}, "
    f"jax {jax.__version__}"
  )


def alternate(functions, rounds):
  """Median seconds per call of each function, timed round by round.

  Each round calls every function once, so slow drifts of the machine
  (other processes, clock changes) touch all of them alike.
  """
  for function in functions.values():  # Compile and warm up.
    jax.block_until_ready(function())
  times = {name: [] for name in functions}
  for _ in range(rounds):
    for name, function in functions.items():
      tic = time.perf_counter()
      jax.block_until_ready(function())
      times[name].append(time.perf_counter() - tic)
  return {name: statistics.median(t) for name, t in times.items()}


class TrainStep:
  """The trainer's compiled SGD train step of a model, with its own state.

  Args:
    model_name: a name from ``sugar_jax.models.NAMES``.
    activation: the model's activation.
    batch: the batch size; inputs are CIFAR-shaped (32x32x3, 10 classes).
    width: the model's width multiplier.
  """

  def __init__(self, model_name, activation, batch, width):
    model = models.create(
      model_name,
      num_classes=10,
      activation=activation,
      width=width,
      rngs=nnx.Rngs(0),
    )
    optimizer = nnx.Optimizer(model, optax.sgd(1e-3, 0.9), wrt=nnx.Param)
    graphdef, self.state = nnx.split((model, optimizer))
    self.images = jax.random.randint(
      jax.random.key(1), (batch, 32, 32, 3), 0, 256
    ).astype(jnp.uint8)
    self.labels = jax.random.randint(jax.random.key(2), (batch,), 0, 10)
    self.args = (
      self.images,
      self.labels,
      jax.random.key(3),
      jnp.full((3,), 0.5),
      jnp.full((3,), 0.25),
    )
    step = jax.jit(
      functools.partial(training.train_step, graphdef, augment=False),
      donate_argnums=0,
    )
    self.compiled = step.lower(self.state, *self.args).compile()

  def memory_bytes(self) -> int:
    """XLA's compiled memory: temporaries plus non-aliased buffers."""
    analysis = self.compiled.memory_analysis()
    return (
      analysis.temp_size_in_bytes
      + analysis.argument_size_in_bytes
      + analysis.output_size_in_bytes
      - analysis.alias_size_in_bytes
    )

  def __call__(self):
    self.state, loss, _ = self.compiled(self.state, *self.args)
    return loss
