"""A cheaper exact dropout mask for the CPU.

nn.Dropout draws one Bernoulli number per activation; on the CPU that draw dominates the cost
(Model3 drops from 18,600 activations per image, 1.2 million in a batch of 64). In a run of Bernoulli(p)
trials the gaps between successes are independent Geometric(p) numbers, so the positions of the
dropped activations can be drawn directly: about p * n geometric draws instead of n Bernoulli
ones. Same distribution, same scaling by 1 / (1 - p), same global torch generator (so
`torch.manual_seed` governs it). The gaps come from uniform numbers by inversion, vectorised:
about twice as fast as Tensor.geometric_, which takes a logarithm per draw in its serial
random-number loop. Measured in benchmarks/speed.py.

Under torch.compile the positions cannot be drawn (their number varies from call to call), and
inductor's own random numbers cost a Philox evaluation per activation. There the mask is a hash
of each activation's index and a per-call key: one multiply-xorshift pass that the compiler fuses
into the batch norm and ReLU around it. The key is drawn from the global torch generator before
every compiled forward (`new_keys`), and each call of the module in that forward adds its number
to it, so `torch.manual_seed` still governs the masks and no two calls share one. (Advancing the
key in place inside the graph would be simpler, but the compiled backward then recomputes the
masks from the advanced key: a test checks that the gradient's mask is the forward's.)
"""
import math

import torch
from torch import nn


def geometric_gaps(n: int, p: float) -> torch.Tensor:
    """n independent Geometric(p) numbers on {1, 2, ...}: P(k) = p (1 - p)^(k - 1), as float64."""
    uniform = torch.empty(n, dtype=torch.float64).uniform_()
    return uniform.neg_().log1p_().div_(math.log1p(-p)).floor_().add_(1)


def dropped_positions(count: int, p: float) -> torch.Tensor:
    """Indices in [0, count) that are independently selected with probability p each."""
    expected = count * p
    chunk = int(expected + 8 * math.sqrt(expected) + 16)
    positions = geometric_gaps(chunk, p).cumsum_(0).sub_(1)
    while positions[-1] < count:
        positions = torch.cat([positions, geometric_gaps(chunk, p).cumsum_(0).add_(positions[-1])])
    return positions[positions < count].long()


def zero_and_scale(x: torch.Tensor, positions: torch.Tensor, scale: float) -> torch.Tensor:
    out = x.contiguous() * scale
    out.view(-1).index_fill_(0, positions, 0)
    return out


class _ZeroAndScale(torch.autograd.Function):
    """x * scale with the given flat positions zeroed; the backward pass does the same to the gradient.

    Zeroing in place after one scaling pass avoids building and multiplying a full mask tensor.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, positions: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(positions)
        ctx.scale = scale
        return zero_and_scale(x, positions, scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        positions, = ctx.saved_tensors
        return zero_and_scale(grad, positions, ctx.scale), None, None


def hashed_keep_mask(shape: torch.Size, key: torch.Tensor, p: float) -> torch.Tensor:
    """True where an activation is kept: a 32-bit integer hash of (index, key), uniform, compared with p.

    The hash is lowbias32 (Chris Wellons' hash-prospector), in int32 arithmetic that wraps around;
    the shifts are masked to make them logical.
    """
    x = torch.arange(math.prod(shape), dtype=torch.int32, device=key.device).view(shape) * -1640531535 + key
    x = (x ^ ((x >> 16) & 0xFFFF)) * 0x21F0AAAD
    x = (x ^ ((x >> 15) & 0x1FFFF)) * 0x735A2D97
    x = x ^ ((x >> 15) & 0x1FFFF)
    return x >= round(p * 2**32) - 2**31


class Dropout(nn.Dropout):
    """nn.Dropout whose mask, on the CPU, costs a fraction of nn.Dropout's (see the module docstring)."""

    key: torch.Tensor
    calls: int = 0  # calls since the key was drawn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu" or self.p == 1:
            return super().forward(x)
        if torch.compiler.is_compiling():
            self.calls += 1  # a constant of the traced graph: the key stays an input, never mutated in it
            return x * hashed_keep_mask(x.shape, self.key + self.calls, self.p) * (1 / (1 - self.p))
        return _ZeroAndScale.apply(x, dropped_positions(x.numel(), self.p), 1 / (1 - self.p))


def use_fast_dropout(model: nn.Module) -> list[Dropout]:
    """Switch every plain nn.Dropout in `model` to the fast one, in place; returns them."""
    switched = []
    for module in model.modules():
        if type(module) is nn.Dropout:
            module.__class__ = Dropout
            module.register_buffer("key", torch.zeros((), dtype=torch.int32), persistent=False)
            switched.append(module)
    return switched


def new_keys(dropouts: list[Dropout]) -> None:
    """Fresh keys for the hashed masks of the next compiled forward, from the global torch generator."""
    for dropout in dropouts:
        dropout.key.random_(-2**31, 2**31 - 1)
        dropout.calls = 0
