"""Training speed of Model3 on a CUDA GPU: what benchmarks/speed.py measures when CUDA is present.

In one session, back to back:
1. One training step at Model3's batch on a batch already on the GPU, as each way of running it: eager,
   torch.compile (default mode), torch.compile's reduce-overhead mode (its own CUDA graphs for the forward
   and backward), and the whole step as one captured CUDA graph (training/graphs.py, the default on CUDA).
2. Whole runs of `python main.py`: the published pipeline as published (batch 128, per-image PIL transforms
   through a DataLoader with 4 workers and pinned memory, eager steps) for a few epochs, scaled to 15; the
   default `python main.py --models model3` for its 15 epochs; and 20 seeds side by side (`--jobs`), as runs a
   minute. Training seconds are the records' per-epoch times (training and evaluation), summed.
"""
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import torch

import models
from provenance import git_commit
from records import load_record
from training import TrainingStep
from training.compiling import CompiledTraining
from training.graphs import GraphedStep
from training.precision import Precision

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED_EPOCHS = 3  # of the published pipeline's 15, timed and scaled: its epochs take equally long
SEEDS = "1-20"


def step_milliseconds(step: Callable, images: torch.Tensor, labels: torch.Tensor, steps: int = 300) -> float:
    for _ in range(30):  # compiling, capturing, allocating
        step(images, labels)
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step(images, labels)
    torch.cuda.synchronize()
    return (time.perf_counter() - started) / steps * 1000


def step_times(device: torch.device) -> dict[str, float]:
    batch = models.get_recipe("model3").batch_size
    images, labels = torch.randn(batch, 1, 28, 28, device=device), torch.randint(0, 10, (batch,), device=device)

    def fresh(forward: Callable[[torch.nn.Module], torch.nn.Module]) -> TrainingStep:
        model = models.get_model("model3").to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        return TrainingStep(forward(model), optimizer, Precision("fp32", device))

    ways = {
        "eager": lambda: fresh(lambda model: model),
        "torch.compile (default mode)": lambda: fresh(lambda model: CompiledTraining(model, batch)),
        "torch.compile, mode reduce-overhead": lambda: fresh(
            lambda model: torch.compile(model, mode="reduce-overhead", dynamic=False)),
        "one CUDA graph (the default)": lambda: GraphedStep(fresh(lambda model: model), images, labels),
    }
    return {name: step_milliseconds(make(), images, labels) for name, make in ways.items()}


def run_main(out: Path, *flags: str) -> tuple[float, list]:
    """`python main.py *flags` into `out`: its wall-clock seconds and its run records."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "main.py", *flags, "--out", str(out)], cwd=ROOT, capture_output=True,
                          text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"main.py {' '.join(flags)} failed: {done.stderr[-2000:]}")
    return wall, [load_record(p.parent) for p in sorted(out.glob("*/metrics.json"))]


def training_seconds(record) -> float:
    return sum(epoch.seconds for epoch in record.epochs)


def report(out: Path) -> dict:
    device = torch.device("cuda")
    out.mkdir(parents=True, exist_ok=True)
    figures = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "git_commit": git_commit(),
               "step_ms": step_times(device)}
    print(f"GPU: {figures['gpu']}; torch {figures['torch']}; commit {figures['git_commit']}")
    print("\n| one Model3 training step, batch 64, data on the GPU | ms |\n|---|---|")
    for name, ms in figures["step_ms"].items():
        print(f"| {name} | {ms:.2f} |")

    _, [published] = run_main(out / "published", "--models", "model3", "--loader", "torchvision", "--workers", "4",
                              "--batch-size", "128", "--compile", "off", "--cuda-graph", "off",
                              "--epochs", str(PUBLISHED_EPOCHS))
    wall, [default] = run_main(out / "default", "--models", "model3")
    seeds_wall, seeds = run_main(out / "seeds", "--models", "model3", "--seeds", SEEDS, "--jobs", "20")
    per_epoch = training_seconds(published) / len(published.epochs)
    figures["runs"] = {
        "published, 15 epochs (scaled from its first epochs)": per_epoch * 15,
        "default, 15 epochs": training_seconds(default),
        "default, wall clock of the command": wall,
        f"{len(seeds)} seeds with --jobs 20, wall clock": seeds_wall,
    }
    figures["default_graphed"] = default.graphed
    figures["runs_per_minute"] = len(seeds) / seeds_wall * 60
    figures["seeds_met"] = f"{sum(r.target_met() for r in seeds)}/{len(seeds)}"
    figures["seeds_window_mean"] = statistics.mean(r.window_accuracy() for r in seeds)
    print("\n| Model3, 15 epochs | seconds |\n|---|---|")
    for name, seconds in figures["runs"].items():
        print(f"| {name} | {seconds:.1f} |")
    ratio = figures["runs"]["published, 15 epochs (scaled from its first epochs)"] / training_seconds(default)
    print(f"\nDefault against published: {ratio:.1f}x; {figures['runs_per_minute']:.1f} runs a minute from 20 "
          f"side by side; their test target met {figures['seeds_met']}, mean over the window "
          f"{figures['seeds_window_mean']:.3f}%")
    (out / "cuda-speed.json").write_text(json.dumps(figures, indent=2) + "\n")
    return figures
