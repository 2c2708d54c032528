"""Model4 — 99.4% with at most 5,000 parameters (4,612 parameters).

Target:
- At most 5,000 parameters: below every MNIST model published with code that holds 99.4%.
- Model3's target: test accuracy of 99.4% or more in at least 3 of the last 5 of 15 epochs, on
  seeds 1, 2 and 3.

Recipe:
Model3's searched recipe (SGD with momentum 0.83, lr 0.88, batch 64, the rate multiplied by 0.147
every 4 epochs; the published augmentation) with 2.5 times its weight decay: 1.5e-4 instead of
6.1e-5, chosen on the validation split (below).

Where the parameters go:
- block1, 3x3 conv 1 -> 8 + batch norm:                     72 + 16 =    88  (26x26, RF 3)
- block2, 3x3 conv 8 -> 12 + batch norm:                   864 + 24 =   888  (24x24, RF 5)
- transition, 1x1 conv 12 -> 8, 2x2 max-pool:                         96  (12x12, RF 6)
- block3, 3x3 conv 8 -> 20 + batch norm:                 1,440 + 40 = 1,480  (10x10, RF 10)
- block4-6, each a 3x3 depthwise (180) and a 1x1 20 -> 20 (400)
  conv + batch norm (40):                                   3 x 620 = 1,860  (8x8, 6x6, 6x6; RF 14, 18, 22)
- head, 6x6 average pool, 1x1 conv 20 -> 10:                         200  (1x1, RF 32)
Total 4,612. A full 3x3 convolution 20 -> 20 would cost 3,600 parameters; the depthwise-separable
block gives 20 channels for 580 (+40 for batch norm), so after the pool the network is 20 wide where
Model3 is 16, at a third of Model3's parameters there. Block6 is padded so the last block still
sees a 6x6 map; the receptive field at the output is 32 pixels: the whole 28x28 digit.

How it was designed (validation split: trained on the first 50,000 training images, scored on the
other 10,000; score: mean validation accuracy over epochs 10-14, as the recipe search scores; the
test set was not opened; records in results/tuning/model4-design/, each from its commit):
SCORES
Model3 on the same split, same score (results/tuning/model3-confirm): 99.348 / 99.212 / 99.282, mean 99.281.

What was dropped, and why the final design works:
- Dropout (0.05 after every block, as in Model3): at 4,720 parameters the network underfits -
  train accuracy (on augmented images) 98.9% against 99.1% on validation - and dropout takes
  capacity it does not have. Without it: +0.11 points on validation, train 99.1%.
- Width after the pool matters more than extra positions or depth: padding block3 (the same
  parameters on 12x12 instead of 10x10 maps) did not help, nor did six separable blocks instead of
  one full convolution and three separable ones (the full 3x3 convolution into block3 is where the
  features of the 8 input channels are combined; a depthwise one cannot do it). A separable block2
  (to afford 24 channels after the pool) lost at the front what it gained at the back.
- Batch norm and ReLU after each depthwise convolution too (MobileNet's block, +120 parameters):
  no gain.
RESULTS
"""
from typing import TYPE_CHECKING, Any

import torch.nn.functional as F
from torch import nn

from records import Target
from settings import Recipe, SGDRecipe

if TYPE_CHECKING:
    import optuna

# Model3's searched recipe with more weight decay: without dropout it scored higher on validation (see the notes).
RECIPE = SGDRecipe(epochs=15, batch_size=64, lr=0.8801502858461098, momentum=0.8285934066041577,
                   weight_decay=1.5e-4, step_size=4, gamma=0.1466624901477834, augment=True)
TARGET = Target(99.40, hits=3, window=5)  # Model3's target, with fewer parameters


def search_space(trial: "optuna.Trial", recipe: Recipe, fixed: set[str]) -> dict[str, Any]:
    """The region Model3's study found best (batch 64, step 4, gamma 0.13-0.15, momentum 0.81-0.83, weight
    decay 3-6e-5), widened a little each way: a small model has no spare trials for the far corners."""
    space = {
        "lr": lambda: trial.suggest_float("lr", 0.3, 1.5, log=True),
        "weight_decay": lambda: trial.suggest_float("weight_decay", 1e-5, 3e-4, log=True),
        "momentum": lambda: trial.suggest_float("momentum", 0.75, 0.9),
        "step_size": lambda: trial.suggest_int("step_size", 3, 5),
        "gamma": lambda: trial.suggest_float("gamma", 0.08, 0.25, log=True),
    }
    return {name: suggest() for name, suggest in space.items() if name not in fixed}


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU())


def separable_bn_relu(channels: int, padding: int = 0) -> nn.Sequential:
    """A 3x3 depthwise then a 1x1 pointwise convolution: 9c + c^2 parameters instead of 9c^2."""
    return nn.Sequential(nn.Conv2d(channels, channels, 3, padding=padding, groups=channels, bias=False),
                         nn.Conv2d(channels, channels, 1, bias=False),
                         nn.BatchNorm2d(channels), nn.ReLU())


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
