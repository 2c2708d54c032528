"""torch.compile for training: the forward and backward of full batches become fused C++ (CPU) or
Triton (CUDA) kernels.

On a CPU at Model3's size a training step is mostly passes over activations (batch norm, ReLU,
dropout, each forward and backward), not arithmetic; compiled, those passes fuse into one per
layer (benchmarks/speed.py). Only full batches of the recipe's size are compiled: the one smaller
batch that ends an epoch runs eagerly instead of paying for a second compilation.
"""
import importlib.util
import logging
import os
import shutil

import torch
from torch import nn

from training.dropout import Dropout, new_keys



class NoCudaRuntimeNotice(logging.Filter):
    """torch's C++ extension module says "No CUDA runtime is found, using CUDA_HOME=..." when it finds a CUDA toolkit
    on a machine without a GPU, as soon as compiling imports it: there nothing is wrong, so that line alone is
    dropped (every other message of that logger still shows)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No CUDA runtime is found")


logging.getLogger("torch.utils.cpp_extension").addFilter(NoCudaRuntimeNotice())

# Compiling costs a fixed time once per machine (inductor caches it) and saves a little of every step: `auto`
# compiles runs of this many steps or more, where the saving repays the first compilation.
AUTO_MIN_STEPS = 5000


def can_compile(device: torch.device) -> bool:
    """Whether torch.compile can build kernels here: a C++ compiler for the CPU, Triton for CUDA."""
    if device.type == "cpu":
        return shutil.which(os.environ.get("CXX", "g++")) is not None
    if device.type == "cuda":
        return importlib.util.find_spec("triton") is not None
    return False


def should_compile(setting: str, device: torch.device, steps: int) -> bool:
    """Whether a run of `steps` training steps compiles: `auto` where it can and the run is long enough;
    `on` where it cannot is an error."""
    if setting == "on" and not can_compile(device):
        needs = "Triton" if device.type == "cuda" else "a C++ compiler (g++ or $CXX)"
        raise ValueError(f"--compile on needs {needs} on {device.type}; use --compile off")
    return setting == "on" or (setting == "auto" and steps >= AUTO_MIN_STEPS and can_compile(device))


class CompiledTraining(nn.Module):
    """`model` whose training forward, on batches of `batch_size`, runs compiled; anything else runs it eagerly.

    Shares the model's parameters, so its optimizer, checkpoints and evaluation use the model itself.
    """

    def __init__(self, model: nn.Module, batch_size: int) -> None:
        super().__init__()
        self.model = model
        self.batch_size = batch_size
        self.compiled = torch.compile(model, dynamic=False)
        self.dropouts = [module for module in model.modules() if isinstance(module, Dropout)]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if not self.training or len(images) != self.batch_size:
            return self.model(images)
        new_keys(self.dropouts)
        return self.compiled(images)
