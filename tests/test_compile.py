"""--compile: the training step under torch.compile, its hashed dropout mask, and when `auto` compiles."""
import math

import pytest
import torch
from torch import nn

from tests.conftest import main_cli, small_model3_run
from training import compiling
from training.compiling import CompiledTraining
from training.dropout import Dropout, hashed_keep_mask, use_fast_dropout

CPU = torch.device("cpu")
needs_compiler = pytest.mark.skipif(not compiling.can_compile(CPU), reason="no C++ compiler for torch.compile")


def test_hashed_mask_keeps_one_minus_p_independently_of_position_and_key():
    p, shape = 0.05, (64, 10, 26, 26)
    masks = torch.stack([hashed_keep_mask(shape, torch.tensor(key, dtype=torch.int32), p)
                         for key in (-2**31, -7, 0, 1, 2, 123_456_789)]).float()
    n = masks[0].numel()
    for mask in masks:
        assert abs(1 - mask.mean().item() - p) < 4 * math.sqrt(p * (1 - p) / n)
        dropped = 1 - mask.flatten()
        both = (dropped[1:] * dropped[:-1]).mean().item()  # neighbours in memory drop independently
        assert abs(both - p * p) < 4 * math.sqrt(p * p / n)
    for first, second in ((0, 1), (2, 3), (4, 5)):  # keys one apart (calls in one forward) give unrelated masks
        both = ((1 - masks[first]) * (1 - masks[second])).mean().item()
        assert abs(both - p * p) < 4 * math.sqrt(p * p / n)
    per_channel = (1 - masks).mean(dim=(0, 1, 3, 4))
    assert (per_channel - p).abs().max() < 4 * math.sqrt(p * (1 - p) / (n / 10))


class Twice(nn.Module):
    """One dropout module called twice in a forward, as Model3 calls its one module five times."""

    def __init__(self) -> None:
        super().__init__()
        self.dropout = nn.Dropout(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.dropout(x), self.dropout(x)])


@pytest.mark.slow  # a cold compile
@needs_compiler
def test_compiled_dropout_drops_scales_differs_per_call_and_follows_the_seed():
    model = Twice()
    [dropout] = use_fast_dropout(model)
    step = CompiledTraining(model, batch_size=32).train()
    x = torch.ones(32, 4096, requires_grad=True)
    torch.manual_seed(0)
    first, second = step(x)
    assert abs((first == 0).float().mean().item() - 0.2) < 0.01
    assert torch.allclose(first[first != 0], torch.tensor(1 / 0.8))
    assert not torch.equal(first == 0, second == 0)
    (first + 2 * second).sum().backward()
    assert torch.allclose(x.grad, first.detach() + 2 * second.detach())
    torch.manual_seed(0)
    again, _ = step(x)
    assert torch.equal(again, first)
    assert not torch.equal(step(x)[0], first)
    assert type(dropout) is Dropout
    assert step(torch.ones(7, 4096)).shape == (2, 7, 4096)  # a smaller last batch runs eagerly
    assert torch.equal(step.eval()(x)[0], x)


def test_auto_compiles_long_runs_only_and_on_without_a_compiler_is_one_line(tmp_path, monkeypatch):
    assert not compiling.should_compile("auto", CPU, steps=compiling.AUTO_MIN_STEPS - 1)
    assert not compiling.should_compile("off", CPU, steps=10**6)
    assert compiling.should_compile("auto", CPU, steps=compiling.AUTO_MIN_STEPS) == compiling.can_compile(CPU)
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    assert not compiling.can_compile(CPU)
    done = main_cli("--models", "model3", "--device", "cpu", "--compile", "on", "--out", str(tmp_path))
    assert done.returncode == 2 and "--compile on needs a C++ compiler" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not list(tmp_path.glob("*/metrics.json"))


@pytest.mark.slow  # a cold compile
@needs_compiler
def test_a_compiled_run_trains_and_is_recorded_and_reported_as_compiled(mnist_dir, tmp_path):
    done, record = small_model3_run(mnist_dir, tmp_path, "--compile", "on")
    assert "training step compiled" in done.stdout and "| model3 (compiled, limit-train 1024, limit-test 500, epochs=2) |" in done.stdout
    assert record["compiled"] is True and record["config"]["compile"] == "on"
