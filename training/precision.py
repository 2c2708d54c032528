"""Mixed precision: the model's forward pass under autocast; the loss, the backward and the update in fp32.

Only the forward is cast: with the backward pass and the optimizer step under autocast too, Model3 does
not train. fp16 (CUDA only) also scales the loss.
"""
import contextlib
from pathlib import Path

import torch

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def native_bf16(device: torch.device) -> bool:
    """bfloat16 arithmetic in hardware: CUDA's bf16 support, or a CPU with AVX-512 BF16 or AMX."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> str:
    """`auto` is fp32 on every device: where bfloat16 runs natively it sped up the compiled step on fixed batches but
    made whole training passes slower at the same accuracy (benchmarks/README.md, results/tuning/model3-precision);
    `--precision bf16` is there to try it elsewhere. fp16 only where a gradient scaler can run it (CUDA)."""
    if precision == "auto":
        return "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("--precision fp16 needs CUDA (on the CPU use bf16)")
    return precision


class Precision:
    """How one run computes: `autocast()` around the forward, `backward_and_step()` for the update."""

    def __init__(self, name: str, device: torch.device) -> None:
        self.name = name
        self.device = device
        self.scaler = torch.amp.GradScaler("cuda") if name == "fp16" else None

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.name not in DTYPES:
            return contextlib.nullcontext()
        # A captured CUDA graph must recompute the casts of the weights every replay, not reuse a cached copy.
        return torch.autocast(self.device.type, dtype=DTYPES[self.name], cache_enabled=self.device.type != "cuda")

    def backward_and_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            loss.backward()
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()
