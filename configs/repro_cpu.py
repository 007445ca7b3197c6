r"""The paper's CNN comparison, scaled down to fit a 2-core CPU.

Reproduces, in miniature, the VGG-16 and ResNet-18 comparison of Horuz et
al. (2025), arXiv 2505.22074, on CIFAR-10: ReLU, SUGAR with B-SiLU and
with NeLU, and two smooth activations as plain forward controls (GELU and
B-SiLU). The paper's protocol (configs/paper_vgg16_cifar10.py: SGD at
0.001, batch 128, no augmentation) is kept except where the scale forces a
change; what changes and why:

* width 0.125: every channel count divided by 8 (VGG-16 8 to 64 channels,
  ResNet-18 8 to 64), the same layers and nonlinearities. A step then takes
  about 0.3 s on two cores.
* the first 10,000 training images (of 50,000) and 5 epochs: 390 steps,
  where the paper takes 19,550. Each run takes about 3 minutes.
* momentum 0.9 where the paper configs use none: with 390 steps, plain
  SGD at 0.001 barely leaves its initialisation for any activation, which
  would compare nothing. Momentum 0.9 makes the effective step ten times
  larger. This is a change of protocol, chosen before any result was seen
  and the same for every activation.
* the first 2,000 test images, evaluated after every epoch.
* VGG-16 keeps the model's default batch norm.
* data: the offline JPEG copy of CIFAR-10 in ../shared/data/tfds (the
  paper used the PNG original).
* seeds 0 and 1 rather than the paper's five.

Networks this far from convergence give low accuracies: compare the
activations with each other, not with the paper's numbers. The results
are in docs/REPRODUCTION.md.

  python sweep.py --config configs/repro_cpu.py --workdir runs/repro
  python report.py --runs runs/repro --out docs/repro

Widen the grid with --grid, e.g. all 17 activations of the paper:
``--grid activation=relu,sugar_elu,elu,...``.
"""

from configs import _paper


def get_config():
  """The scaled-down protocol; see the module docstring."""
  config = _paper.cnn_config("vgg16", "cifar10_jpeg", num_epochs=5)
  config.model_options = {}
  config.width = 0.125
  config.train_examples = 10_000
  config.test_examples = 2_000
  config.momentum = 0.9
  config.data_dir = "../shared/data/tfds"
  config.cache_dir = "runs/cache"
  config.eval_batch_size = 400
  config.log_every_steps = 20
  return config


def get_grid() -> dict[str, list]:
  """Both CNNs, five activations, seeds 0 and 1."""
  return {
    "model": ["vgg16", "resnet18"],
    "activation": ["relu", "sugar_bsilu", "sugar_nelu", "gelu", "bsilu"],
    "alpha": [None],
    "seed": [0, 1],
  }
