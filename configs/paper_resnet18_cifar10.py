r"""ResNet-18 on CIFAR-10: ReLU, the surrogates, and SUGAR.

Reproduces the ResNet-18 / CIFAR-10 comparison of Horuz et al.
(2025), "The Resurrection of the ReLU" (arXiv 2505.22074): ReLU, each of
the eight surrogates as the forward activation, and SUGAR (ReLU forward,
the surrogate's derivative backward) with each, 17 activations, five seeds
each (the grid of get_grid). The paper reports 76.76 % without SUGAR
and 86.42 % with SUGAR B-SiLU.

One run:

  python train.py --config configs/paper_resnet18_cifar10.py \
    --workdir runs/paper_resnet18_cifar10/one --config.activation=sugar_bsilu

The whole grid (85 runs, one directory each), then the paper's table:

  python sweep.py --config configs/paper_resnet18_cifar10.py \
    --workdir runs/paper_resnet18_cifar10
  python report.py --runs runs/paper_resnet18_cifar10 \
    --out docs/paper_resnet18_cifar10

Data: TFDS "cifar10", read from data_dir (TFDS's default directory when
unset; preparing it needs the network). Offline, the prepared JPEG copy of
CIFAR-10 is a stand-in for CIFAR-10: --config.dataset=cifar10_jpeg
--config.data_dir=../shared/data/tfds.

The protocol the paper states: SGD, learning rate 0.001, batch 128, no
augmentation, 50 epochs.

Choices the paper leaves open (guesses, stated as such):

* momentum 0.0. The paper says "SGD" and nothing about momentum, and
  PyTorch's SGD has none unless asked. The paper's accuracies point the
  same way: its ReLU ResNet-18 (76.76 % on CIFAR-10 after
  50 epochs) is well below what this network with batch norm
  usually reaches at this learning rate with momentum 0.9, even without
  augmentation, which suggests the slow progress of plain SGD at 0.001.
  This is a guess; try the other reading with --config.momentum=0.9.
* initialisation: our models' own, not PyTorch's. Convolution kernels are
  He-normal (variance 2 / fan_in), the classifier is Flax's LeCun-normal
  (1 / fan_in), biases are zero. PyTorch's defaults, which the paper
  presumably kept, are Kaiming-uniform with a = sqrt(5) (variance
  1 / (3 fan_in)) with uniform biases. Batch norm makes a convolution's
  output independent of its kernel's scale, but the step size is not: at
  the start our kernels are about sqrt(6) times larger, so their
  effective learning rate is about 6 times smaller than in PyTorch. No
  config key changes this.
* surrogate hyperparameters: the defaults (B-SiLU alpha 1.67, NeLU 0.1,
  LeakyReLU 0.01, ELU 1.0), the paper's values for CNNs.
* the reported number is the test accuracy after the last epoch, not the
  best epoch's: the paper does not say it selected epochs.
"""

from configs import _paper


def get_config():
  """The paper's protocol for ResNet-18 on CIFAR-10."""
  return _paper.cnn_config("resnet18", "cifar10", num_epochs=50)


def get_grid() -> dict[str, list]:
  """The sweep: 17 activations times seeds 0 to 4."""
  return _paper.cnn_grid("resnet18")
