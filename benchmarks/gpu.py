"""Every GPU figure of the speed page in one go, in stages that cannot waste a lent GPU session.

    python benchmarks/gpu.py OUT                                # a CUDA machine with MNIST: 8 minutes at most
    source .gpu/setup.sh && python3 benchmarks/gpu.py "$OUT"    # the lent machine (benchmarks/README.md)
    python benchmarks/gpu.py OUT --dry-run                      # its plumbing on a CPU, in about a minute

The stages run in this order, each in its own process under its own time limit (STAGES): the checks (imports,
CUDA, MNIST; nothing else runs without them), one Model3 training step eager and as one CUDA graph, the default
`python main.py --models model3`, the published pipeline as published (its recipe, per-image PIL transforms,
nn.Dropout, eager steps) for a few epochs, Model3's 20 test seeds side by side, the CUDA tests, and the compiled
steps (cold compiles, so last). Each stage writes OUT/<stage>.json (ok, failed, timed out or skipped, its figures,
its seconds) and OUT/<stage>.log the moment it ends; OUT/summary.json gathers them. A failed or timed-out stage is
recorded and the next one starts. Every run's metrics.json and log.txt are copied to OUT/<run id>/, as results/
keeps them. `--dry-run` runs the same stages on the CPU at tiny sizes, the graph stood in for (a test runs it).
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.files import atomic_write_json  # noqa: E402  (no torch: the parent process only orchestrates)
from core.records import load_record  # noqa: E402

PUBLISHED_EPOCHS = 3  # of the published pipeline's 15, timed and scaled: its epochs do the same work
SEEDS, SEED_JOBS = "1-20", 10  # side by side in waves of ten: a wave that finishes counts even if the next cannot
TINY = ["--device", "cpu", "--compile", "off", "--epochs", "1", "--limit-train", "256", "--limit-test", "200"]


@dataclass(frozen=True)
class Stage:
    name: str
    limit: float  # seconds, then the stage's processes are stopped
    what: str


STAGES = [
    Stage("checks", 30, "imports, CUDA and MNIST"),
    Stage("step", 45, "one Model3 training step at its batch, eager and as one CUDA graph"),
    Stage("default", 60, "python main.py --models model3 (15 epochs)"),
    Stage("published", 60, f"the published pipeline as published, {PUBLISHED_EPOCHS} epochs scaled to 15"),
    Stage("seeds", 150, f"Model3, test seeds {SEEDS}, --jobs {SEED_JOBS}"),
    Stage("tests", 45, "the CUDA-graph tests (tests/test_graphs.py) on the GPU"),
    Stage("compile", 90, "the compiled steps: torch.compile's default and reduce-overhead modes, cold"),
]


# --- the stages that run in a child process of this script ------------------------------------------------

def check_setup(dry_run: bool) -> dict:
    import importlib

    missing = []
    for name in ("torch", "torchvision", "torchsummary", "tqdm", "numpy", "pytest"):  # what the stages use
        try:
            importlib.import_module(name)
        except ImportError as error:
            missing.append(f"{name} ({error})")
    if missing:
        raise SystemExit(f"cannot import {', '.join(missing)}: the setup did not install them")
    import torch

    from data.mnist import ensure_mnist, resolve_data_dir

    if not dry_run and not torch.cuda.is_available():
        raise SystemExit("no CUDA here")
    ensure_mnist(resolve_data_dir(None), log=lambda line: None)  # verified, or one line saying why not
    return {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu (dry run)",
            "torch": torch.__version__}


def step_milliseconds(ways: dict[str, Callable[[], Callable]], dry_run: bool) -> dict[str, dict[str, float]]:
    """Each way's first call (compiling or capturing included) and its steady step, in ms, on one fixed batch."""
    import torch

    import models

    device = torch.device("cpu" if dry_run else "cuda")
    synchronize = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    batch = models.get_recipe("model3").batch_size
    images, labels = torch.randn(batch, 1, 28, 28, device=device), torch.randint(0, 10, (batch,), device=device)
    warm_up, steps = (2, 3) if dry_run else (30, 300)
    times = {}
    for name, make in ways.items():
        started = time.perf_counter()
        step = make(device, images, labels)
        step(images, labels)
        synchronize()
        first = time.perf_counter() - started
        for _ in range(warm_up):
            step(images, labels)
        synchronize()
        started = time.perf_counter()
        for _ in range(steps):
            step(images, labels)
        synchronize()
        times[name] = {"first_call_ms": round(first * 1000, 1),
                       "step_ms": round((time.perf_counter() - started) / steps * 1000, 3)}
        print(f"{name}: {times[name]['step_ms']} ms a step (first call {times[name]['first_call_ms']} ms)", flush=True)
    return times


