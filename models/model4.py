"""Model4 — 99.4% with at most 5,000 parameters (4,612 parameters).

Target:
- At most 5,000 parameters. Published with code (course repositories for this task, single runs):
  about 5,850-6,050 parameters touching 99.40% once, about 7,900 holding it; none under about
  6,000 holding it, and none reporting several seeds.
- Model3's target: test accuracy of 99.4% or more in at least 3 of the last 5 of 15 epochs, on
  seeds 1, 2 and 3.

Recipe:
Model3's searched recipe (SGD with momentum 0.83, lr 0.88, batch 64, the rate multiplied by 0.147
every 4 epochs; the published augmentation) with 2.5 times its weight decay: 1.5e-4 instead of
6.1e-5, chosen on the validation split (below).

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

A full 3x3 convolution 20 -> 20 costs 3,600 parameters; a depthwise-separable block gives the same
20 channels and 3x3 field for 620, so after the pool the network is 20 channels wide (Model3: 16)
with 3,540 parameters there, head included (Model3: 6,304). Block3 stays a full convolution: it is where the 8
channels of the front are combined into the 20, which a depthwise convolution cannot do. Block6 is
padded so the last block still sees a 6x6 map; the receptive field at the output is 32 pixels, the
whole 28x28 digit, as Model3's 28.

How it was designed:
On the validation split only (trained on the first 50,000 training images, scored on the other
10,000; the test set was not opened). Score: the recipe search's, the mean validation accuracy
over epochs 10-14. Every design was a commit, run with `python main.py --models model4 --validation`;
the records are in results/tuning/model4-design/. Model3 on the same split: 99.348 / 99.212 /
99.282, mean 99.281 (results/tuning/model3-confirm).

| design (commit) | parameters | seed 1 | seed 2 | seed 3 |
|---|---|---|---|---|
| 1. Model3's shape at 8-12 channels, dropout 0.05 (10e32ed) | 4,720 | 99.092 | | |
| 2. design 1 without dropout (11433f4) | 4,720 | 99.206 | | |
| 3. design 2 with block3 padded: 12, 10, 8 pixels after the pool (e0fe282) | 4,720 | 99.152 | | |
| 4. full block3 to 20 channels, three separable blocks (037a566) | 4,612 | 99.244 | 99.204 | 99.286 |
| 5. design 4 with a separable block2 (to 16) and 24 channels after the pool (885bba8) | 4,984 | 99.176 | | |
| 6. design 4 with batch norm and ReLU after each depthwise conv too (702ec3b) | 4,732 | 99.234 | | |
| 7. six separable blocks after the pool, none full (5db2074) | 4,644 | 99.122 | | |
| design 4, weight decay 1.5e-4 (`--weight-decay 1.5e-4`): this model | 4,612 | 99.332 | 99.326 | 99.268 |
| design 4, weight decay 3e-4 | 4,612 | 99.232 | | |
| design 4, StepLR every 5 epochs (`--step-size 5`) | 4,612 | 99.316 | | |
| the 4,000 moonshot: design 4 at 16 channels after the pool, weight decay 1.5e-4 (a68fa5a, Model5 then) | 3,712 | 99.192 | | |

What was dropped, and why the final design works:
- Dropout (0.05 after every block, as in Model3): at 4,720 parameters the network underfits - it
  trained to 98.9% on augmented images while scoring 99.1% on validation - and dropout takes
  capacity it does not have. Without it: +0.11 points, train accuracy 99.1%.
- Width after the pool, not positions or depth: padding block3 (the same parameters on larger
  maps) did not help, and neither did six separable blocks in place of block3 and three separable
  ones. Design 4 took 20 channels where design 2 had 12 at fewer parameters and scored 99.245 on
  three seeds. A separable block2, to afford 24 channels after the pool, lost at the front what
  it gained at the back; MobileNet's batch norm after the depthwise conv added nothing.
- Weight decay 1.5e-4 instead of Model3's 6.1e-5 scored 99.309 over seeds 1-3 against 99.245,
  ahead of Model3's 99.281. With batch norm after every convolution the weights' scale does not
  change the output, so weight decay acts through the effective step (the learning rate over the
  squared weight norm): the weights grow under large steps, and more decay holds them smaller, the
  effective step larger, and the training noisier for longer - regularisation in place of the
  dropout that was removed. (3e-4 scored lower on its one seed; StepLR every 5 epochs was close, 99.316, and
  was not followed up.) The single-seed scores differ by about the seed spread (0.04-0.08), so only
  the three-seed comparisons carry weight.

Results on the test set:
Made once, after the choice above: `python main.py --models model4 --seeds 1 2 3` from a clean
clone of commit 5335c50 (2026-11-24, the AMD EPYC of the Results, 4.2-4.6 minutes a run).
- Seed 1: 99.41, 99.40, 99.40, 99.43, 99.40 over the last 5 epochs: 5 of 5 at 99.40% or more.
- Seed 2: 99.39, 99.38, 99.41, 99.40, 99.46: 3 of 5.
- Seed 3: 99.43, 99.45, 99.43, 99.44, 99.46: 5 of 5.
- The target is met on all three seeds; mean over the last 5 epochs 99.42 ± 0.02% (Model3's seeds
  1-5: 99.44 ± 0.03% with 7,944 parameters), best 99.43-99.46%. The margin is thin: seeds 1 and 2
  sit at 99.40-99.41% for most of those epochs, one or two test images above the line, so other
  seeds (or another machine's rounding) can miss it, as Model3's seed 5 does.
- Compiled, as `python main.py` now trains it (commit e5c0ed2, `python main.py --models model4
  --seeds 1 2 3`, 3.7-3.9 minutes a run): 4, 5 and 4 of the last 5; 99.45 ± 0.04%. This model
  has no dropout, so compiled and eager runs differ by rounding alone: a measure of how far a
  seed's result moves for no reason.
- The moonshot, 4,000 parameters, is not reached: the same network at 16 channels (3,712
  parameters) scored 99.192 on validation, 0.14 below this model's seed 1, and was not taken to
  the test set.
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
