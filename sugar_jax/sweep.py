"""Sweeps: one training run per point of a grid, each in its own directory.

A grid maps config keys to the values to try, e.g. ``{"model": ["vgg16"],
"activation": ["relu", "sugar_bsilu"], "alpha": [None], "seed": [0, 1]}``;
every combination is a run. A config file offers its grid through a
module-level ``get_grid()``; without one, the grid is the config's own
model, activations (comma-separated), alpha and seed.

``alpha`` applies only to activations whose surrogate has an alpha
(B-SiLU, NeLU, LeakyReLU, ELU, and their SUGAR forms); the others run once
per combination of the remaining axes, with alpha left at None.

Each run writes to a directory that is a function of its grid point
alone (:func:`run_directory`)::

  WORKDIR/<model>/<activation>[_alpha<alpha>]/[<key><value>/...]seed<seed>

where ``<key><value>`` names any further axis (``width0.25``). Runs go one
after another in this process, seed by seed, so that a sweep cut short
still compares every activation. A run with ``summary.json`` is done and
skipped; an interrupted one resumes from its checkpoints; a failed one
leaves ``failed.json`` with the error and the sweep goes on.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import json
import logging
import pathlib
import shlex
import time
import traceback
from typing import Any

import jax
import ml_collections

from sugar_jax import activations, experiment, training

AXES = ("model", "activation", "alpha", "seed")
"""The axes every grid has; others are optional."""

FAILED = "failed.json"
"""Written in a run's directory when the run raised an error."""

Point = dict[str, Any]


