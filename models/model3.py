"""Model3 — under 8k parameters, 99.4% test accuracy within 15 epochs (7,944 parameters).

Target:
- Fewer than 8k parameters; test accuracy of 99.4% or more in at least 3 of the last 5 of 15 epochs.

Design:
Two 3x3 blocks at 10-15 channels, a 1x1 convolution and a max-pool, three 3x3 blocks at 16 channels on the
12x12 map, global average pooling and a 1x1 convolution to the ten classes; batch norm after every
convolution, Dropout(0.05) after every block. Receptive field 28: the whole digit.

Recipe:
SGD (lr 0.88, momentum 0.83, batch 64, weight decay 1.5e-4) on a one-cycle schedule that anneals by
epoch 12 and holds its floor, the last three epochs on the images as they are. `--recipe published` is
the published project's StepLR recipe; `--recipe step` the StepLR recipe the one-cycle replaced.

Headline:
Met the target on 40 of 40 test seeds (95% interval 91-100%); the published recipe on 10 of 20.
Measured by `python main.py --models model3 --seeds 1-40`; how it was chosen: results/notes/model3.md.
"""
from dataclasses import replace

import torch.nn.functional as F
from torch import nn

from models.kit import SGDRecipe, Target, conv_bn_relu

# A recipe search's best rate and momentum (results/tuning/model3-tune, trial 15), more weight decay, and a
# one-cycle schedule whose anneal ends before the three epochs the target reads.
RECIPE = SGDRecipe(epochs=15, batch_size=64, lr=0.8801502858461098, momentum=0.8285934066041577,
                   weight_decay=1.5e-4, step_size=4, gamma=0.1466624901477834, augment=True,
                   schedule="one-cycle", cycle_epochs=12, floor=0.003, clean_epochs=3)
RECIPES = {
    # The published project's Model3: StepLR every 6 epochs by 0.1 from lr 0.5, batch 128, no weight decay.
    "published": SGDRecipe(epochs=15, batch_size=128, lr=0.5, momentum=0.9, weight_decay=0.0, step_size=6,
                           gamma=0.1, augment=True),
    # The StepLR recipe the one-cycle schedule replaced: the rate times 0.147 every 4 epochs, every epoch augmented.
    "step": replace(RECIPE, schedule="step", clean_epochs=0),
}
# The assignment: 99.4% held over the last epochs, with fewer than 8,000 parameters, within 15 epochs.
TARGET = Target(99.40, hits=3, window=5, max_parameters=7_999, max_epochs=15)


class Model3(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dropout = nn.Dropout(0.05)  # one module, applied after every block
        self.block1 = conv_bn_relu(1, 10)                          # 26x26, RF 3
        self.block2 = conv_bn_relu(10, 15)                         # 24x24, RF 5
        self.transition = nn.Sequential(nn.Conv2d(15, 10, 1, bias=False),
                                        nn.MaxPool2d(2))           # 12x12, RF 6
        self.block3 = conv_bn_relu(10, 16)                         # 10x10, RF 10
        self.block4 = conv_bn_relu(16, 16)                         # 8x8,   RF 14
        self.block5 = conv_bn_relu(16, 16)                         # 6x6,   RF 18
        self.head = nn.Sequential(nn.AvgPool2d(6),                 # 1x1,   RF 28
                                  nn.Conv2d(16, 10, 1, bias=False))

    def forward(self, x):
        x = self.dropout(self.block2(self.dropout(self.block1(x))))
        x = self.transition(x)
        x = self.dropout(self.block5(self.dropout(self.block4(self.dropout(self.block3(x))))))
        return F.log_softmax(self.head(x).flatten(1), dim=1)
