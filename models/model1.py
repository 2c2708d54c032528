"""Model1 — the heavy baseline (6,379,786 parameters).

Target:
- Get the setup right: transforms, data loaders, the training and test loops.
- Published (one run, GPU): best train accuracy 99.92%, best test accuracy 99.26%; far too heavy for
  the goal of fewer than 8k parameters, and it overfits.

Recipe:
A plain VGG-style network without batch norm trains stably with SGD at lr 0.01 and momentum 0.9 and a
constant rate (step_size 15 never fires within 15 epochs). Augmentation is off: this is the baseline
before regularisation, a model free to memorise un-augmented digits.

What its runs show:
- It overfits as published: train accuracy passes test accuracy within the first epochs and nears
  100%, while test accuracy wanders with no schedule to settle it (run 20261124-163820-model1-seed1).
- It costs about 120 times Model3's multiply-accumulates per image, so on a 2-core CPU it takes an
  hour or more and `python main.py` runs it last; that run used `--precision bf16` (autocast around
  the forward pass; weights, loss and update in fp32). On a GPU a run takes minutes.
"""
import torch.nn.functional as F
from torch import nn

from models.kit import SGDRecipe

RECIPE = SGDRecipe(epochs=15, batch_size=128, lr=0.01, momentum=0.9, step_size=15, gamma=0.1, augment=False)


class Model1(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)      # 28x28, RF 3
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)     # 28x28, RF 5
        self.pool1 = nn.MaxPool2d(2)                     # 14x14, RF 6
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1)    # 14x14, RF 10
        self.conv4 = nn.Conv2d(128, 256, 3, padding=1)   # 14x14, RF 14
        self.pool2 = nn.MaxPool2d(2)                     # 7x7,   RF 16
        self.conv5 = nn.Conv2d(256, 512, 3)              # 5x5,   RF 24
        self.conv6 = nn.Conv2d(512, 1024, 3)             # 3x3,   RF 32
        self.conv7 = nn.Conv2d(1024, 10, 3)              # 1x1,   RF 40

    def forward(self, x):
        x = self.pool1(F.relu(self.conv2(F.relu(self.conv1(x)))))
        x = self.pool2(F.relu(self.conv4(F.relu(self.conv3(x)))))
        x = F.relu(self.conv6(F.relu(self.conv5(x))))
        x = self.conv7(x).flatten(1)
        return F.log_softmax(x, dim=1)
