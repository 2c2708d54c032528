"""Model61 — a candidate for Model6 (at most 3,000 parameters): depth that costs no parameters.

Target:
- Model6's: at most 3,000 parameters, 99.4% or more in at least 3 of the last 5 of 15 epochs.

Design:
Model6's network up to block3, then one separable block used three times with the same weights, as in Model51
(Model5's candidate): each use with its own batch norm, added to what came in, padded so the 10 x 10 map keeps its
size. The weights of Model6's two separable blocks (1,160) become one block's, which runs three times instead of
two, and the freed parameters buy width after the pool: 24 channels instead of 20. Receptive field 40.

Recipe:
Model6's, as it is: only the network differs.

Judged by `python main.py --compare model6 model61 --records results/tuning` on the validation split; the rule and
the verdict are in results/tuning/README.md (depth without parameters).
"""
import torch.nn.functional as F
from torch import nn

from models.kit import SGDRecipe, Target, conv_bn_relu, one_cycle_search_space

# Model6's recipe as it is: only the network differs.
RECIPE = SGDRecipe(epochs=15, batch_size=64, lr=0.8801502858461098, momentum=0.8285934066041577,
                   weight_decay=1.5e-4, step_size=4, gamma=0.1466624901477834, augment=True,
                   schedule="one-cycle", cycle_epochs=12, floor=0.003, clean_epochs=3)
TARGET = Target(99.40, hits=3, window=5, max_parameters=3_000, max_epochs=15)
search_space = one_cycle_search_space


class Model61(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        width = 24  # the channels after the pool, bought with the shared block's freed parameters
        uses = 3  # how many times the shared block runs
        self.block1 = conv_bn_relu(1, 8)                           # 26x26, RF 3
        self.block2 = conv_bn_relu(8, 14, groups=2)                # 24x24, RF 5
        self.transition = nn.Sequential(nn.Conv2d(14, 8, 1, bias=False),
                                        nn.MaxPool2d(2))           # 12x12, RF 6
        self.block3 = conv_bn_relu(8, width, groups=2)             # 10x10, RF 10
        # One block, its weights used `uses` times: a depthwise 3x3 then a pointwise 1x1.
        self.shared = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False),
                                    nn.Conv2d(width, width, 1, bias=False))
        self.norms = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(uses))  # 10x10, RF 10 + 4 a use
        self.head = nn.Sequential(nn.AvgPool2d(10),                # 1x1,   RF 40
                                  nn.Conv2d(width, 10, 1, bias=False))

    def forward(self, x):
        x = self.block3(self.transition(self.block2(self.block1(x))))
        for norm in self.norms:  # the same convolutions each time, a batch norm of its own
            x = x + F.relu(norm(self.shared(x)))
        return F.log_softmax(self.head(x).flatten(1), dim=1)
