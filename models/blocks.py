"""The layers the model files build from: each file's network is written out in its own file, from these."""
from torch import nn


def conv_bn_relu(in_channels: int, out_channels: int, groups: int = 1) -> nn.Sequential:
    """A 3x3 convolution (unpadded, no bias: batch norm's shift replaces it), batch norm, ReLU."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, groups=groups, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU())


def separable_bn_relu(channels: int, padding: int = 0) -> nn.Sequential:
    """A 3x3 depthwise then a 1x1 pointwise convolution: 9c + c^2 parameters instead of 9c^2."""
    return nn.Sequential(nn.Conv2d(channels, channels, 3, padding=padding, groups=channels, bias=False),
                         nn.Conv2d(channels, channels, 1, bias=False),
                         nn.BatchNorm2d(channels), nn.ReLU())