def model3_step(forward: Callable | None = None) -> Callable:
    """A maker of Model3's training step on `device`, its forward the model or `forward(model)`."""
    def make(device, images, labels):
        import torch

        import models
        from training import TrainingStep
        from training.precision import Precision

        model = models.get_model("model3").to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        return TrainingStep(forward(model) if forward else model, optimizer, Precision("fp32", device))
    return make


def graphed(device, images, labels):
    from training.graphs import GraphedStep, StandInGraph

    step = model3_step()(device, images, labels)
    stand_in = StandInGraph(step.forward, step.optimizer) if device.type == "cpu" else None
    return GraphedStep(step, images, labels, graph=stand_in)


def step_stage(dry_run: bool) -> dict:
    return {"steps": step_milliseconds({"eager": model3_step(), "one CUDA graph (the default)": graphed}, dry_run)}


def compile_stage(dry_run: bool) -> dict:
    if dry_run:
        return {"skipped": "dry run: compiling on a CPU takes longer than every other stage together"}
    import torch

    from training.compiling import CompiledTraining

    return {"steps": step_milliseconds({
        "torch.compile (default mode)": model3_step(lambda model: CompiledTraining(model, 64)),
        "torch.compile, mode reduce-overhead": model3_step(
            lambda model: torch.compile(model, mode="reduce-overhead", dynamic=False)),
    }, dry_run)}


CHILD_STAGES = {"checks": check_setup, "step": step_stage, "compile": compile_stage}


# --- the stages that run main.py ----------------------------------------------------------------------------

def main_flags(stage: str, dry_run: bool) -> list[str]:
    published = ["--recipe", "published", "--loader", "torchvision", "--torch-dropout", "--compile", "off",
                 "--cuda-graph", "off"]
    if dry_run:
        return {"default": ["--models", "model3", *TINY],
                "published": ["--models", "model3", *published, "--workers", "0", *TINY],
                "seeds": ["--models", "model3", "--seeds", "1-2", "--jobs", str(min(2, os.cpu_count() or 1)),
                          *TINY]}[stage]
    return {"default": ["--models", "model3"],
            "published": ["--models", "model3", *published, "--workers", "4", "--epochs", str(PUBLISHED_EPOCHS)],
            "seeds": ["--models", "model3", "--seeds", SEEDS, "--jobs", str(SEED_JOBS)]}[stage]


def training_seconds(record) -> float:
    return sum(epoch.seconds for epoch in record.epochs)


def run_figures(stage: str, records: list, wall: float) -> dict:
    """What a main.py stage measured, from its records."""
    figures = {"wall_seconds": round(wall, 1), "runs": len(records),
               "completed": sum(r.status == "completed" for r in records)}
    done = [r for r in records if r.status == "completed"]
    if stage == "published" and records and records[0].epochs:
        per_epoch = training_seconds(records[0]) / len(records[0].epochs)
        figures["training_seconds_15_epochs_scaled"] = round(per_epoch * 15, 1)
    elif stage == "default" and records:
        record = records[0]
        figures |= {"training_seconds": round(training_seconds(record), 1), "graphed": record.graphed,
                    "graph_reason": record.graph_reason, "best_test": record.best_eval_acc,
                    "target_met": record.target_met()}
    elif stage == "seeds" and done:
        met = [r.target_met() for r in done]
        figures |= {"target_met": f"{sum(bool(m) for m in met)}/{len(met)}",
                    "window_mean": round(statistics.mean(r.window_accuracy() for r in done), 3),
                    "runs_a_minute": round(len(done) / wall * 60, 2), "graphed": sorted({r.graphed for r in done})}
    return figures


# --- the orchestration ---------------------------------------------------------------------------------------

