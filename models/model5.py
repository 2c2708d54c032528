"""Model5 — at most 4,000 parameters (3,892), aiming at 99.4%.

Target:
- At most 4,000 parameters; Model3's target, 99.4% or more in at least 3 of the last 5 of 15 epochs, on
  at least 18 of 20 seeds.

Design:
Model4's network with block3 in two groups (each a 3x3 from 4 channels to 10): 760 parameters instead of
1,480. The 1x1 transition before it chooses what each group sees and block4's 1x1 mixes the halves
again, so little is lost; the full block2 and the 20 channels after the pool are kept. Receptive field 32.

Recipe:
Model4's, as it is: SGD (lr 0.88, momentum 0.83, batch 64, weight decay 1.5e-4) on a one-cycle schedule
that anneals by epoch 12 and holds its floor, the last three epochs on the images as they are.

Headline:
Met the target on 30 of 40 test seeds (95% interval 60-86%): 16 of seeds 1-20 and 14 of 21-40, short of
its 18 of 20; built as Model4 first (the same network, other initial weights) it met it on 19 of 20.
Measured by `python main.py --models model5 --seeds 1-40`; how it was designed: results/notes/model5.md.
"""
from dataclasses import replace

import torch.nn.functional as F
from torch import nn

from models.kit import SGDRecipe, Target, conv_bn_relu, one_cycle_search_space, separable_bn_relu

# Model4's recipe as it is: only the network differs.
RECIPE = SGDRecipe(epochs=15, batch_size=64, lr=0.8801502858461098, momentum=0.8285934066041577,
                   weight_decay=1.5e-4, step_size=4, gamma=0.1466624901477834, augment=True,
                   schedule="one-cycle", cycle_epochs=12, floor=0.003, clean_epochs=3)
RECIPES = {
    "step": replace(RECIPE, schedule="step", clean_epochs=0),  # Model4's StepLR recipe
    # Two methods that add no parameter, each compared with the default on validation seeds 1-10 and not ahead
    # (results/tuning/README.md): the weights' moving average with batch norm's statistics recomputed for it, a tie;
    # Model4's outputs softened by 4 as half the loss, behind.
    "average": replace(RECIPE, ema_decay=0.999),
    "teacher": replace(RECIPE, teacher="model4"),
}
# Model3's target, with half its parameters.
TARGET = Target(99.40, hits=3, window=5, max_parameters=4_000, max_epochs=15)
search_space = one_cycle_search_space


class Model5(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        width = 20  # the channels after the pool, where the accuracy is
        self.block1 = conv_bn_relu(1, 8)                           # 26x26, RF 3
        self.block2 = conv_bn_relu(8, 12)                          # 24x24, RF 5
        self.transition = nn.Sequential(nn.Conv2d(12, 8, 1, bias=False),
                                        nn.MaxPool2d(2))           # 12x12, RF 6
        self.block3 = conv_bn_relu(8, width, groups=2)             # 10x10, RF 10
        self.block4 = separable_bn_relu(width)                     # 8x8,   RF 14
        self.block5 = separable_bn_relu(width)                     # 6x6,   RF 18
        self.block6 = separable_bn_relu(width, padding=1)          # 6x6,   RF 22
        self.head = nn.Sequential(nn.AvgPool2d(6),                 # 1x1,   RF 32
                                  nn.Conv2d(width, 10, 1, bias=False))

    def forward(self, x):
        x = self.transition(self.block2(self.block1(x)))
        x = self.block6(self.block5(self.block4(self.block3(x))))
        return F.log_softmax(self.head(x).flatten(1), dim=1)
