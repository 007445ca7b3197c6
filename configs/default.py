"""The default run: ReLU against SUGAR B-SiLU on scikit-learn's digits.

Needs no dataset download: the data ships with scikit-learn. Trains the
same MLP twice, once per activation, prints a comparison table and saves a
figure of the curves.

  python train.py --config configs/default.py --workdir runs/default

Every key can be overridden on the command line, e.g. to train VGG-16 with
SUGAR NeLU on the prepared CIFAR-10:

  python train.py --config configs/default.py --workdir runs/vgg \\
    --config.model=vgg16 --config.activation=sugar_nelu \\
    --config.dataset=cifar10_jpeg --config.data_dir=../shared/data/tfds
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  """The default configuration; see the module docstring."""
  config = ml_collections.ConfigDict()

  # The model: a name from sugar_jax.models.NAMES, its width multiplier and
  # any model-specific options (e.g. batch_norm for vgg16).
  config.model = "mlp"
  config.width = 1.0
  config.model_options = ml_collections.ConfigDict()

  # The activation: a name from sugar_jax.activations.NAMES, or several
  # separated by commas to train one run per activation and compare them.
  config.activation = "relu,sugar_bsilu"
  # The surrogate's hyperparameter (B-SiLU's or NeLU's alpha, LeakyReLU's
  # slope...); None keeps the surrogate's default. Activations without an
  # alpha (relu, gelu, silu...) ignore it.
  config.alpha = ml_collections.config_dict.placeholder(float)
  # SUGAR only: keep ReLU's gradient where x > 0 (the variant of some
  # public implementations) instead of the paper's surrogate everywhere.
  config.negative_only = False

  # The data: a TFDS image-classification dataset (read from data_dir when
  # prepared there), or "digits", scikit-learn's handwritten digits.
  config.dataset = "digits"
  config.data_dir = ml_collections.config_dict.placeholder(str)
  config.train_examples = 0  # Use only the first N; 0 means all.
  config.test_examples = 0  # Evaluate on the first N; 0 means all.
  config.cache_dir = ml_collections.config_dict.placeholder(str)

  # Optimisation.
  config.num_epochs = 30
  config.batch_size = 64
  config.eval_batch_size = 256
  config.optimizer = "sgd"  # sgd, adam or adamw.
  config.learning_rate = 0.01
  config.schedule = "constant"  # constant or cosine.
  config.momentum = 0.9
  config.weight_decay = 0.0
  config.augment = False  # Random crop with 4-pixel padding, random flip.
  config.seed = 0

  # Bookkeeping.
  config.log_every_steps = 50
  config.checkpoint_every_steps = 0  # 0: at the end of each epoch only.
  config.eval_every_epochs = 1
  return config