def run_limited(command: list[str], limit: float, log: Path) -> tuple[str, float]:
    """Run `command` in its own process group, its output into `log`; past `limit` seconds stop the group (SIGTERM,
    then SIGKILL). Returns ("ok" | "failed" | "timed out", seconds)."""
    started = time.perf_counter()
    with open(log, "w") as output:
        process = subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True, env=os.environ | {"PYTHONUNBUFFERED": "1"})
        try:
            code = process.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)  # main.py ends its runs as interrupted, their records whole
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            return "timed out", time.perf_counter() - started
    return ("ok" if code == 0 else "failed"), time.perf_counter() - started


def copy_records(runs: Path, out: Path) -> list:
    """Each run folder's record and log, to OUT/<run id>/; the records, in run order."""
    records = []
    for path in sorted(runs.glob("*/metrics.json")):
        target = out / path.parent.name
        target.mkdir(exist_ok=True)
        for name in ("metrics.json", "log.txt"):
            if (path.parent / name).exists():
                shutil.copy2(path.parent / name, target / name)
        records.append(load_record(path.parent))
    return records


def run_stage(stage: Stage, out: Path, dry_run: bool, limit: float, scratch: Path) -> dict:
    log = out / f"{stage.name}.log"
    figures_file = out / f"{stage.name}.json"
    figures_file.unlink(missing_ok=True)
    if stage.name in CHILD_STAGES:
        command = [sys.executable, __file__, str(out), "--stage", stage.name] + (["--dry-run"] if dry_run else [])
        status, seconds = run_limited(command, limit, log)
        figures = json.loads(figures_file.read_text()).get("figures", {}) if figures_file.exists() else {}
    elif stage.name == "tests":
        selection = ["-k", "on_cuda"] if dry_run else []
        status, seconds = run_limited([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                       "tests/test_graphs.py", *selection], limit, log)
        lines = log.read_text().strip().splitlines()
        figures = {"result": lines[-1] if lines else ""}
    else:
        runs = scratch / stage.name
        status, seconds = run_limited([sys.executable, "main.py", *main_flags(stage.name, dry_run), "--out",
                                       str(runs)], limit, log)
        figures = run_figures(stage.name, copy_records(runs, out), seconds)
    if status != "ok":
        figures["error_tail"] = log.read_text()[-1500:]
    result = {"stage": stage.name, "what": stage.what, "status": status, "seconds": round(seconds, 1),
              "limit": limit, "figures": figures}
    atomic_write_json(figures_file, result)
    return result


def parse_limits(items: list[str]) -> dict[str, float]:
    limits = {}
    for item in items:
        name, _, seconds = item.partition("=")
        if name not in {stage.name for stage in STAGES} or not seconds:
            raise SystemExit(f"--limit takes STAGE=SECONDS with a stage of {', '.join(s.name for s in STAGES)}")
        limits[name] = float(seconds)
    return limits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", help="folder for the stages' figures, logs and run records")
    parser.add_argument("--dry-run", action="store_true", help="on the CPU, tiny sizes, the graph stood in for")
    parser.add_argument("--limit", action="append", default=[], metavar="STAGE=SECONDS",
                        help="another time limit for a stage (repeatable)")
    parser.add_argument("--stage", help=argparse.SUPPRESS)  # the child process of one stage
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.stage:
        atomic_write_json(out / f"{args.stage}.json", {"figures": CHILD_STAGES[args.stage](args.dry_run)})
        return 0
    limits = {stage.name: stage.limit for stage in STAGES} | parse_limits(args.limit)
    print(f"{len(STAGES)} stages, {sum(limits.values()) / 60:.1f} minutes at most"
          + (" (dry run on the CPU)" if args.dry_run else ""), flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="gpu-runs-") as scratch:
        for stage in STAGES:
            result = run_stage(stage, out, args.dry_run, limits[stage.name], Path(scratch))
            results.append(result)
            atomic_write_json(out / "summary.json", {"dry_run": args.dry_run, "stages": results})
            print(f"{stage.name}: {result['status']} in {result['seconds']:.0f} s (limit {limits[stage.name]:.0f}) "
                  f"{json.dumps({k: v for k, v in result['figures'].items() if k != 'error_tail'})}", flush=True)
            if stage.name == "checks" and result["status"] != "ok":
                print(f"stopping: the checks failed (see {out / 'checks.log'})", file=sys.stderr)
                return 2
    return 0 if all(r["status"] in ("ok",) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
