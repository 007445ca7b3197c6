r"""What SUGAR costs over ReLU, in time and compiled memory.

Measures, alternating the variants round by round in one process so that
they share the machine's state:

1. forward + backward of each activation on a large array;
2. a full train step (forward, backward, SGD update) of ResNet-18 on
   CIFAR-shaped batches, and XLA's compiled memory for that step
   (``memory_analysis()`` of the compiled function).

Prints each variant's median time, its ratio to ReLU, and the memory
ratios, with the targets: train-step time SUGAR / ReLU <= 1.05, compiled
memory of exact SUGAR <= 1.10 x ReLU, and of SUGAR with a bfloat16
residual <= 1.05 x ReLU. Also prints the gradient error of the bfloat16
residual against the exact one.

  python benchmarks/activation.py [--batch 32] [--width 1.0] [--rounds 5]
"""

import argparse
import functools
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from sugar_jax import activations, models, sugar, surrogates


def _time(function, *args):
  tic = time.perf_counter()
  jax.block_until_ready(function(*args))
  return time.perf_counter() - tic


def _alternate(functions, args, rounds):
  """Median seconds per call of each function, timed in alternation."""
  for function in functions.values():  # Compile and warm up.
    jax.block_until_ready(function(*args))
  times = {name: [] for name in functions}
  for _ in range(rounds):
    for name, function in functions.items():
      times[name].append(_time(function, *args))
  return {name: statistics.median(t) for name, t in times.items()}


def elementwise(size, rounds):
  """Forward + backward of each activation on an array of ``size`` floats."""
  x = jax.random.normal(jax.random.key(0), (size,))

  def value_and_grad(activation):
    return jax.jit(jax.value_and_grad(lambda x: jnp.sum(activation(x) ** 2)))

  variants = {
    "relu": value_and_grad(jax.nn.relu),
    "gelu": value_and_grad(functools.partial(jax.nn.gelu, approximate=False)),
  }
  for name in surrogates.SURROGATES:
    variants[f"sugar_{name}"] = value_and_grad(
      functools.partial(sugar, surrogate=name)
    )
  return _alternate(variants, (x,), rounds)


def _train_step(graphdef, state, images, labels):
  model, optimizer = nnx.merge(graphdef, state)

  def loss_fn(model):
    logits = model(images)
    return optax.softmax_cross_entropy_with_integer_labels(
      logits, labels
    ).mean()

  loss, grads = nnx.value_and_grad(loss_fn)(model)
  optimizer.update(model, grads)
  return nnx.state((model, optimizer)), loss


def train_steps(batch, width, rounds):
  """ResNet-18 train-step time and compiled memory per activation."""
  activation_variants = {
    "relu": "relu",
    "gelu": "gelu",
    "sugar_bsilu": "sugar_bsilu",
    "sugar_nelu": "sugar_nelu",
    "sugar_bsilu_bf16_residual": activations.resolve(
      "sugar_bsilu", residual_dtype=jnp.bfloat16
    ),
  }
  images = jax.random.normal(jax.random.key(1), (batch, 32, 32, 3))
  labels = jax.random.randint(jax.random.key(2), (batch,), 0, 10)
  steps, states, memory = {}, {}, {}
  for name, activation in activation_variants.items():
    model = models.create(
      "resnet18",
      num_classes=10,
      activation=activation,
      width=width,
      rngs=nnx.Rngs(0),
    )
    optimizer = nnx.Optimizer(model, optax.sgd(1e-3, 0.9), wrt=nnx.Param)
    graphdef, state = nnx.split((model, optimizer))
    step = jax.jit(functools.partial(_train_step, graphdef), donate_argnums=0)
    compiled = step.lower(state, images, labels).compile()
    analysis = compiled.memory_analysis()
    memory[name] = (
      analysis.temp_size_in_bytes
      + analysis.argument_size_in_bytes
      + analysis.output_size_in_bytes
      - analysis.alias_size_in_bytes
    )
    steps[name], states[name] = compiled, state

  def run(name):
    def step():
      states[name], loss = steps[name](states[name], images, labels)
      return loss

    return step

  times = _alternate({name: run(name) for name in steps}, (), rounds)
  return times, memory


def residual_error():
  """Gradient error of a bfloat16 residual, relative to the exact one."""
  x = jax.random.normal(jax.random.key(3), (1 << 20,)) * 3

  def grad(**options):
    return jax.grad(lambda x: jnp.sum(sugar(x, "bsilu", **options)))(x)

  exact, rounded = grad(), grad(residual_dtype=jnp.bfloat16)
  error = jnp.abs(rounded - exact)
  return float(jnp.max(error)), float(jnp.mean(error))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--size", type=int, default=1 << 24)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--width", type=float, default=1.0)
  parser.add_argument("--rounds", type=int, default=5)
  args = parser.parse_args()
  print(
    f"machine: {platform.processor() or platform.machine()}, "
    f"{jax.device_count()} x {jax.devices()[0].device_kind}, "
    f"jax {jax.__version__}"
  )

  print(f"\nforward + backward on {args.size:,} float32 values")
  times = elementwise(args.size, args.rounds)
  for name, seconds in times.items():
    print(
      f"  {name:24s} {seconds * 1e3:8.2f} ms   "
      f"x{seconds / times['relu']:.2f} relu"
    )

  print(
    f"\nResNet-18 (width {args.width}) train step, batch {args.batch}, 32x32x3"
  )
  times, memory = train_steps(args.batch, args.width, args.rounds)
  for name, seconds in times.items():
    print(
      f"  {name:26s} {seconds * 1e3:8.1f} ms  x{seconds / times['relu']:.3f}"
      f"   memory {memory[name] / 2**20:8.1f} MiB  "
      f"x{memory[name] / memory['relu']:.3f}"
    )
  time_ratio = times["sugar_bsilu"] / times["relu"]
  exact = memory["sugar_bsilu"] / memory["relu"]
  saving = memory["sugar_bsilu_bf16_residual"] / memory["relu"]
  print(
    f"\ntargets: time x{time_ratio:.3f} (<= 1.05: "
    f"{'met' if time_ratio <= 1.05 else 'missed'}), exact memory "
    f"x{exact:.3f} (<= 1.10: {'met' if exact <= 1.10 else 'missed'}), "
    f"bf16-residual memory x{saving:.3f} (<= 1.05: "
    f"{'met' if saving <= 1.05 else 'missed'})"
  )
  worst, mean = residual_error()
  print(
    f"bf16 residual gradient error (B-SiLU, x ~ N(0, 9)): max {worst:.2e}, "
    f"mean {mean:.2e}"
  )


if __name__ == "__main__":
  main()
