"""Model62 — a candidate for Model6 (at most 3,000 parameters): Model6 with its last block used twice.

Target:
- Model6's: at most 3,000 parameters, 99.4% or more in at least 3 of the last 5 of 15 epochs.

Design:
Model6's network as it is, with block5's convolutions run a second time on their own output (unpadded, as
block5 is: the map goes from 6 x 6 to 4 x 4): one more layer of depth for the 40 parameters of a second batch
norm, which each use keeps (its statistics differ at each depth). Every distinct filter of Model6 stays; the
use added is the only change, so the compare measures depth alone. Receptive field 28, as Model6's.

Recipe:
Model6's, as it is: only the network differs.

Judged by `python main.py --compare model6 model62 --records results/tuning` on the validation split; the rule and
the verdict are in results/tuning/README.md (depth without parameters).
"""
import torch.nn.functional as F
from torch import nn

from models.kit import SGDRecipe, Target, conv_bn_relu, one_cycle_search_space, separable_bn_relu

# Model6's recipe as it is: only the network differs.
RECIPE = SGDRecipe(epochs=15, batch_size=64, lr=0.8801502858461098, momentum=0.8285934066041577,
                   weight_decay=1.5e-4, step_size=4, gamma=0.1466624901477834, augment=True,
                   schedule="one-cycle", cycle_epochs=12, floor=0.003, clean_epochs=3)
TARGET = Target(99.40, hits=3, window=5, max_parameters=3_000, max_epochs=15)
search_space = one_cycle_search_space


class Model62(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        width = 20  # the channels after the pool, where the accuracy is
        self.block1 = conv_bn_relu(1, 8)                           # 26x26, RF 3
        self.block2 = conv_bn_relu(8, 14, groups=2)                # 24x24, RF 5
        self.transition = nn.Sequential(nn.Conv2d(14, 8, 1, bias=False),
                                        nn.MaxPool2d(2))           # 12x12, RF 6
        self.block3 = conv_bn_relu(8, width, groups=2)             # 10x10, RF 10
        self.block4 = separable_bn_relu(width)                     # 8x8,   RF 14
        # block5's convolutions, their weights used twice: a depthwise 3x3 then a pointwise 1x1.
        self.block5 = nn.Sequential(nn.Conv2d(width, width, 3, groups=width, bias=False),
                                    nn.Conv2d(width, width, 1, bias=False))
        self.block5_norms = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(2))  # 6x6, RF 18, then 4x4, RF 22
        self.head = nn.Sequential(nn.AvgPool2d(4),                 # 1x1,   RF 28
                                  nn.Conv2d(width, 10, 1, bias=False))

    def forward(self, x):
        x = self.transition(self.block2(self.block1(x)))
        x = self.block4(self.block3(x))
        for norm in self.block5_norms:  # the same convolutions each time, a batch norm of its own
            x = F.relu(norm(self.block5(x)))
        return F.log_softmax(self.head(x).flatten(1), dim=1)
