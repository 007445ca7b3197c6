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

import common
import jax
import jax.numpy as jnp

from sugar_jax import activations, sugar, surrogates


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
  return common.alternate(
    {name: functools.partial(f, x) for name, f in variants.items()}, rounds
  )


def train_steps(batch, width, rounds):
  """ResNet-18 train-step time and compiled memory per activation."""
  variants = {
    "relu": "relu",
    "gelu": "gelu",
    "sugar_bsilu": "sugar_bsilu",
    "sugar_nelu": "sugar_nelu",
    "sugar_bsilu_bf16_residual": activations.resolve(
      "sugar_bsilu", residual_dtype=jnp.bfloat16
    ),
  }
  steps = {
    name: common.TrainStep("resnet18", activation, batch, width)
    for name, activation in variants.items()
  }
  memory = {name: step.memory_bytes() for name, step in steps.items()}
  return common.alternate(steps, rounds), memory


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
  print(common.describe_machine())

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
