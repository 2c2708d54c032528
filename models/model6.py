"""Model6 — at most 3,000 parameters (2,932), aiming at 99.4%.

Target:
- At most 3,000 parameters; Model3's target, 99.4% or more in at least 3 of the last 5 of 15 epochs, on
  at least 18 of 20 seeds.

Design:
Model5 without its last separable block (the receptive field 28 pixels, the box a digit is drawn in)
and with block2 in two groups of 4 -> 7 channels: block1's filters are learned for the group that
reads them, and the transition's 1x1 mixes the halves. The 20 channels after the pool are kept.

Recipe:
Model5's, as it is: only the network differs.

Headline:
Met the target on 8 of 20 test seeds (95% interval 22-61%), test mean over epochs 10-14 99.39 ± 0.03:
short of its 18. Model4 (4,612) is the smallest network here that holds it.
Measured by `python main.py --models model6 --seeds 1-20`; how it was chosen: results/notes/model6.md.
"""
from dataclasses import replace

import torch.nn.functional as F
from torch import nn

from models.kit import SGDRecipe, Target, conv_bn_relu, one_cycle_search_space, separable_bn_relu

# Model5's recipe as it is: only the network differs.
RECIPE = SGDRecipe(epochs=15, batch_size=64, lr=0.8801502858461098, momentum=0.8285934066041577,
                   weight_decay=1.5e-4, step_size=4, gamma=0.1466624901477834, augment=True,
                   schedule="one-cycle", cycle_epochs=12, floor=0.003, clean_epochs=3)
# Two methods that add no parameter, each compared with the default on validation seeds 1-10, both ties
# (results/tuning/README.md): the weights' moving average with batch norm's statistics recomputed for it, and
# Model4's outputs softened by 4 as half the loss.
RECIPES = {"average": replace(RECIPE, ema_decay=0.999), "teacher": replace(RECIPE, teacher="model4")}
# Model3's target, with 37% of its parameters.
TARGET = Target(99.40, hits=3, window=5, max_parameters=3_000, max_epochs=15)
search_space = one_cycle_search_space


class Model6(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        width = 20  # the channels after the pool, where the accuracy is
        self.block1 = conv_bn_relu(1, 8)                           # 26x26, RF 3
        self.block2 = conv_bn_relu(8, 14, groups=2)                # 24x24, RF 5
        self.transition = nn.Sequential(nn.Conv2d(14, 8, 1, bias=False),
                                        nn.MaxPool2d(2))           # 12x12, RF 6
        self.block3 = conv_bn_relu(8, width, groups=2)             # 10x10, RF 10
        self.block4 = separable_bn_relu(width)                     # 8x8,   RF 14
        self.block5 = separable_bn_relu(width)                     # 6x6,   RF 18
        self.head = nn.Sequential(nn.AvgPool2d(6),                 # 1x1,   RF 28
                                  nn.Conv2d(width, 10, 1, bias=False))

    def forward(self, x):
        x = self.transition(self.block2(self.block1(x)))
        x = self.block5(self.block4(self.block3(x)))
        return F.log_softmax(self.head(x).flatten(1), dim=1)
