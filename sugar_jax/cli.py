"""What the command-line scripts share: the config flag and logging.

``train.py``, ``sweep.py`` and ``report.py`` are thin: they parse flags
with :func:`parse_flags`, call :func:`setup_logging`, and hand over to a
module of this package.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from absl import flags

DEFAULT_CONFIG = "configs/default.py"

_COMPILATION_CACHE = flags.DEFINE_string(
  "compilation_cache",
  "~/.cache/sugar_jax/xla",
  "Directory of JAX's persistent compilation cache, so that runs of the "
  "same model skip recompiling; empty to disable.",
)


def parse_flags(argv: Sequence[str], config: bool = True) -> list[str]:
  """Parses flags; with ``config``, also ``--config`` and its overrides.

  An override of a key the config lacks, or a malformed flag, ends the
  program with a one-line message rather than a traceback.

  Args:
    argv: the command line, program name first.
    config: whether to define ``--config`` (an ml_collections config file,
      ``configs/default.py`` by default) and its ``--config.KEY=VALUE``
      overrides.

  Returns:
    The arguments left after the flags, program name first.
  """
  try:
    if config:
      from ml_collections import config_flags

      # Defined here, not at import: ml_collections applies the
      # --config.KEY overrides as soon as the flag exists, and an unknown
      # key fails then.
      config_flags.DEFINE_config_file(
        "config", DEFAULT_CONFIG, "The training configuration file."
      )
    return flags.FLAGS(argv)
  except flags.Error as error:
    sys.exit(f"error: {error}\nPass --helpfull to see the flags.")
  except (AttributeError, KeyError) as error:
    # ml_collections reports an unknown --config.KEY as a bare lookup error.
    sys.exit(
      f"error: the config has no key {error}; see the config file for "
      "the keys it defines"
    )


def loaded_config():
  """The parsed ``--config``, or exit with a message if it failed to load."""
  try:
    config = flags.FLAGS.config
    config.to_dict()  # A config file that failed to load raises here.
  except OSError as error:
    sys.exit(f"error: {error}")
  return config


def setup_logging() -> None:
  """Logs at INFO, but keeps only warnings of absl (Orbax's chatter)."""
  logging.getLogger().setLevel(logging.INFO)
  # Orbax logs every save step through absl at INFO.
  logging.getLogger("absl").setLevel(logging.WARNING)


def enable_compilation_cache() -> None:
  """Points JAX's persistent compilation cache at --compilation_cache.

  Building a model and compiling its steps takes tens of seconds on a CPU;
  with the cache, every run after the first of the same shapes skips it.
  """
  if _COMPILATION_CACHE.value:
    import jax

    cache = os.path.expanduser(_COMPILATION_CACHE.value)
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
