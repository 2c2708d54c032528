"""Model4 — 99.4% with at most 5,000 parameters (4,612 parameters).

Target:
- At most 5,000 parameters. Published with code (course repositories for this task, single runs):
  about 5,850-6,050 parameters touching 99.40% once, about 7,900 holding it.
- Model3's target: test accuracy of 99.4% or more in at least 3 of the last 5 of 15 epochs.

Where the parameters go:
| block | layers | parameters | output | RF |
|---|---|---|---|---|
| block1 | 3x3 conv 1 -> 8, batch norm, ReLU | 72 + 16 = 88 | 8 x 26 x 26 | 3 |
| block2 | 3x3 conv 8 -> 12, batch norm, ReLU | 864 + 24 = 888 | 12 x 24 x 24 | 5 |
| transition | 1x1 conv 12 -> 8, 2x2 max-pool | 96 | 8 x 12 x 12 | 6 |
| block3 | 3x3 conv 8 -> 20, batch norm, ReLU | 1,440 + 40 = 1,480 | 20 x 10 x 10 | 10 |
| block4 | 3x3 depthwise 20, 1x1 conv 20 -> 20, batch norm, ReLU | 180 + 400 + 40 = 620 | 20 x 8 x 8 | 14 |
| block5 | the same | 620 | 20 x 6 x 6 | 18 |
| block6 | the same, padded | 620 | 20 x 6 x 6 | 22 |
| head | 6x6 average pool, 1x1 conv 20 -> 10 | 200 | 10 | 32 |
| total | | 4,612 | | |

Design:
A full 3x3 convolution 20 -> 20 costs 3,600 parameters; a depthwise-separable block gives the same
20 channels and 3x3 field for 620, so after the pool the network is 20 channels wide (Model3: 16)
with 3,540 parameters there, head included (Model3: 6,304). Block3 stays a full convolution: it is
where the 8 channels of the front are combined into the 20, which a depthwise convolution cannot do.
Block6 is padded so the last block still sees a 6x6 map; the receptive field at the output is 32
pixels, the whole digit.

Recipe:
Model3's searched recipe (SGD, momentum 0.83, peak lr 0.88, batch 64, the published augmentation) with
weight decay 1.5e-4 instead of the search's 6.1e-5, on a one-cycle schedule: the rate rises from lr / 25
to lr over the first 3 epochs, falls along a cosine to lr x 0.003 at the end of epoch 12, and holds
there for the last three epochs - the three the target needs - on the training images as they are,
without the rotations and jitter (`clean_epochs=3`). Both choices were made on the validation split:
the weight decay against Model3's, the schedule against StepLR (the rate times 0.147 every 4 epochs,
`--recipe step`), over ten seeds each.

Why it works:
- No dropout: at this size the network underfits (train accuracy on augmented images below
  validation accuracy), and dropout takes capacity it does not have.
- Width after the pool matters more than positions or depth: padding block3 (the same parameters on
  larger maps) did not help, nor did six separable blocks in place of block3 and three separable ones,
  nor a separable block2 to afford more channels after the pool.
- With batch norm after every convolution, weight decay acts through the effective step (the learning
  rate over the squared weight norm): more decay holds the weights smaller, the effective step larger
  and the training noisier for longer, a regulariser in place of the dropout that was removed.
- The schedule: annealing the rate smoothly to a small floor by epoch 12 makes the last three epochs -
  the three of five the target asks for - the annealed network, and training them on undistorted
  images settles its weights and batch-norm statistics on digits like the test set's. On validation
  seeds 1-10 the target's statistic (the third-best of the last five epochs) rose from 99.302 ± 0.051
  under StepLR to 99.365 ± 0.052, the worst seed from 99.25 to 99.28 (permutation test p = 0.02, ahead
  on 8 seeds of 10). On the test set it met the target on 20 of 20 seeds against StepLR's 15 of 20
  (results/README.md, each its own row).

How it was designed - every candidate a commit, scored on validation, and what each taught - is in
results/tuning/README.md, with the records in results/tuning/model4-design.
"""
import torch.nn.functional as F
from torch import nn

from models.blocks import conv_bn_relu, separable_bn_relu
from models.recipes import ONE_CYCLE, STEP, one_cycle_search_space
from records import Target

RECIPE = ONE_CYCLE  # Model3's searched recipe with more weight decay (no dropout here), on one-cycle: see the notes
RECIPES = {"step": STEP}  # the StepLR recipe it replaced
TARGET = Target(99.40, hits=3, window=5)  # Model3's target, with fewer parameters
search_space = one_cycle_search_space


class Model4(nn.Module):
    def __init__(self, width: int = 20) -> None:
        """`width`: the channels after the pool, where the separable blocks make width cheap."""
        super().__init__()
        self.block1 = conv_bn_relu(1, 8)                           # 26x26, RF 3
        self.block2 = conv_bn_relu(8, 12)                          # 24x24, RF 5
        self.transition = nn.Sequential(nn.Conv2d(12, 8, 1, bias=False),
                                        nn.MaxPool2d(2))           # 12x12, RF 6
        self.block3 = conv_bn_relu(8, width)                       # 10x10, RF 10
        self.block4 = separable_bn_relu(width)                     # 8x8,   RF 14
        self.block5 = separable_bn_relu(width)                     # 6x6,   RF 18
        self.block6 = separable_bn_relu(width, padding=1)          # 6x6,   RF 22
        self.head = nn.Sequential(nn.AvgPool2d(6),                 # 1x1,   RF 32
                                  nn.Conv2d(width, 10, 1, bias=False))

    def forward(self, x):
        x = self.transition(self.block2(self.block1(x)))
        x = self.block6(self.block5(self.block4(self.block3(x))))
        return F.log_softmax(self.head(x).flatten(1), dim=1)
