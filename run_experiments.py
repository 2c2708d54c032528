"""Run experiments: an ExperimentConfig in, a RunRecord out (and on disk, in `<out>/<run-id>/`).

    from settings import config_for
    from run_experiments import run_experiment
    record = run_experiment(config_for("model3", seed=1, recipe_overrides={"epochs": 2}, limit_train=2048))
"""
import contextlib
import os
import socket
import sys
import time
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path
from typing import Callable

import torch

import models
from data.loaders import LoaderSettings, make_loaders, random_generators, split
from data.mnist import ensure_mnist, resolve_data_dir
from parallel import Worker, run_in_workers
from provenance import describe_device, git_commit, library_versions, machine_description
from records import EpochRecord, RunRecord, format_duration, load_record
from settings import ConfigError, ExperimentConfig, describe
from training import Diverged, evaluate, train_epoch
from training.dropout import use_fast_dropout
from training.checkpoint import STATE_FILE, load_state, save_best, save_state
from training.compile import CompiledTraining
from training.compile import resolve as resolve_compile
from training.loops import test_line
from training.optim import TrainingMethod
from training.precision import Precision
from training.precision import resolve as resolve_precision
from utils import RunLog, layer_geometry, model_summary, parameter_count, pick_device, seed_everything


def loader_settings(config: ExperimentConfig) -> LoaderSettings:
    return LoaderSettings(config.recipe.batch_size, config.test_batch_size, config.recipe.augment, config.loader,
                          config.workers, config.seed, config.limit_train, config.limit_test, config.validation)


def build_model(config: ExperimentConfig, device: torch.device) -> torch.nn.Module:
    model = models.get_model(config.model).to(device)
    if not config.torch_dropout and device.type == "cpu":
        use_fast_dropout(model)
    return model


def compiles(config: ExperimentConfig, device: torch.device) -> bool:
    return resolve_compile(config.compile, device, config.recipe.epochs * batches_per_epoch(config)[0])


def trainer(model: torch.nn.Module, compiled: bool, config: ExperimentConfig) -> torch.nn.Module:
    """What the training loop calls: the model itself, or its compiled training step."""
    return CompiledTraining(model, config.recipe.batch_size) if compiled else model


def training_method(config: ExperimentConfig, model: torch.nn.Module, batches_per_epoch: int) -> TrainingMethod:
    return models.get_training_method(config.model)(model, config.recipe, batches_per_epoch)


