r"""The paper's CNN comparison, scaled down to fit a 2-core CPU.

Reproduces, in miniature, the VGG-16 and ResNet-18 comparison of Horuz et
al. (2025), arXiv 2505.22074: ReLU, the eight surrogates as forward
activations, and SUGAR with each, on CIFAR-10. The protocol is that of
configs/paper_vgg16_cifar10.py (SGD at 0.001 without momentum, batch 128,
no augmentation; its docstring gives the reasons); what changes is the
scale, so that a sweep finishes in hours on two cores:

* width 0.25: every channel count quartered (VGG-16 16 to 128 channels,
  ResNet-18 16 to 128), the same layers and nonlinearities.
* the first 10,000 training images (of 50,000) and 10 epochs.
* the whole 10,000-image test set, for a test accuracy with a standard
  error of about half a point.
* VGG-16 keeps the model's default batch norm: model_options stays empty
  so that the same config builds ResNet-18 too.
* data: the offline JPEG copy of CIFAR-10 in ../shared/data/tfds (the
  paper used the PNG original; JPEG compression costs a little accuracy
  for every activation alike). Decoded images are cached in runs/cache.
* seeds 0, 1 and 2 rather than the paper's five.

Width, examples and epochs are placeholders until timed on the machine.
With so few steps (790), plain SGD at 0.001 leaves every network far from
converged: expect low accuracies and compare activations with each other,
not with the paper's numbers.

  python sweep.py --config configs/repro_cpu.py --workdir runs/repro_cpu
  python report.py --runs runs/repro_cpu --out docs/repro_cpu

Narrow the grid with --grid, e.g. ``--grid activation=relu,sugar_bsilu
--grid model=vgg16``.
"""

from configs import _paper


def get_config():
  """The scaled-down protocol; see the module docstring."""
  config = _paper.cnn_config("vgg16", "cifar10_jpeg", num_epochs=10)
  config.model_options = {}
  config.width = 0.25
  config.train_examples = 10_000
  config.data_dir = "../shared/data/tfds"
  config.cache_dir = "runs/cache"
  config.log_every_steps = 20
  return config


def get_grid() -> dict[str, list]:
  """Both CNNs, the 17 activations, seeds 0 to 2."""
  grid = _paper.cnn_grid("vgg16", "resnet18")
  grid["seed"] = [0, 1, 2]
  return grid
