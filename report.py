r"""Writes the paper's results table and figures for finished runs.

  python report.py --runs runs/paper_vgg16_cifar10 [--runs runs/other] \
    --out docs/paper_vgg16_cifar10

Every directory below --runs that holds a config.json is a run (as
written by train.py or sweep.py). Finished runs are grouped by model,
dataset and activation (with its alpha), seeds pooled, and --out gets
results.md, surrogates.png, and per model and dataset curves_*.png,
dead_sparsity_*.png, layers_*.png and activation_counts_*.png.
"""

import sys

from absl import app, flags

from sugar_jax import cli, report

_RUNS = flags.DEFINE_multi_string(
  "runs", None, "A directory searched for runs; repeat for several.",
  required=True,
)  # fmt: skip
_OUT = flags.DEFINE_string("out", "docs", "Where the report goes.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  cli.setup_logging()
  try:
    written = report.write_report(_RUNS.value, _OUT.value)
  except ValueError as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)
  print("\n".join(str(path) for path in written))


if __name__ == "__main__":
  app.run(main, flags_parser=lambda argv: cli.parse_flags(argv, config=False))
