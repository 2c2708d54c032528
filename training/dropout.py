"""A cheaper exact dropout mask for the CPU.

nn.Dropout draws one Bernoulli number per activation; on the CPU that draw dominates the cost
(Model3 drops from about 2.4 million activations per batch of 128). In a run of Bernoulli(p)
trials the gaps between successes are independent Geometric(p) numbers, so the positions of the
dropped activations can be drawn directly: about p * n geometric draws instead of n Bernoulli
ones. Same distribution, same scaling by 1 / (1 - p), same global torch generator (so
`torch.manual_seed` governs it). Measured in benchmarks/speed.py.
"""
import math

import torch
from torch import nn


def dropped_positions(count: int, p: float) -> torch.Tensor:
    """Indices in [0, count) that are independently selected with probability p each."""
    expected = count * p
    chunk = int(expected + 8 * math.sqrt(expected) + 16)
    positions = torch.empty(chunk, dtype=torch.float64).geometric_(p).cumsum_(0).sub_(1)
    while positions[-1] < count:
        more = torch.empty(chunk, dtype=torch.float64).geometric_(p).cumsum_(0).add_(positions[-1])
        positions = torch.cat([positions, more])
    return positions[positions < count].long()


class Dropout(nn.Dropout):
    """nn.Dropout whose mask, on the CPU, comes from geometric gaps (see the module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu" or self.p == 1:
            return super().forward(x)
        keep = torch.full((x.numel(),), 1 / (1 - self.p), dtype=x.dtype)
        return x * keep.index_fill(0, dropped_positions(x.numel(), self.p), 0).view(x.shape)


def use_fast_dropout(model: nn.Module) -> int:
    """Switch every plain nn.Dropout in `model` to the fast one, in place; returns how many."""
    switched = 0
    for module in model.modules():
        if type(module) is nn.Dropout:
            module.__class__ = Dropout
            switched += 1
    return switched
