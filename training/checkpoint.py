"""Checkpoints: the best epoch's weights, and the last epoch's whole state so a run can resume exactly.

`state.pt` holds what the next epoch depends on: the model (weights and batch-norm statistics), the
optimizer (momentum buffers), the scheduler, every random generator the run draws from (torch's global
one, which the dropout uses; CUDA's; numpy's; Python's; the loaders' order and augmentation generators)
and the epochs recorded so far. It is written atomically after each epoch, so a crash while writing
leaves the previous state whole. It holds only tensors and plain values (numpy's and Python's generator states
as such), and is loaded with `weights_only=True`: a state file from anyone, however made, runs no code on
`--resume`; one that would (a crafted file, or one written before states were plain) is refused.
"""
import io
import pickle
import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.files import atomic_write_bytes
from core.settings import ConfigError
from training.optim import TrainingMethod

BEST_FILE = "best.pt"
STATE_FILE = "state.pt"


class StateError(ConfigError):
    """A run folder's state.pt is missing or cannot be loaded."""


def _write(path: Path, value) -> None:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def save_best(model: nn.Module, run_dir: Path) -> None:
    _write(run_dir / BEST_FILE, model.state_dict())


def random_state(generators: list[torch.Generator]) -> dict:
    """Every generator's state as tensors and plain values: numpy's Mersenne Twister as its key and position,
    Python's as its version, words and cached Gaussian."""
    kind, key, position, has_gauss, cached_gaussian = np.random.get_state()
    version, words, gauss_next = random.getstate()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": {"kind": kind, "key": torch.from_numpy(key.astype(np.int64)), "position": int(position),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
            "python": {"version": version, "words": torch.tensor(words, dtype=torch.int64), "gauss_next": gauss_next},
            "generators": [g.get_state() for g in generators]}


def restore_random_state(state: dict, generators: list[torch.Generator]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy = state["numpy"]
    np.random.set_state((numpy["kind"], numpy["key"].numpy().astype(np.uint32), numpy["position"],
                         numpy["has_gauss"], numpy["cached_gaussian"]))
    python = state["python"]
    random.setstate((python["version"], tuple(python["words"].tolist()), python["gauss_next"]))
    for generator, saved in zip(generators, state["generators"], strict=True):
        generator.set_state(saved)


@dataclass
class RunState:
    epoch: int  # the last finished epoch
    model: dict
    optimizer: dict
    scheduler: dict | None
    random: dict
    epochs: list[dict]  # the record's epochs up to `epoch`
    average: dict | None = None  # the averaged weights, for methods that keep them

    def restore(self, model: nn.Module, method: TrainingMethod, generators: list[torch.Generator]) -> None:
        model.load_state_dict(self.model)
        method.optimizer.load_state_dict(self.optimizer)
        if method.scheduler is not None:
            method.scheduler.load_state_dict(self.scheduler)
        if method.average is not None:
            method.average.load_state_dict(self.average)
        restore_random_state(self.random, generators)


def save_state(run_dir: Path, epoch: int, model: nn.Module, method: TrainingMethod,
               generators: list[torch.Generator], epochs: list[dict]) -> None:
    scheduler = method.scheduler.state_dict() if method.scheduler is not None else None
    average = method.average.state_dict() if method.average is not None else None
    _write(run_dir / STATE_FILE, {"epoch": epoch, "model": model.state_dict(), "optimizer": method.optimizer.state_dict(),
                                  "scheduler": scheduler, "random": random_state(generators), "epochs": epochs,
                                  "average": average})


def load_state(run_dir: Path) -> RunState:
    path = Path(run_dir) / STATE_FILE
    if not path.exists():
        raise StateError(f"{run_dir}: no saved state to resume from ({STATE_FILE} is missing)")
    try:
        return RunState(**torch.load(path, map_location="cpu", weights_only=True))
    except Exception as error:  # a truncated or foreign file fails in many ways; each is "cannot load"
        named = re.search(r"GLOBAL ([\w.]+)", str(error)) if isinstance(error, pickle.UnpicklingError) else None
        if named:  # it names code to run: a crafted file, or a state from before states were plain values
            raise StateError(f"{path}: refused: loading it would run code it names ({named.group(1)}); a state "
                             "written before states held only tensors cannot be resumed by this version") from None
        first = (str(error).strip().splitlines() or [""])[0]
        raise StateError(f"{path}: cannot load the saved state ({type(error).__name__}: {first})") from None