def batches_per_epoch(config: ExperimentConfig) -> tuple[int, int]:
    """(training, evaluation) batches in one epoch of this config."""
    train, evaluation = split(loader_settings(config))
    return -(-len(train) // config.recipe.batch_size), -(-len(evaluation) // config.test_batch_size)


def estimate_seconds(config: ExperimentConfig, timed_batches: int = 3) -> float:
    """Time a few training and test batches of a fresh model with the run's own optimizer.

    Every random generator is left as it was. The first batches are not timed: they pay for
    allocations that later batches reuse.
    """
    warm_up = 2
    device = pick_device(config.device)
    train_batches, test_batches = batches_per_epoch(config)
    settings = replace(loader_settings(config), limit_train=(warm_up + timed_batches) * config.recipe.batch_size,
                       limit_test=config.test_batch_size)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        probe = build_model(config, device)
        optimizer = training_method(config, probe, train_batches).optimizer
        for group in optimizer.param_groups:  # the optimizer's own work, but no step that could diverge
            group["lr"] = 0.0
        train_loader, test_loader = make_loaders(resolve_data_dir(config.data_dir), settings, device)
        batches = list(train_loader)
        precision = Precision(resolve_precision(config.precision, device), device)
        step = trainer(probe, compiles(config, device), config)
        train_epoch(step, batches[:warm_up], optimizer, device, progress=False, precision=precision)
        timed = train_epoch(step, batches[warm_up:], optimizer, device, progress=False, precision=precision)
        evaluate(probe, test_loader, device, precision)
        test = evaluate(probe, test_loader, device, precision)
    return config.recipe.epochs * (train_batches * timed.seconds / timed.batches + test_batches * test.seconds)


def new_run_dir(out: Path, model: str, seed: int) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for attempt in range(1000):
        run_dir = out / f"{stamp}-{model}-seed{seed}{f'-{attempt}' if attempt else ''}"
        try:
            run_dir.mkdir(parents=True)
            return run_dir
        except FileExistsError:
            continue
    raise ConfigError(f"cannot find a free run folder name in {out}")


def new_record(config: ExperimentConfig, model: torch.nn.Module, device: torch.device, run_dir: Path) -> RunRecord:
    geometry = layer_geometry(model)
    return RunRecord(run_id=run_dir.name, model=config.model, parameters=parameter_count(model),
                     receptive_field=geometry[-1].receptive_field, macs_per_image=sum(g.macs for g in geometry),
                     seed=config.seed, device=describe_device(device), machine=machine_description(),
                     precision=resolve_precision(config.precision, device), compiled=compiles(config, device),
                     config=config.to_json(), versions=library_versions(), git_commit=git_commit(),
                     started=datetime.now().isoformat(timespec="seconds"), target=models.get_target(config.model))


class StopRun(Exception):
    """Raised by an `on_epoch` hook to end a run early with a status of its own (a pruned tuning trial)."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class WriteFailed(Exception):
    """A record or checkpoint could not be written (disk full, read-only file system)."""


def run_experiment(config: ExperimentConfig, position: int = 0, quiet: bool = False,
                   thread_share: Callable[[], int] | None = None, estimate: float | None = None,
                   on_epoch: Callable[[RunRecord], None] | None = None, resume: Path | None = None) -> RunRecord:
    """Train and test `config.model` for its recipe's epochs, recording every epoch in `<out>/<run-id>/`.

    With `resume`, continue that run folder from its saved state instead (see training/checkpoint.py).
    A diverging loss ends the run as `failed`, and so does a record that cannot be written; Ctrl-C ends
    it as `interrupted`; `on_epoch(record)`, called after every epoch, may end it with StopRun: either
    way the record returns. `thread_share`, when given, is asked before every epoch how many CPU threads
    this run may use.
    """
    device = pick_device(config.device)
    data_dir = resolve_data_dir(config.data_dir)
    state = load_state(resume) if resume else None
    run_dir = resume or new_run_dir(Path(config.out), config.model, config.seed)
    log = RunLog(run_dir / "log.txt", quiet)

    seed_everything(config.seed)
    ensure_mnist(data_dir, log=log)
    model = build_model(config, device)
    record = load_record(run_dir) if resume else new_record(config, model, device, run_dir)
    record.process = {"host": socket.gethostname(), "pid": os.getpid()}
    started = time.perf_counter() - record.seconds

    def save(status: str | None = None, reason: str | None = None) -> None:
        record.status = status or record.status
        record.reason = reason
        record.seconds = round(time.perf_counter() - started, 2)
        written(lambda: record.save(run_dir), "the run record")

    def written(write: Callable[[], None], what: str) -> None:
        try:
            write()
        except OSError as error:
            raise WriteFailed(f"cannot write {what} in {run_dir}: {error.strerror or error}") from None

    try:
        save("running", None)
        train_loader, test_loader = make_loaders(data_dir, loader_settings(config), device)
        generators = random_generators(train_loader)
        method = training_method(config, model, len(train_loader))
        precision = Precision(record.precision, device)
        step = trainer(model, record.compiled, config)
        log(f"Device: {device} ({torch.get_num_threads()} CPU threads), precision {precision.name}"
            + (", training step compiled" if record.compiled else ""))
        log(f"Config: {describe(config)}")
        log(f"Training method: {method}")
        log(model_summary(model))
        estimate = estimate if estimate is not None else estimate_seconds(config)
        log(f"Estimated time: {format_duration(estimate)} for {config.recipe.epochs} epochs "
            f"({len(train_loader)} training batches per epoch)")
        if state:
            state.restore(model, method, generators)
            record.epochs, record.best_test_acc, record.best_epoch = [], None, None
            for epoch in state.epochs:
                record.add_epoch(EpochRecord(**epoch))
            log(f"Resumed after epoch {state.epoch} of {config.recipe.epochs} from {run_dir / STATE_FILE}")
        for epoch in range(len(record.epochs), config.recipe.epochs):
            if thread_share:
                torch.set_num_threads(thread_share())
            lr = method.lr
            log(f"EPOCH: {epoch}  (lr {lr:g})")
            train = train_epoch(step, train_loader, method.optimizer, device, method.batch_scheduler,
                                progress=config.progress, position=position, precision=precision)
            log.file_only(train.bar_line())
            if method.epoch_scheduler:
                method.epoch_scheduler.step()
            test = evaluate(model, test_loader, device, precision)
            log()
            log(test_line(test, "Validation set" if config.validation else "Test set"))
            log()
            if record.add_epoch(EpochRecord(epoch, lr, round(train.loss, 6), round(train.accuracy, 4),
                                            round(test.loss, 6), round(test.accuracy, 4),
                                            round(train.seconds + test.seconds, 2))):
                written(lambda: save_best(model, run_dir), "the best checkpoint")
            written(lambda: save_state(run_dir, epoch, model, method, generators,
                                       [asdict(e) for e in record.epochs]), "the saved state")
            save()
            if on_epoch:
                on_epoch(record)
    except StopRun as stop:
        log(f"Stopped {config.model} seed {config.seed}: {stop.reason}")
        save(stop.status, stop.reason)
    except Diverged as error:
        log(f"Stopped {config.model} seed {config.seed}: {error} (diverged; try a lower --lr)")
        save("failed", "diverged")
    except WriteFailed as error:
        print(f"main.py: error: {error}", file=sys.stderr, flush=True)
        record.status, record.reason = "failed", str(error)
        with contextlib.suppress(WriteFailed):  # the disk may not take even this; the last good record stays
            save("failed", str(error))
    except KeyboardInterrupt:
        log(f"Interrupted {config.model} seed {config.seed} after {len(record.epochs)} epoch(s)")
        save("interrupted", "keyboard interrupt")
    except BaseException as error:
        save("failed", f"{type(error).__name__}: {error}")
        raise
    else:
        save("completed")
        if record.target:
            judged = "Validation" if config.validation else "Test"
            window = min(record.target.window, len(record.epochs))
            log(f"{judged} accuracy {record.target}: {record.target_hits()} of {window} epochs, "
                f"target met: {'yes' if record.target_met() else 'no'}")
        log(f"Run record: {run_dir}")
    finally:
        log.close()
    return record


def plan(configs: list[ExperimentConfig], jobs: int) -> list[float]:
    """Estimate every run (once per distinct config: seeds time alike) and print the plan before the first starts."""
    by_setup: dict[ExperimentConfig, float] = {}
    estimates = []
    for config in configs:
        setup = replace(config, seed=1)
        if setup not in by_setup:
            by_setup[setup] = estimate_seconds(config)
        estimates.append(by_setup[setup])
    print(f"Plan: {len(configs)} runs" + (f", {jobs} at a time" if jobs > 1 else "") + ", estimated from a few timed "
          "batches each on this machine:")
    for number, (config, seconds) in enumerate(zip(configs, estimates), start=1):
        print(f"  {number}. {config.model} seed {config.seed}, {config.recipe.epochs} epochs: {format_duration(seconds)}")
    print(f"  total: {format_duration(sum(estimates))} of training, one run after another. Fewer: --models NAME, "
          "--seeds N, --epochs N; Ctrl-C stops cleanly and keeps every record.", flush=True)
    return estimates


def _run_in_worker(item: tuple[ExperimentConfig, float], worker: Worker) -> RunRecord:
    config, estimate = item
    return run_experiment(config, position=worker.slot, quiet=True, thread_share=worker.thread_share,
                          estimate=estimate)


def run_experiments(configs: list[ExperimentConfig], jobs: int = 1,
                    on_result: Callable[[RunRecord], None] = lambda record: None) -> list[RunRecord]:
    """Run every config, `jobs` at a time in worker processes; with more than one, print the plan first.

    Ctrl-C stops them all; the records of what finished are returned either way.
    """
    records: list[RunRecord] = []

    def finished(record: RunRecord) -> None:
        records.append(record)
        on_result(record)

    try:
        estimates = plan(configs, jobs) if len(configs) > 1 else [None] * len(configs)
        if jobs > 1 and len(configs) > 1:
            run_in_workers(_run_in_worker, list(zip(configs, estimates)), jobs, finished)
        else:
            for config, estimate in zip(configs, estimates):
                finished(run_experiment(config, estimate=estimate))
                if records[-1].status == "interrupted":
                    break
    except KeyboardInterrupt:
        print("\nInterrupted: stopping.", file=sys.stderr)
    order = {(c.model, c.seed): i for i, c in enumerate(configs)}
    return sorted(records, key=lambda r: order.get((r.model, r.seed), len(order)))
