r"""ResNet-18 on CIFAR-100: ReLU, the surrogates, and SUGAR.

Reproduces the ResNet-18 / CIFAR-100 comparison of Horuz et al.
(2025), "The Resurrection of the ReLU" (arXiv 2505.22074): ReLU, each of
the eight surrogates as the forward activation, and SUGAR (ReLU forward,
the surrogate's derivative backward) with each, 17 activations, five seeds
each (the grid of get_grid). The paper reports 48.99 % without SUGAR
and 56.51 % with SUGAR B-SiLU.

One run:

  python train.py --config configs/paper_resnet18_cifar100.py \
    --workdir runs/paper_resnet18_cifar100/one --config.activation=sugar_bsilu

The whole grid (85 runs, one directory each), then the paper's table:

  python sweep.py --config configs/paper_resnet18_cifar100.py \
    --workdir runs/paper_resnet18_cifar100
  python report.py --runs runs/paper_resnet18_cifar100 \
    --out docs/paper_resnet18_cifar100

Data: TFDS "cifar100", read from data_dir (TFDS's default directory when
unset; preparing it needs the network). Offline, the prepared JPEG copy of
CIFAR-10 is a stand-in for CIFAR-10: --config.dataset=cifar10_jpeg
--config.data_dir=../shared/data/tfds.

The protocol the paper states: SGD, learning rate 0.001, batch 128, no
augmentation, 100 epochs.

The choices the paper leaves open (momentum 0, our initialisation, the
default surrogate hyperparameters, the last epoch's accuracy) are guesses,
explained in configs/_paper.py.
"""

from configs import _paper


def get_config():
  """The paper's protocol for ResNet-18 on CIFAR-100."""
  return _paper.cnn_config("resnet18", "cifar100", num_epochs=100)


def get_grid() -> dict[str, list]:
  """The sweep: 17 activations times seeds 0 to 4."""
  return _paper.cnn_grid("resnet18")
