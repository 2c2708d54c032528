"""Small shared helpers: seeding, device choice, model summaries, the run log."""
import contextlib
import copy
import io
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

IMAGE_SHAPE = (1, 28, 28)  # an MNIST image: one channel, 28 x 28 pixels
CLASSES = 10  # the digits


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def cuda_available() -> bool:
    return torch.cuda.is_available()


def mps_available() -> bool:
    return hasattr(torch.backends, "mps") and torch.backends.mps.is_available()


def pick_device(name: str = "auto") -> torch.device:
    """'auto' takes CUDA, then MPS, then the CPU; a named device that is not there is a ValueError."""
    if name == "auto":
        return torch.device("cuda" if cuda_available() else "mps" if mps_available() else "cpu")
    available = {"cpu": True, "cuda": cuda_available(), "mps": mps_available()}
    if name not in available:
        raise ValueError(f"unknown device {name!r}: choose auto, cpu, cuda or mps")
    if not available[name]:
        raise ValueError(f"--device {name} was asked for but {name.upper()} is not available on this machine")
    return torch.device(name)


@dataclass
class LayerGeometry:
    name: str
    output_shape: tuple[int, ...]
    receptive_field: int
    jump: int
    macs: int
    parameters: int  # the layer's own, once per call: a layer used twice lists its weights twice, as torchsummary does


def _kernel_stride(module: nn.Module) -> tuple[int, int, int] | None:
    """(kernel, stride, dilation) along one axis for layers that change the receptive field."""
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        pick = lambda v: v[0] if isinstance(v, tuple) else v  # noqa: E731 - square kernels throughout
        dilation = pick(getattr(module, "dilation", 1))
        stride = pick(module.stride) if module.stride is not None else pick(module.kernel_size)
        return pick(module.kernel_size), stride, dilation
    return None


def layer_geometry(model: nn.Module, input_size: tuple[int, int, int] = IMAGE_SHAPE) -> list[LayerGeometry]:
    """Receptive field and multiply-accumulates per image after each leaf layer, in call order."""
    rows: list[LayerGeometry] = []
    state = {"rf": 1, "jump": 1}

    def record(module: nn.Module, inputs, output) -> None:
        geometry = _kernel_stride(module)
        if geometry:
            kernel, stride, dilation = geometry
            state["rf"] += (dilation * (kernel - 1)) * state["jump"]
            state["jump"] *= stride
        macs = 0
        if isinstance(module, nn.Conv2d):
            kernel_h, kernel_w = module.kernel_size
            macs = output[0].numel() * (module.in_channels // module.groups) * kernel_h * kernel_w
        elif isinstance(module, nn.Linear):
            macs = module.in_features * module.out_features
        counter = sum(1 for _ in rows) + 1
        rows.append(LayerGeometry(f"{type(module).__name__}-{counter}", tuple(output.shape[1:]),
                                  state["rf"], state["jump"], macs, parameter_count(module)))

    probe = copy.deepcopy(model).cpu().eval()
    hooks = [m.register_forward_hook(record) for m in probe.modules() if not list(m.children())]
    try:
        with torch.inference_mode():
            probe(torch.zeros(1, *input_size))
    finally:
        for hook in hooks:
            hook.remove()
    return rows


def torchsummary_table(model: nn.Module, input_size: tuple[int, int, int] = IMAGE_SHAPE) -> str:
    """torchsummary's table as text, computed on a CPU copy so it works whatever device the model is on."""
    from torchsummary import summary

    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        summary(copy.deepcopy(model).cpu(), input_size, device="cpu")
    return text.getvalue().rstrip()


def model_summary(model: nn.Module, input_size: tuple[int, int, int] = IMAGE_SHAPE) -> str:
    """torchsummary's table plus what it leaves out: receptive field per layer and MACs per image, and, for a network
    that uses a layer more than once, its parameters counted once (torchsummary's total counts each use)."""
    rows = layer_geometry(model, input_size)
    lines = [torchsummary_table(model, input_size), ""]
    listed, parameters = sum(r.parameters for r in rows), parameter_count(model)
    if listed > parameters:  # a layer called more than once; a layer never called lists less, and is no sharing
        lines += [f"Shared weights: the table lists a layer once per use, so its total counts {listed:,}; the network "
                  f"has {parameters:,} parameters, each counted once (what records, tables and budgets use)", ""]
    lines.append(f"{'Layer':>18}  {'Receptive field':>15}  {'Jump':>4}  {'MACs/image':>12}")
    lines += [f"{r.name:>18}  {r.receptive_field:>15}  {r.jump:>4}  {r.macs:>12,}" for r in rows]
    lines.append(f"Receptive field at the output: {rows[-1].receptive_field}x{rows[-1].receptive_field}")
    lines.append(f"Multiply-accumulates per image (forward): {sum(r.macs for r in rows):,}")
    return "\n".join(lines)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class RunLog:
    """Prints to the console (unless quiet) and appends the same lines to a run's log.txt."""

    def __init__(self, path: Path, quiet: bool) -> None:
        self.file = open(path, "a", buffering=1)
        self.quiet = quiet

    def __call__(self, line: str = "") -> None:
        if not self.quiet:
            print(line, flush=True)
        self.file_only(line)

    def file_only(self, line: str) -> None:
        """A full disk stops the log, not the run: the run record says what went wrong."""
        with contextlib.suppress(OSError):
            self.file.write(line + "\n")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
