r"""Trains every run of a grid, one work directory per run.

  python sweep.py --config configs/paper_vgg16_cifar10.py \
    --workdir runs/paper_vgg16_cifar10 \
    [--grid activation=relu,sugar_bsilu] [--grid seed=0,1] \
    [--print_commands] [--retry_failed] [--config.KEY=VALUE ...]

The grid is the config file's get_grid() (model, activation, alpha, seed),
each axis replaceable with --grid KEY=V1,V2; --grid also adds axes over
other config keys (--grid width=0.25,0.5). Runs go one after another in
WORKDIR/<model>/<activation>[_alpha<alpha>]/seed<seed>. Running the
command again skips finished runs, resumes an interrupted one and leaves
failed ones (they have a failed.json) unless --retry_failed. It exits
with status 1 if any run failed.

--print_commands prints one train.py command per run instead, to launch
them elsewhere (e.g. as cluster jobs).
"""

import pathlib
import sys

from absl import app, flags

from sugar_jax import cli, experiment, sweep, training

_WORKDIR = flags.DEFINE_string(
  "workdir", None, "The sweep's directory; each run gets one inside.",
  required=True,
)  # fmt: skip
_GRID = flags.DEFINE_multi_string(
  "grid", [], "KEY=V1,V2,...: the values of one axis, replacing the "
  "config's (repeat for several axes).",
)  # fmt: skip
_PRINT_COMMANDS = flags.DEFINE_bool(
  "print_commands", False, "Print a train.py command per run; train none."
)
_RETRY_FAILED = flags.DEFINE_bool(
  "retry_failed", False, "Run again the runs that failed before."
)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  cli.setup_logging()
  cli.enable_compilation_cache()
  config = cli.loaded_config()
  config_file = flags.FLAGS["config"].config_filename
  overrides = flags.FLAGS["config"].override_values
  try:
    grid = sweep.load_grid(config_file, config)
    for text in _GRID.value:
      key, values = sweep.parse_axis(text, config)
      grid[key] = values
    clash = sorted(set(overrides) & set(grid))
    if clash:
      raise training.ConfigError(
        f"--config.{clash[0]} is a grid axis; give its values with --grid "
        f"{clash[0]}=..."
      )
    points = sweep.expand(grid)
    if _PRINT_COMMANDS.value:
      for point in points:
        print(
          sweep.train_command(
            config_file, _WORKDIR.value, point, config, overrides
          )
        )
      return
    result = sweep.run(
      config, points, pathlib.Path(_WORKDIR.value), _RETRY_FAILED.value
    )
  except experiment.USER_ERRORS as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)
  print(
    f"{len(points)} runs in {_WORKDIR.value}: {len(result.trained)} "
    f"trained, {len(result.skipped)} finished earlier, "
    f"{len(result.failed)} failed"
  )
  for directory in result.failed:
    print(f"  failed: {directory / sweep.FAILED}")
  if result.failed:
    sys.exit(1)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
