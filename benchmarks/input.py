r"""Input pipeline against train step: is the step ever waiting for data?

Measures, on the prepared CIFAR-10 (JPEG) in ../shared/data/tfds:

* the host side of the input pipeline: producing each batch of uint8
  images and labels in the data order of an epoch, per batch;
* the device side: normalising and augmenting a batch (random crop with
  padding, flip), jit-compiled, per batch;
* the train step of ResNet-18 and VGG-16 (images/s).

Prints each, and the input work as a fraction of the step's time
(target: under 5%).

  python benchmarks/input.py [--width 1.0] [--batch 128] [--rounds 5]
"""

import argparse
import pathlib
import time

import common
import jax
import jax.numpy as jnp

from sugar_jax import data

DATA_DIR = pathlib.Path(__file__).resolve().parents[2] / "shared/data/tfds"


def host_batches_seconds(split, batch, count):
  """Seconds per batch to cut ``count`` batches of an epoch's order."""
  iterator = data.batches(split, batch, seed=0, epoch=0)
  tic = time.perf_counter()
  for _ in range(count):
    next(iterator)
  return (time.perf_counter() - tic) / count


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--data_dir", default=str(DATA_DIR))
  parser.add_argument("--width", type=float, default=1.0)
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--rounds", type=int, default=5)
  args = parser.parse_args()
  print(common.describe_machine())

  dataset = data.load(
    "cifar10_jpeg", data_dir=args.data_dir, cache_dir="/tmp/sugar_cache"
  )
  host = host_batches_seconds(dataset.train, args.batch, 50)
  images, _ = next(data.batches(dataset.train, args.batch, 0, 0))
  mean, std = jnp.asarray(dataset.mean), jnp.asarray(dataset.std)

  @jax.jit
  def prepare(images, key):
    return data.augment(key, data.normalize(images, mean, std))

  key = jax.random.key(0)
  steps = {
    "input (device: normalise + augment)": lambda: prepare(images, key),
    "input (host: to device)": lambda: jax.device_put(images),
  }
  for model in ("resnet18", "vgg16"):
    steps[model] = common.TrainStep(model, "relu", args.batch, args.width)
  times = common.alternate(steps, args.rounds)

  print(f"\nbatch {args.batch}, width {args.width}")
  print(f"  input (host: batch in epoch order)  {host * 1e3:8.2f} ms")
  for name, seconds in times.items():
    print(f"  {name:36s} {seconds * 1e3:8.2f} ms")
  input_seconds = (
    host
    + times["input (device: normalise + augment)"]
    + times["input (host: to device)"]
  )
  for model in ("resnet18", "vgg16"):
    step = times[model]
    share = input_seconds / step
    print(
      f"{model}: {args.batch / step:8.1f} images/s; input work "
      f"{100 * share:.1f}% of the step ({'met' if share < 0.05 else 'missed'}"
      " target < 5%)"
    )


if __name__ == "__main__":
  main()
