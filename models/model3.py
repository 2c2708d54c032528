"""Model3 — under 8k parameters, 99.4% test accuracy within 15 epochs (7,944 parameters).

Target:
- Fewer than 8k parameters.
- Test accuracy of 99.4% or more in at least 3 of the last 5 of 15 epochs, for every seed.

Published results (one run, GPU, batch 128):
- Parameters: 7,944; best train accuracy 99.25%; best test accuracy 99.46%.
- A StepLR schedule and more augmentation were introduced; tuning the learning rate put test
  accuracy at or above 99.4% in the last 7 epochs.

Recipe:
SGD, lr 0.5, momentum 0.9, weight decay 1e-4, StepLR(step_size=6, gamma=0.1), batch 128, 15 epochs,
ColorJitter + RandomRotation(±7°) augmentation. The published recipe is the same without weight decay.

Analysis (this package's runs, CPU):
- The published recipe does not reach the target here. Seed 1, 15 epochs, the published pipeline as
  published (per-image transforms, batch 64, nn.Dropout): best 99.39%, 0 of the last 5 epochs at
  99.40%, the same figures epoch for epoch in two runs hours apart. On the tensor pipeline at batch
  128: best 99.38%, also 0 of 5.
- Recipes tried on seed 1 (best test %, last 5 epochs): lr 0.05: 99.34, 99.26-99.34; lr 0.1: 99.34,
  99.26-99.33; batch 64: 99.39, 99.35-99.39; no augmentation: 99.35, 99.30-99.35; gamma 0.3: 99.39,
  99.33-99.39; step size 8: 99.38, 99.31-99.38; weight decay 5e-4: unstable before the first drop,
  99.19-99.34 after it (stopped at epoch 11); weight decay 1e-4: 99.43, 99.34-99.43, 3 of 5 at 99.40%.
- Lower learning rates were worse and nothing else moved the plateau (about 99.35%) until weight
  decay. The convolutions feed batch norm, so their scale does not matter to the output: without
  weight decay their norms grow under lr 0.5 and the effective step shrinks on its own, leaving the
  two StepLR drops little to anneal. A little weight decay keeps the effective step, and the gain
  shows after the second drop (epochs 12-14).
- With this recipe, seeds 2 and 3 (2 threads, the default) meet the target (4 and 5 of the last 5
  epochs at 99.40% or more) and seed 1 does not (2 of 5, best 99.40%); best 99.45 ± 0.07% across
  the three. The same seeds with one thread each (`--jobs 2`, other rounding, so other
  trajectories) all meet it (5, 5 and 5 of 5; best 99.47 ± 0.03%). A tenth of a point is 10 test
  images: "3 of the last 5" sits at the noise level of this model, and one seed in three misses it.
- The tensor-pipeline figures above, and the recipe search, came from an earlier dropout that
  drew its masks from another random stream (same distribution), so the current code does not
  reproduce them run for run.
"""
import torch.nn.functional as F
from torch import nn

from models import Recipe

RECIPE = Recipe(epochs=15, batch_size=128, lr=0.5, momentum=0.9, weight_decay=1e-4, step_size=6, gamma=0.1,
                augment=True, target_test_acc=99.40, target_hits=3, target_window=5)


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU())


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
