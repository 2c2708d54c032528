"""Model2 — batch norm, dropout and global average pooling (16,352 parameters).

Target:
- Far fewer parameters, and a smaller gap between train and test accuracy: batch normalisation,
  Dropout2d on every block, global average pooling instead of a big last layer.
- Published (one run, GPU): best train accuracy 99.22%, best test accuracy 99.49%; two or three
  convolution blocks suffice for MNIST's edges and strokes, but it is about twice the 8k budget.

Recipe:
With batch norm the network takes a large learning rate, so it shares the published Model3's schedule shape (SGD,
momentum 0.9, StepLR every 6 epochs by 0.1, augmentation on, batch 128) at lr 0.1: Dropout2d(0.1) on
every block already slows learning. The recipe was chosen before running it, and kept.

What its runs show:
- Train accuracy stays below test accuracy in every epoch: dropout and augmentation act on training
  only, so the gap is regularisation, not overfitting.
- Test accuracy climbs steadily and does not fall after the learning-rate drops: the model is
  limited by capacity, which Model3 then cuts by half. Its seeds reach the target's accuracy, but
  not every seed holds it (the results page has each seed).

Headline:
Met the target (99.40% in 3 of the last 15 epochs) on 19 of 20 test seeds (95% interval 76-99%); in 4 or
more of them, the published "more than three times" read strictly, on 18 of 20. Measured by
`python main.py --models model2 --seeds 1-20`.
"""
import torch.nn.functional as F
from torch import nn

from models.kit import SGDRecipe, Target

RECIPE = SGDRecipe(epochs=15, batch_size=128, lr=0.1, momentum=0.9, step_size=6, gamma=0.1, augment=True)
TARGET = Target(99.40, hits=3, window=15)


def conv_relu_bn(in_channels: int, out_channels: int, padding: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=padding, bias=False),
                         nn.ReLU(), nn.BatchNorm2d(out_channels))


class Model2(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block1 = nn.Sequential(conv_relu_bn(1, 8, 1), nn.Dropout2d(0.1),      # 28x28, RF 3
                                    conv_relu_bn(8, 12, 1), nn.Dropout2d(0.1),     # 28x28, RF 5
                                    nn.MaxPool2d(2))                               # 14x14, RF 6
        self.block2 = nn.Sequential(conv_relu_bn(12, 16, 1), nn.Dropout2d(0.1),    # 14x14, RF 10
                                    conv_relu_bn(16, 20, 1), nn.Dropout2d(0.1),    # 14x14, RF 14
                                    nn.MaxPool2d(2))                               # 7x7,   RF 16
        self.block3 = nn.Sequential(conv_relu_bn(20, 24, 0),                       # 5x5,   RF 24
                                    nn.Conv2d(24, 28, 3, bias=False), nn.ReLU())   # 3x3,   RF 32
        self.head = nn.Sequential(nn.Conv2d(28, 10, 1, bias=False), nn.AvgPool2d(3))  # 1x1, RF 40

    def forward(self, x):
        x = self.head(self.block3(self.block2(self.block1(x))))
        return F.log_softmax(x.flatten(1), dim=1)
