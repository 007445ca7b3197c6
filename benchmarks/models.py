r"""Train-step time of each model with ReLU, SUGAR and GELU.

For every model at CIFAR shapes (32x32x3, 10 classes), builds one compiled
SGD train step per activation, times them alternating round by round in
one process, and prints the median times and their ratio to ReLU.

  python benchmarks/models.py [--models vgg16,resnet18] [--width 0.25]
    [--batch 32] [--rounds 5]
"""

import argparse

import common

from sugar_jax import models

ACTIVATIONS = ("relu", "sugar_bsilu", "sugar_nelu", "gelu")


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--models", default=",".join(models.NAMES))
  parser.add_argument("--width", type=float, default=0.25)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--rounds", type=int, default=5)
  args = parser.parse_args()
  print(common.describe_machine())
  print(f"train step, batch {args.batch}, width {args.width}, 32x32x3\n")
  print(f"{'model':10s}" + "".join(f"{a:>22s}" for a in ACTIVATIONS))
  for name in args.models.split(","):
    steps = {
      activation: common.TrainStep(name, activation, args.batch, args.width)
      for activation in ACTIVATIONS
    }
    times = common.alternate(steps, args.rounds)
    cells = [
      f"{times[a] * 1e3:9.1f} ms x{times[a] / times['relu']:.3f}"
      for a in ACTIVATIONS
    ]
    print(f"{name:10s}" + "".join(f"{c:>22s}" for c in cells), flush=True)


if __name__ == "__main__":
  main()
