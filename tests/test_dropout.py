import math

import torch
from torch import nn

import models
from training.dropout import Dropout, dropped_positions, geometric_gaps, use_fast_dropout
from utils import torchsummary_table


def test_drop_rate_and_scaling_match_bernoulli():
    torch.manual_seed(0)
    layer = Dropout(0.05).train()
    out = layer(torch.ones(2000, 1000))
    dropped = (out == 0).float().mean().item()
    assert abs(dropped - 0.05) < 4 * math.sqrt(0.05 * 0.95 / out.numel())
    assert torch.allclose(out[out != 0], torch.tensor(1 / 0.95))


def test_drops_are_independent_of_position():
    torch.manual_seed(1)
    masks = torch.stack([Dropout(0.2).train()(torch.ones(64)) == 0 for _ in range(5000)]).float()
    per_position = masks.mean(dim=0)
    assert (per_position - 0.2).abs().max() < 4 * math.sqrt(0.2 * 0.8 / 5000)
    neighbours = (masks[:, :-1] * masks[:, 1:]).mean().item()
    assert abs(neighbours - 0.04) < 0.003


def test_gaps_follow_the_geometric_distribution():
    torch.manual_seed(6)
    p, n = 0.05, 400_000
    gaps = geometric_gaps(n, p)
    assert gaps.min() >= 1 and torch.equal(gaps, gaps.floor())
    for k in (1, 2, 10, 50):
        expected = p * (1 - p) ** (k - 1)
        assert abs((gaps == k).double().mean().item() - expected) < 4 * math.sqrt(expected / n)
    assert abs(gaps.mean().item() - 1 / p) < 4 * math.sqrt((1 - p) / p**2 / n)


def test_positions_cover_long_tensors_and_stay_in_range():
    torch.manual_seed(2)
    positions = dropped_positions(100_000, 0.5)
    assert positions.min() >= 0 and positions.max() < 100_000
    assert torch.equal(positions, positions.unique())
    assert abs(len(positions) - 50_000) < 4 * math.sqrt(25_000)


def test_same_seed_same_mask_and_eval_is_identity():
    layer = Dropout(0.1).train()
    torch.manual_seed(3)
    first = layer(torch.ones(1000))
    torch.manual_seed(3)
    assert torch.equal(first, layer(torch.ones(1000)))
    x = torch.randn(100)
    assert torch.equal(layer.eval()(x), x)


def test_gradient_is_the_mask():
    torch.manual_seed(4)
    x = torch.ones(10_000, requires_grad=True)
    out = Dropout(0.3).train()(x)
    out.sum().backward()
    assert torch.equal(x.grad, out.detach())


def test_gradient_follows_the_mask_for_strided_inputs():
    torch.manual_seed(5)
    x = torch.randn(40, 30).t().requires_grad_()
    weights = torch.randn(30, 40)
    out = Dropout(0.3).train()(x)
    (out * weights).sum().backward()
    kept = out.detach() != 0
    assert torch.allclose(x.grad, torch.where(kept, weights / 0.7, torch.zeros(())))
    assert torch.allclose(out.detach()[kept], x.detach()[kept] / 0.7)


def test_swap_keeps_model3_shared_module_and_summary():
    model = models.get_model("model3")
    before = torchsummary_table(model)
    assert use_fast_dropout(model) == [model.dropout]
    assert type(model.dropout) is Dropout and isinstance(model.dropout, nn.Dropout)
    assert torchsummary_table(model) == before


def test_bf16_inputs_keep_their_dtype_and_the_same_mask():
    layer = Dropout(0.05).train()
    x = torch.randn(64, 16, 10, 10)
    torch.manual_seed(3)
    full = layer(x)
    torch.manual_seed(3)
    half = layer(x.bfloat16())
    assert half.dtype == torch.bfloat16
    assert torch.equal(half == 0, full == 0)
    kept = full != 0
    assert torch.allclose(half[kept].float(), full[kept], rtol=1e-2)
