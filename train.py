r"""Trains a model with SUGAR or any other activation.

  python train.py --config configs/default.py --workdir runs/default \
    [--config.KEY=VALUE ...]

With several activations separated by commas (``--config.activation=
relu,sugar_bsilu``) it trains one run per activation in WORKDIR/ACTIVATION
and prints a comparison. Running the same command again resumes.

For several processes (GPU or TPU hosts), pass --distributed: JAX's own
runtime then finds the coordinator (on TPU pods and SLURM clusters), or
takes --coordinator_address, --num_processes and --process_id.
"""

import logging
import pathlib
import sys

from absl import app, flags

from sugar_jax import cli

_WORKDIR = flags.DEFINE_string(
  "workdir", "runs/default", "Where outputs and checkpoints go."
)
_DISTRIBUTED = flags.DEFINE_bool(
  "distributed", False, "Call jax.distributed.initialize before starting."
)
_COORDINATOR = flags.DEFINE_string(
  "coordinator_address", None, "host:port of process 0 (with --distributed)."
)
_NUM_PROCESSES = flags.DEFINE_integer(
  "num_processes", None, "Number of processes (with --distributed)."
)
_PROCESS_ID = flags.DEFINE_integer(
  "process_id", None, "This process's index (with --distributed)."
)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  cli.setup_logging()

  import jax

  cli.enable_compilation_cache()
  if _DISTRIBUTED.value:
    jax.distributed.initialize(
      coordinator_address=_COORDINATOR.value,
      num_processes=_NUM_PROCESSES.value,
      process_id=_PROCESS_ID.value,
    )
  from sugar_jax import experiment

  config = cli.loaded_config()
  try:
    summaries = experiment.train(config, pathlib.Path(_WORKDIR.value))
  except experiment.USER_ERRORS as error:
    logging.error("%s", error)
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)
  if jax.process_index() == 0:
    print(experiment.format_table(summaries))


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
