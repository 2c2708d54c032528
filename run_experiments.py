"""Run experiments: an ExperimentConfig in, a RunRecord out (and on disk, in `<out>/<run-id>/`).

    from run_experiments import config_for, run_experiment
    record = run_experiment(config_for("model3", seed=1, epochs=2, limit_train=2048))
"""
import copy
import io
import math
import multiprocessing
import os
import platform
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Callable

import numpy
import torch
import torchvision

import models
from data.loaders import LOADERS, LoaderSettings, make_loaders
from data.mnist import ensure_mnist, resolve_data_dir
from training import Diverged, evaluate, train_epoch
from training.dropout import use_fast_dropout
from training.loops import test_line
from utils import atomic_write_bytes, atomic_write_json, layer_geometry, model_summary, parameter_count, pick_device, seed_everything

ROOT = Path(__file__).resolve().parent
TARGET_ACCURACY = 99.40


class ConfigError(ValueError):
    """A setting that cannot work; raised before any training starts."""


@dataclass(frozen=True, kw_only=True)
class ExperimentConfig(models.Hyperparameters):
    """One experiment: a model's hyperparameters (from its recipe, then overrides) and where and how to run it."""
    model: str
    seed: int
    test_batch_size: int = 128  # evaluation on a CPU runs twice as fast as at 1000 (benchmarks/speed.py)
    device: str = "auto"
    data_dir: str | None = None
    out: str = "runs"
    loader: str = "tensor"
    workers: int = 0
    limit_train: int | None = None
    limit_test: int | None = None
    fast_dropout: bool = True
    progress: bool = True

    def validate(self) -> None:
        checks = [
            (self.epochs > 0, f"--epochs must be a positive number of epochs, got {self.epochs}"),
            (self.batch_size > 0, f"--batch-size must be positive, got {self.batch_size}"),
            (self.test_batch_size > 0, f"test batch size must be positive, got {self.test_batch_size}"),
            (self.lr >= 0 and math.isfinite(self.lr), f"--lr must be a finite number >= 0, got {self.lr}"),
            (self.momentum >= 0, f"--momentum must be >= 0, got {self.momentum}"),
            (self.weight_decay >= 0, f"--weight-decay must be >= 0, got {self.weight_decay}"),
            (self.step_size > 0, f"--step-size must be positive, got {self.step_size}"),
            (self.gamma > 0, f"--gamma must be positive, got {self.gamma}"),
            (self.workers >= 0, f"--workers must be >= 0, got {self.workers}"),
            (self.loader in LOADERS, f"--loader must be one of {', '.join(LOADERS)}, got {self.loader!r}"),
            (self.limit_train is None or self.limit_train > 0, f"--limit-train must be positive, got {self.limit_train}"),
            (self.limit_test is None or self.limit_test > 0, f"--limit-test must be positive, got {self.limit_test}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        try:
            models.canonical_name(self.model)
            pick_device(self.device)
        except ValueError as error:
            raise ConfigError(str(error)) from None

    def loader_settings(self) -> LoaderSettings:
        return LoaderSettings(self.batch_size, self.test_batch_size, self.augment, self.loader, self.workers,
                              self.seed, self.limit_train, self.limit_test)


def config_for(model: str, seed: int = 1, **overrides) -> ExperimentConfig:
    """The model's recipe, then any overrides (None means: keep the recipe's value)."""
    name = models.canonical_name(model)
    recipe = models.get_recipe(name)
    settings = {f.name: getattr(recipe, f.name) for f in fields(models.Hyperparameters)}
    settings.update({key: value for key, value in overrides.items() if value is not None})
    return ExperimentConfig(model=name, seed=seed, **settings)


@dataclass
class EpochRecord:
    epoch: int
    lr: float
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    seconds: float


@dataclass
class RunRecord:
    run_id: str
    model: str
    parameters: int
    receptive_field: int
    macs_per_image: int
    seed: int
    device: str
    config: dict
    versions: dict
    git_commit: str
    started: str
    machine: str = "unknown"
    status: str = "running"
    reason: str | None = None
    epochs: list[EpochRecord] = field(default_factory=list)
    best_test_acc: float | None = None
    best_epoch: int | None = None
    seconds: float = 0.0

    @property
    def best_train_acc(self) -> float | None:
        return max((e.train_acc for e in self.epochs), default=None)

    @property
    def final_test_acc(self) -> float | None:
        return self.epochs[-1].test_acc if self.epochs else None

    def epochs_at_or_above(self, accuracy: float = TARGET_ACCURACY) -> int:
        return sum(e.test_acc >= accuracy for e in self.epochs)

    def target_met(self) -> bool | None:
        """None when the model has no accuracy target, or the run stopped before its last epoch."""
        recipe = models.get_recipe(self.model)
        if recipe.target_test_acc is None or len(self.epochs) < self.config["epochs"]:
            return None
        window = self.epochs[-recipe.target_window:]
        return sum(e.test_acc >= recipe.target_test_acc for e in window) >= recipe.target_hits

    def to_json(self) -> dict:
        return asdict(self) | {"best_train_acc": self.best_train_acc, "final_test_acc": self.final_test_acc}

    @classmethod
    def from_json(cls, value: dict) -> "RunRecord":
        known = {f.name for f in fields(cls)}
        record = cls(**{k: v for k, v in value.items() if k in known})
        record.epochs = [EpochRecord(**e) for e in record.epochs]
        return record


def library_versions() -> dict:
    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": numpy.__version__}


def machine_description() -> str:
    """CPU model and core count, e.g. 'AMD EPYC 9B14, 2 cores' (platform.processor() is often empty on Linux)."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def describe_device(device: torch.device) -> str:
    return f"{device} ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else str(device)


def git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if commit.returncode != 0:
        return "unknown"
    return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


class RunLog:
    """Prints to the console (unless quiet) and appends the same lines to the run's log.txt."""

    def __init__(self, path: Path, quiet: bool) -> None:
        self.file = open(path, "a", buffering=1)
        self.quiet = quiet

    def __call__(self, line: str = "") -> None:
        if not self.quiet:
            print(line, flush=True)
        self.file.write(line + "\n")

    def file_only(self, line: str) -> None:
        self.file.write(line + "\n")

    def close(self) -> None:
        self.file.close()


def new_run_dir(out: Path, model: str, seed: int) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for attempt in range(1000):
        suffix = f"-{attempt}" if attempt else ""
        run_dir = out / f"{stamp}-{model}-seed{seed}{suffix}"
        try:
            run_dir.mkdir(parents=True)
            return run_dir
        except FileExistsError:
            continue
    raise ConfigError(f"cannot find a free run folder name in {out}")


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def estimate_seconds(config: ExperimentConfig, model: torch.nn.Module, data_dir: Path, device: torch.device,
                     train_batches: int, test_batches: int, timed_batches: int = 3) -> float:
    """Time a few training and test batches on a copy of the model, leaving every RNG as it was.

    The first batch of each kind is not timed: it pays for allocations that later batches reuse.
    """
    warm_up = 2
    settings = replace(config.loader_settings(), limit_train=(warm_up + timed_batches) * config.batch_size,
                       limit_test=config.test_batch_size)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        probe = copy.deepcopy(model)
        optimizer = torch.optim.SGD(probe.parameters(), lr=0.0)
        train_loader, test_loader = make_loaders(data_dir, settings, device)
        batches = list(train_loader)
        train_epoch(probe, batches[:warm_up], optimizer, device, progress=False)
        timed = train_epoch(probe, batches[warm_up:], optimizer, device, progress=False)
        evaluate(probe, test_loader, device)
        test = evaluate(probe, test_loader, device)
    return config.epochs * (train_batches * timed.seconds / timed_batches + test_batches * test.seconds)


def save_checkpoint(model: torch.nn.Module, path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    atomic_write_bytes(path, buffer.getvalue())


def describe(config: ExperimentConfig) -> str:
    return (f"{config.model} seed={config.seed} epochs={config.epochs} batch={config.batch_size} "
            f"SGD(lr={config.lr}, momentum={config.momentum}, weight_decay={config.weight_decay}) "
            f"StepLR(step_size={config.step_size}, gamma={config.gamma}) augment={'on' if config.augment else 'off'} "
            f"loader={config.loader} dropout={'fast' if config.fast_dropout else 'torch'}"
            + (f" limit_train={config.limit_train}" if config.limit_train else "")
            + (f" limit_test={config.limit_test}" if config.limit_test else ""))


def run_experiment(config: ExperimentConfig, position: int = 0, quiet: bool = False,
                   thread_share: Callable[[], int] | None = None) -> RunRecord:
    """Train and test `config.model` for `config.epochs` epochs, recording every epoch in `<out>/<run-id>/`.

    A diverging loss ends the run as `failed`; Ctrl-C ends it as `interrupted`: either way the record returns.
    `thread_share`, when given, is asked before every epoch how many CPU threads this run may use.
    """
    config.validate()
    device = pick_device(config.device)
    data_dir = resolve_data_dir(config.data_dir)
    run_dir = new_run_dir(Path(config.out), config.model, config.seed)
    log = RunLog(run_dir / "log.txt", quiet)
    started = time.perf_counter()

    seed_everything(config.seed)
    ensure_mnist(data_dir, log=log)
    model = models.get_model(config.model).to(device)
    if config.fast_dropout and device.type == "cpu":
        use_fast_dropout(model)
    geometry = layer_geometry(model)
    record = RunRecord(run_id=run_dir.name, model=config.model, parameters=parameter_count(model),
                       receptive_field=geometry[-1].receptive_field, macs_per_image=sum(g.macs for g in geometry),
                       seed=config.seed, device=describe_device(device),
                       machine=machine_description(), config=asdict(config), versions=library_versions(),
                       git_commit=git_commit(), started=datetime.now().isoformat(timespec="seconds"))
    metrics_path = run_dir / "metrics.json"

    def save(status: str | None = None, reason: str | None = None) -> None:
        record.status = status or record.status
        record.reason = reason
        record.seconds = round(time.perf_counter() - started, 2)
        atomic_write_json(metrics_path, record.to_json())

    save()
    try:
        train_loader, test_loader = make_loaders(data_dir, config.loader_settings(), device)
        log(f"Device: {device} ({torch.get_num_threads()} CPU threads)")
        log(f"Config: {describe(config)}")
        log(model_summary(model))
        estimate = estimate_seconds(config, model, data_dir, device, len(train_loader), len(test_loader))
        log(f"Estimated time: {format_duration(estimate)} for {config.epochs} epochs "
            f"({len(train_loader)} training batches per epoch)")
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                    weight_decay=config.weight_decay)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)
        for epoch in range(config.epochs):
            if thread_share:
                torch.set_num_threads(thread_share())
            lr = optimizer.param_groups[0]["lr"]
            log(f"EPOCH: {epoch}  (lr {lr:g})")
            train = train_epoch(model, train_loader, optimizer, device, progress=config.progress, position=position)
            log.file_only(f"Loss={train.last_batch_loss:.4f} Batch_id={train.batches - 1} "
                          f"Accuracy={train.accuracy:.2f}: 100% {train.batches}/{train.batches} "
                          f"[{train.seconds:.1f}s, {train.batches / train.seconds:.2f}it/s]")
            scheduler.step()
            test = evaluate(model, test_loader, device)
            log()
            log(test_line(test))
            log()
            record.epochs.append(EpochRecord(epoch, lr, round(train.loss, 6), round(train.accuracy, 4),
                                             round(test.loss, 6), round(test.accuracy, 4),
                                             round(train.seconds + test.seconds, 2)))
            if record.best_test_acc is None or test.accuracy > record.best_test_acc:
                record.best_test_acc, record.best_epoch = round(test.accuracy, 4), epoch
                save_checkpoint(model, run_dir / "best.pt")
            save()
    except Diverged as error:
        log(f"Stopped {config.model} seed {config.seed}: {error} (diverged; try a lower --lr)")
        save("failed", "diverged")
    except KeyboardInterrupt:
        log(f"Interrupted {config.model} seed {config.seed} after {len(record.epochs)} epoch(s)")
        save("interrupted", "keyboard interrupt")
    except BaseException as error:
        save("failed", f"{type(error).__name__}: {error}")
        raise
    else:
        save("completed")
        log(f"Run record: {run_dir}")
    finally:
        log.close()
    return record


@dataclass
class _WorkerState:
    slot: int
    jobs: int
    unfinished: object  # multiprocessing.Value: runs of this invocation not yet finished

    def thread_share(self) -> int:
        """The cores split between the runs still going: when fewer runs than workers remain, they get more."""
        return max(1, (os.cpu_count() or 1) // max(1, min(self.jobs, self.unfinished.value)))


_worker: _WorkerState | None = None


def _init_worker(slots, unfinished, jobs: int) -> None:
    global _worker
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with slots.get_lock():
        _worker = _WorkerState(slots.value, jobs, unfinished)
        slots.value += 1
    torch.set_num_threads(_worker.thread_share())


def _run_in_worker(config: ExperimentConfig) -> RunRecord | None:
    try:
        return run_experiment(config, position=_worker.slot, quiet=True, thread_share=_worker.thread_share)
    except KeyboardInterrupt:  # arrived before the run had a record to mark
        return None
    finally:
        with _worker.unfinished.get_lock():
            _worker.unfinished.value -= 1


def run_experiments(configs: list[ExperimentConfig], jobs: int = 1,
                    on_result=lambda record: None) -> list[RunRecord]:
    """Run every config, `jobs` at a time in worker processes that share the CPU cores between them.

    Ctrl-C stops them all; the records of what finished are returned either way.
    """
    for config in configs:
        config.validate()
    records: list[RunRecord] = []
    if jobs <= 1 or len(configs) <= 1:
        try:
            for config in configs:
                records.append(run_experiment(config))
                on_result(records[-1])
                if records[-1].status == "interrupted":
                    break
        except KeyboardInterrupt:
            print("\nInterrupted: stopping.", file=sys.stderr)
        return records

    context = multiprocessing.get_context("spawn")
    slots, unfinished = context.Value("i", 0), context.Value("i", len(configs))
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_init_worker,
                             initargs=(slots, unfinished, jobs)) as pool:
        futures = [pool.submit(_run_in_worker, config) for config in configs]
        try:
            for future in as_completed(futures):
                record = future.result()
                if record is not None:
                    records.append(record)
                    on_result(record)
        except KeyboardInterrupt:
            print("\nInterrupted: stopping the workers.", file=sys.stderr)
            for future in futures:
                future.cancel()
    order = {(c.model, c.seed): i for i, c in enumerate(configs)}
    return sorted(records, key=lambda r: order.get((r.model, r.seed), len(order)))
