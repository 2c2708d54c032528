"""Mixed precision: the model's forward pass under autocast; the loss, the backward and the update in fp32.

Wrapping the backward pass and the optimizer step in autocast too does not train (measured on Model3:
20% train accuracy after an epoch), so only the forward is cast. fp16 (CUDA only) also scales the loss.
"""
import contextlib
from pathlib import Path

import torch

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# What `auto` picks where bfloat16 runs natively: fp32. On the AVX-512 BF16 CPU of the README's Speed section
# bf16 makes Model3's compiled step 1.06-1.11x faster on fixed batches (eager: 0.89-1.18x), but in whole training
# passes it was slower: 10.5 s against 9.3 s an epoch (median) in validation runs of commit 3983130, at the same
# accuracy (results/tuning/model3-precision). `--precision bf16` is there to try it elsewhere.
AUTO_ON_NATIVE_BF16 = "fp32"


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


def resolve(precision: str, device: torch.device) -> str:
    """`auto` as this device's choice; fp16 only where a gradient scaler can run it (CUDA)."""
    if precision == "auto":
        return AUTO_ON_NATIVE_BF16 if native_bf16(device) else "fp32"
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
        return torch.autocast(self.device.type, dtype=DTYPES[self.name])

    def backward_and_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            loss.backward()
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()