def load_grid(
  config_file: str, config: ml_collections.ConfigDict
) -> dict[str, list]:
  """The grid a config file offers, with every axis of :data:`AXES`.

  Args:
    config_file: the config file's path, optionally followed by ``:ARG``
      (the argument of its ``get_config``, ignored here).
    config: the config it produced, for the axes ``get_grid`` leaves out.

  Returns:
    The grid: config keys mapped to lists of values.
  """
  path = config_file.split(":", 1)[0]
  spec = importlib.util.spec_from_file_location("sweep_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  grid = dict(module.get_grid()) if hasattr(module, "get_grid") else {}
  defaults = {
    "model": [config.model],
    "activation": experiment.split_activations(config),
    "alpha": [config.alpha],
    "seed": [config.seed],
  }
  return {**defaults, **{key: list(values) for key, values in grid.items()}}


def parse_axis(text: str, config: ml_collections.ConfigDict) -> tuple:
  """Parses ``KEY=V1,V2,...`` into the key and values of the key's type.

  ``None`` (or ``none``) is accepted for keys whose config value may be
  None, such as ``alpha``.

  Raises:
    training.ConfigError: no ``=``, an unknown key, no values, or a value
      that is not of the key's type.
  """
  key, equals, values = text.partition("=")
  key = key.strip()
  if not equals or not values.strip():
    raise training.ConfigError(f"--grid {text!r} is not KEY=VALUE[,VALUE...]")
  kind, nullable = _key_type(config, key)
  parsed = []
  for value in values.split(","):
    value = value.strip()
    if nullable and value.lower() == "none":
      parsed.append(None)
      continue
    try:
      parsed.append(_parse_value(value, kind))
    except ValueError:
      raise training.ConfigError(
        f"--grid {key}: {value!r} is not of type {kind.__name__}"
      ) from None
  return key, parsed


def _key_type(config, key):
  """The Python type of a (dotted) config key, and whether it may be None."""
  *parents, leaf = key.split(".")
  node = config
  for parent in parents:
    node = node.get(parent)
    if not isinstance(node, ml_collections.ConfigDict):
      break
  if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
    raise training.ConfigError(
      f"--grid {key}: the config has no such key; see the config file for "
      "the keys it defines"
    )
  kind = node.get_type(leaf)
  if kind is ml_collections.ConfigDict:
    raise training.ConfigError(
      f"--grid {key}: a sweep axis must be a single value, not a group"
    )
  return kind, node[leaf] is None


def _parse_value(text: str, kind: type) -> Any:
  if kind is bool:
    if text.lower() in ("true", "1"):
      return True
    if text.lower() in ("false", "0"):
      return False
    raise ValueError(text)
  return kind(text)


def expand(grid: dict[str, list]) -> list[Point]:
  """Every run of a grid, seed-major, without repeats.

  Seeds vary slowest, so that the runs of seed 0 (every model and
  activation) come first. An activation without alpha gets alpha None
  whatever the alpha axis holds.
  """
  missing = [axis for axis in AXES if not grid.get(axis)]
  if missing:
    raise training.ConfigError(
      f"the grid has no values for {', '.join(missing)}"
    )
  extra = sorted(set(grid) - set(AXES))
  order = ["seed", "model", "activation", "alpha", *extra]
  points = []
  for values in itertools.product(*(grid[key] for key in order)):
    point = dict(zip(order, values, strict=True))
    if not activations.takes_alpha(point["activation"]):
      point["alpha"] = None
    if point not in points:
      points.append(point)
  return points


def run_directory(point: Point) -> pathlib.PurePosixPath:
  """The directory of a run, relative to the sweep's work directory.

  ``<model>/<activation>[_alpha<alpha>]/[<key><value>/...]seed<seed>``,
  further axes in sorted order and named by their last dotted part.
  """
  activation = point["activation"]
  if point["alpha"] is not None:
    activation += f"_alpha{_text(point['alpha'])}"
  extra = sorted(set(point) - set(AXES))
  parts = [
    str(point["model"]),
    activation,
    *(f"{key.rsplit('.', 1)[-1]}{_text(point[key])}" for key in extra),
    f"seed{point['seed']}",
  ]
  return pathlib.PurePosixPath(*parts)


def _text(value: Any) -> str:
  # repr keeps every digit of a float (0.01, not 1e-2 or 0.0100).
  return repr(value) if isinstance(value, float) else str(value)


def point_config(
  config: ml_collections.ConfigDict, point: Point
) -> ml_collections.ConfigDict:
  """A copy of ``config`` with the point's values set."""
  single = ml_collections.ConfigDict(config.to_dict())
  single.update_from_flattened_dict(point)
  return single


def train_command(
  config_file: str,
  workdir: str | pathlib.Path,
  point: Point,
  config: ml_collections.ConfigDict,
  overrides: dict[str, Any] | None = None,
) -> str:
  """The shell-quoted ``python train.py`` line that trains one run.

  Args:
    config_file: the config file, as given to the sweep.
    workdir: the sweep's work directory.
    point: the run's grid point.
    config: the config the sweep loaded (for alpha's default).
    overrides: ``--config.KEY=VALUE`` overrides given to the sweep, passed
      on to every run.

  Raises:
    training.ConfigError: an alpha of None where the config's is not None
      (a None cannot be passed on the command line).
  """
  values = dict(overrides or {})
  extra = sorted(set(point) - set(AXES))
  for key in ("model", "activation", "alpha", *extra, "seed"):
    value = point[key]
    if value is None:
      if config[key] is not None:
        raise training.ConfigError(
          f"{key} None cannot be passed on the command line, and the "
          f"config sets {config[key]!r}; set {key} to None in the config"
        )
      values.pop(key, None)
      continue
    values[key] = value
  args = [
    "python", "train.py", "--config", config_file,
    "--workdir", str(pathlib.Path(workdir) / run_directory(point)),
  ]  # fmt: skip
  args += [f"--config.{key}={_text(value)}" for key, value in values.items()]
  return shlex.join(args)


@dataclasses.dataclass
class Result:
  """What a sweep did, as run directories."""

  trained: list[pathlib.Path] = dataclasses.field(default_factory=list)
  skipped: list[pathlib.Path] = dataclasses.field(default_factory=list)
  failed: list[pathlib.Path] = dataclasses.field(default_factory=list)


def run(
  config: ml_collections.ConfigDict,
  points: list[Point],
  workdir: str | pathlib.Path,
  retry_failed: bool = False,
) -> Result:
  """Trains every point's run that is not finished, one after another.

  Every run's config is validated before the first starts. A run that
  raises is logged, recorded in ``failed.json`` in its directory, and
  counted as failed; the sweep goes on. Later sweeps skip it (it would
  most likely fail the same way) unless ``retry_failed``.

  Args:
    config: the base config; each point's values replace its own.
    points: the runs, e.g. from :func:`expand`.
    workdir: the sweep's work directory.
    retry_failed: run again the runs that failed before.

  Returns:
    Which runs were trained, skipped (finished earlier) and failed (now
    or before).

  Raises:
    training.ConfigError: a point's config is invalid.
  """
  workdir = pathlib.Path(workdir)
  configs = [point_config(config, point) for point in points]
  for single in configs:
    training.validate(single)

  result = Result()
  total = len(points)
  pairs = zip(points, configs, strict=True)
  for index, (point, single) in enumerate(pairs, 1):
    directory = workdir / run_directory(point)
    failed = directory / FAILED
    if (directory / "summary.json").exists():
      logging.info("Run %d of %d: %s is finished; skipping", index, total,
                   directory)  # fmt: skip
      result.skipped.append(directory)
      continue
    if failed.exists() and not retry_failed:
      logging.warning(
        "Run %d of %d: %s failed before (see %s); skipping it, pass "
        "--retry_failed to run it again", index, total, directory, failed,
      )  # fmt: skip
      result.failed.append(directory)
      continue
    failed.unlink(missing_ok=True)

    resuming = any((directory / "checkpoints").glob("*"))
    logging.info("Run %d of %d: %s%s", index, total, directory,
                 " (resuming)" if resuming else "")  # fmt: skip
    try:
      training.Trainer(single, directory).run()
    except Exception as error:  # Recorded; the sweep goes on.
      logging.exception("Run %d of %d failed: %s", index, total, directory)
      _record_failure(directory, point, error)
      result.failed.append(directory)
      continue
    result.trained.append(directory)

  logging.info(
    "Sweep done: %d trained, %d finished earlier, %d failed",
    len(result.trained), len(result.skipped), len(result.failed),
  )  # fmt: skip
  return result


def _record_failure(directory, point, error):
  if jax.process_index() != 0:
    return
  directory.mkdir(parents=True, exist_ok=True)
  record = {
    "error": type(error).__name__,
    "message": str(error),
    "point": point,
    "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    "traceback": traceback.format_exception(error),
  }
  (directory / FAILED).write_text(json.dumps(record, indent=2) + "\n")
