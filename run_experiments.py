"""Run experiments: an ExperimentConfig in, a RunRecord out (and on disk, in `<out>/<run-id>/`).

    from experiment.configs import config_for
    from run_experiments import run_experiment
    record = run_experiment(config_for("model3", seed=1, recipe_overrides={"epochs": 2}, limit_train=2048))
"""
import contextlib
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

import torch

import models
from experiment.configs import teacher_config
from data.loaders import make_loaders, random_generators, stop_augmenting
from data.mnist import ensure_mnist, resolve_data_dir
from experiment.definition import runs_of
from experiment.provenance import describe_device, git_commit, library_versions, machine_description
from core.records import EpochRecord, RunRecord, format_duration, load_record, plural, records_in
from core.settings import ConfigError, ExperimentConfig, describe
from training import Diverged, EpochMetrics, TrainingStep, evaluate, train_epoch
from training.checkpoint import STATE_FILE, load_state, save_best, save_state
from training.compiling import CompiledTraining
from training.curves import Curves
from training.distillation import Teacher, load_final_weights
from training.dropout import use_fast_dropout
from training.graphs import CaptureFailed, GraphedStep, ReplayDisagreed, TrainingState, why_not_graphed
from training.loops import test_line
from training.optim import TrainingMethod, recompute_statistics
from training.precision import Precision
from utils import IMAGE_SHAPE, RunLog, layer_geometry, model_summary, parameter_count, seed_everything


def build_model(config: ExperimentConfig) -> torch.nn.Module:
    model = models.get_model(config.model).to(config.execution.device)
    if not config.torch_dropout and config.execution.device == "cpu":
        use_fast_dropout(model)
    return model


def training_step(model: torch.nn.Module, config: ExperimentConfig, method: TrainingMethod,
                  precision: Precision, teacher: Teacher | None = None) -> TrainingStep:
    """What the training loop calls for each batch: forward (the model, or its compiled training forward), loss
    (with the teacher's where there is one), backward and update."""
    forward = CompiledTraining(model, config.recipe.batch_size) if config.execution.compiled else model
    return TrainingStep(forward, method.optimizer, precision, method.label_smoothing, teacher)


class TeacherMissing(Exception):
    """A run with a teacher found no finished run of it (planning trains teachers first; this one failed, or was
    removed)."""


def finished_teacher(config: ExperimentConfig) -> tuple[Path, RunRecord] | None:
    """The latest completed run of the config's teacher (configs.teacher_config) that kept its final state, and its
    folder; None where there is none."""
    teacher = teacher_config(config)
    folder = Path(teacher.out)
    found = [r for r in runs_of(teacher, records_in([folder])) if (folder / r.run_id / STATE_FILE).exists()]
    return (folder / found[0].run_id, found[0]) if found else None


def new_teacher(config: ExperimentConfig, network: torch.nn.Module) -> Teacher:
    return Teacher(network, config.recipe.temperature, config.recipe.teacher_share)


def graphed_step(step: TrainingStep, method: TrainingMethod, config: ExperimentConfig,
                 log: Callable[[str], None]) -> tuple[TrainingStep | GraphedStep, str | None]:
    """The step captured as a CUDA graph, or as it is, with the reason, where the method cannot be captured or capture
    fails (the state then as before the attempt). With `--cuda-graph on` either is a ConfigError instead."""
    on = config.cuda_graph == "on"
    reason = why_not_graphed(method, step)
    if reason is None:
        device = torch.device(config.execution.device)
        try:
            return GraphedStep(step, torch.zeros(config.recipe.batch_size, *IMAGE_SHAPE, device=device),
                               torch.zeros(config.recipe.batch_size, dtype=torch.long, device=device)), None
        except CaptureFailed as error:
            disagreed = isinstance(error, ReplayDisagreed)
            what = "CUDA graph replay disagreed with the eager step" if disagreed else "CUDA graph capture failed"
            if on:
                raise ConfigError(f"--cuda-graph on: {what} ({error}); use --cuda-graph off")
            log(f"{what} ({error}): the step runs eagerly")
            return step, f"{'replay disagreed' if disagreed else 'capture failed'}: {error}"
    if on:
        raise ConfigError(f"--cuda-graph on: {reason}; use --cuda-graph off")
    log(f"CUDA graph not used ({reason}): the step runs eagerly")
    return step, reason


def training_method(config: ExperimentConfig, model: torch.nn.Module, batches_per_epoch: int) -> TrainingMethod:
    return models.get_training_method(config.model)(model, config.recipe, batches_per_epoch)


@contextlib.contextmanager
def standing_still(optimizer: torch.optim.Optimizer) -> Iterator[None]:
    """The optimizer's rates at zero (the same work per step, but no step that could diverge), then as they were."""
    rates = [group["lr"] for group in optimizer.param_groups]
    saved = [rate.clone() if isinstance(rate, torch.Tensor) else rate for rate in rates]
    for group, rate in zip(optimizer.param_groups, rates):
        if isinstance(rate, torch.Tensor):
            rate.zero_()  # in place: a captured graph reads this tensor
        else:
            group["lr"] = 0.0
    try:
        yield
    finally:
        for group, rate, value in zip(optimizer.param_groups, rates, saved):
            if isinstance(rate, torch.Tensor):
                rate.copy_(value)
            else:
                group["lr"] = value


def timed_estimate(config: ExperimentConfig, step: TrainingStep | GraphedStep, model: torch.nn.Module,
                   method: TrainingMethod, precision: Precision, timed_batches: int = 3) -> float:
    """Seconds for the run's epochs, from a few training and test batches of `step` on MNIST's first images.

    The model, the method's optimizer and average, and every random generator are left as they were. The first
    batches are not timed: they pay for allocations that later batches reuse.
    """
    warm_up = 2
    device = torch.device(config.execution.device)
    train_batches, test_batches = config.execution.train_batches, config.execution.eval_batches
    first_images = replace(config, limit_train=(warm_up + timed_batches) * config.recipe.batch_size,
                           limit_test=config.execution.test_batch_size)
    train_loader, test_loader = make_loaders(resolve_data_dir(config.data_dir), first_images, device)
    batches = list(train_loader)
    trained = [model] + ([method.average] if method.average is not None else [])
    state = TrainingState.save(torch.nn.ModuleList(trained), method.optimizer)
    with standing_still(method.optimizer):
        train_epoch(step, batches[:warm_up], device, progress=False)
        timed = train_epoch(step, batches[warm_up:], device, progress=False)
        evaluate(model, test_loader, device, precision)
        test = evaluate(model, test_loader, device, precision)
        statistics = 0.0
        if method.average is not None:  # its first pass pays for allocations too
            recompute_statistics(method.average, batches[:warm_up], [], [], device)
            statistics = recompute_statistics(method.average, batches[warm_up:], [], [], device)
    state.restore()
    per_batch = (timed.seconds + statistics) / timed.batches
    return config.recipe.epochs * (train_batches * per_batch + test_batches * test.seconds)


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


def new_record(config: ExperimentConfig, model: torch.nn.Module, run_dir: Path) -> RunRecord:
    geometry, file = layer_geometry(model), models.entry(config.model)
    return RunRecord(run_id=run_dir.name, model=config.model, model_hash=file.code_hash,
                     parameters=parameter_count(model),
                     receptive_field=geometry[-1].receptive_field, macs_per_image=sum(g.macs for g in geometry),
                     seed=config.seed, device=describe_device(torch.device(config.execution.device)),
                     machine=machine_description(), precision=config.execution.precision,
                     compiled=config.execution.compiled, config=config.to_json(), versions=library_versions(),
                     git_commit=git_commit(), started=datetime.now().isoformat(timespec="seconds"),
                     target=file.target, split="validation" if config.validation else "test")


class Pruned(Exception):
    """Raised by an `on_epoch` hook to stop a run its tuning study no longer wants."""


class WriteFailed(Exception):
    """A record or checkpoint could not be written (disk full, read-only file system)."""


@dataclass(frozen=True)
class Ending:
    status: str  # the record's status
    exit_code: int  # main.py's exit status when a run ends so
    reason: str | None = None  # the record's reason; None: the exception's message
    advice: str = ""  # added to the log line


COMPLETED = Ending("completed", 0)
CRASHED = Ending("failed", 1)  # anything unforeseen: recorded, then raised on
# Every way a run ends early, by what ends it. Each returns the run's record; none loses an epoch already saved.
ENDINGS: dict[type[BaseException], Ending] = {
    Pruned: Ending("pruned", 0),
    Diverged: Ending("failed", 1, reason="diverged", advice=" (diverged; try a lower --lr)"),
    TeacherMissing: Ending("failed", 1),
    WriteFailed: Ending("failed", 1),
    KeyboardInterrupt: Ending("interrupted", 130, reason="keyboard interrupt"),
}
EXIT_CODES = {ending.status: ending.exit_code for ending in (COMPLETED, CRASHED, *ENDINGS.values())}


def exit_code(records: list[RunRecord]) -> int:
    """main.py's exit status for these runs: the gravest of their endings."""
    return max((EXIT_CODES.get(r.status, 1) for r in records), default=0)


class Run:
    """One run's folder, log, model and record, and what it trains with once prepared."""

    def __init__(self, config: ExperimentConfig, resume: Path | None, quiet: bool) -> None:
        self.config = config
        self.device = torch.device(config.execution.device)
        self.data_dir = resolve_data_dir(config.data_dir)
        self.state = load_state(resume) if resume else None
        self.dir = resume or new_run_dir(Path(config.out), config.model, config.seed)
        self.log = RunLog(self.dir / "log.txt", quiet)
        seed_everything(config.seed)
        ensure_mnist(self.data_dir, log=self.log.file_only)  # the command said it once; each log keeps it
        self.model = build_model(config)
        self.record = load_record(self.dir) if resume else new_record(config, self.model, self.dir)
        self.record.process = {"host": socket.gethostname(), "pid": os.getpid()}
        self.started = time.perf_counter() - self.record.seconds
        self.save("running")

    def save(self, status: str | None = None, reason: str | None = None) -> None:
        self.record.status = status or self.record.status
        self.record.reason = reason
        self.record.seconds = round(time.perf_counter() - self.started, 2)
        self.write(lambda: self.record.save(self.dir), "the run record")

    def write(self, write: Callable[[], None], what: str) -> None:
        try:
            write()
        except OSError as error:
            raise WriteFailed(f"cannot write {what} in {self.dir}: {error.strerror or error}") from None

    def prepare(self, estimate: float | None) -> None:
        """Data, training method and step; the header of the log; a resumed run's saved state restored."""
        config = self.config
        self.train_loader, self.eval_loader = make_loaders(self.data_dir, config, self.device)
        self.generators = random_generators(self.train_loader)
        self.method = training_method(config, self.model, config.execution.train_batches)
        self.precision = Precision(config.execution.precision, self.device)
        self.teacher = self.load_teacher() if config.recipe.teacher else None
        if self.method.average is not None:
            self.record.average_statistics = "recomputed"
        self.log(f"Device: {self.device} ({torch.get_num_threads()} CPU threads), precision {self.precision.name}"
                 + (", training step compiled" if config.execution.compiled else "")
                 + (", training step as one CUDA graph" if config.execution.graphed else ""))
        self.log(f"Config: {describe(config)}")
        self.log(f"Training method: {self.method}")
        self.log(model_summary(self.model))
        if self.state:
            self.state.restore(self.model, self.method, self.generators)
            self.record.epochs, self.record.best_eval_acc, self.record.best_epoch = [], None, None
            for epoch in self.state.epochs:
                self.record.add_epoch(EpochRecord.from_json(epoch))
            self.log(f"Resumed after epoch {self.state.epoch} of {config.recipe.epochs} from {self.dir / STATE_FILE}")
        # after a resume's restore: a graph refers to the tensors it was captured with, and a restore replaces some
        self.step = training_step(self.model, config, self.method, self.precision, self.teacher)
        if config.execution.graphed:
            self.step, self.record.graph_reason = graphed_step(self.step, self.method, config, self.log)
        self.record.graphed = isinstance(self.step, GraphedStep)
        estimate = estimate if estimate is not None else timed_estimate(config, self.step, self.model, self.method,
                                                                    self.precision)
        self.curves = Curves(self.dir, describe(config), self.record.split)
        self.log(f"Estimated time: {format_duration(estimate)} for {plural(config.recipe.epochs, 'epoch')} "
                 f"({config.execution.train_batches} training batches per epoch)")

    def load_teacher(self) -> Teacher:
        """The teacher's final weights: a resumed run's from the run its record names; a new run's from the latest
        finished run of its teacher (TeacherMissing where there is none)."""
        config, teacher = self.config, teacher_config(self.config)
        if self.record.teacher_run:
            folder = Path(self.record.teacher_run)
        else:
            found = finished_teacher(config)
            if found is None:
                raise TeacherMissing(f"no finished run of its teacher ({teacher.model} seed {teacher.seed}, "
                                     f"{config.recipe.teacher}) with its final state in {teacher.out}")
            folder, record = found
            self.record.teacher_run, self.record.teacher_seconds = str(folder), record.total_seconds
        network = load_final_weights(models.get_model(teacher.model), folder, self.device)
        self.log(f"Teacher: {teacher.model} seed {teacher.seed}, its final weights from {folder} (temperature "
                 f"{config.recipe.temperature:g}, {config.recipe.teacher_share:g} of the loss)")
        return new_teacher(config, network)

    def average_statistics(self, epoch_start: list[torch.Tensor]) -> float:
        """The averaged weights' batch-norm statistics, recomputed over the epoch's training images; its seconds."""
        seconds = recompute_statistics(self.method.average, self.train_loader, self.generators, epoch_start,
                                       self.device)
        self.log(f"Batch-norm statistics recomputed for the averaged weights over "
                 f"{len(self.train_loader)} training batches: {seconds:.1f} s")
        return seconds

    def end_epoch(self, epoch: int, lr: float, train: EpochMetrics, evaluation: EpochMetrics) -> None:
        """Log the evaluation, then record the epoch and save the best weights, the state and the record."""
        self.log()
        self.log(test_line(evaluation, "Validation set" if self.config.validation else "Test set"))
        self.log()
        recorded = EpochRecord(epoch, lr, round(train.loss, 6), round(train.accuracy, 4), round(evaluation.loss, 6),
                               round(evaluation.accuracy, 4), round(train.seconds + evaluation.seconds, 2))
        if self.record.add_epoch(recorded):
            self.write(lambda: save_best(self.method.evaluated(self.model), self.dir), "the best checkpoint")
        self.write(lambda: save_state(self.dir, epoch, self.model, self.method, self.generators,
                                      [asdict(e) for e in self.record.epochs]), "the saved state")
        self.save()
        with contextlib.suppress(OSError):  # the curves are for watching; the record above is what counts
            self.curves.add_epoch(recorded)

    def end(self, error: BaseException | None) -> RunRecord:
        """Record how the run ended (ENDINGS) and close its log."""
        ending = COMPLETED if error is None else ENDINGS.get(type(error), CRASHED)
        reason = None if error is None else ending.reason or (str(error) if ending is not CRASHED
                                                              else f"{type(error).__name__}: {error}")
        name = f"{self.config.model} seed {self.config.seed}"
        if isinstance(error, WriteFailed):
            print(f"main.py: error: {error}", file=sys.stderr, flush=True)
            self.record.status, self.record.reason = ending.status, reason
        elif error is not None and ending is not CRASHED:
            self.log(f"Stopped {name} after {plural(len(self.record.epochs), 'epoch')}: "
                     f"{error or reason}{ending.advice}")
        with contextlib.suppress(WriteFailed):  # the disk may not take even this; the last good record stays
            self.save(ending.status, reason)
        if ending is COMPLETED:
            self.log_target()
            self.log(f"Run record: {self.dir}")
        if hasattr(self, "curves"):
            with contextlib.suppress(OSError):
                self.curves.close()
        self.log.close()
        return self.record

    def log_target(self) -> None:
        target = self.record.target
        if target:
            window = min(target.window, len(self.record.epochs))
            self.log(f"{self.record.split.capitalize()} accuracy {target}: {self.record.target_hits()} of "
                     f"{plural(window, 'epoch')}, {self.record.target_verdict()}")


def run_experiment(config: ExperimentConfig, position: int = 0, quiet: bool = False,
                   thread_share: Callable[[], int] | None = None, estimate: float | None = None,
                   on_epoch: Callable[[RunRecord], None] | None = None, resume: Path | None = None) -> RunRecord:
    """Train and evaluate `config.model` for its recipe's epochs, recording every epoch in `<out>/<run-id>/`.

    With `resume`, continue that run folder from its saved state instead (see training/checkpoint.py).
    However the run ends (ENDINGS: diverged, a failed write, Ctrl-C, pruned by `on_epoch`), its record
    returns. `thread_share`, when given, is asked before every epoch how many CPU threads this run may use.
    """
    run = Run(config, resume, quiet)
    bar = config.progress and sys.stderr.isatty()  # a bar redraws on a terminal; a pipe or a file gets its last line
    try:
        run.prepare(estimate)
        for epoch in range(len(run.record.epochs), config.recipe.epochs):
            if thread_share:
                torch.set_num_threads(thread_share())
            lr = run.method.lr
            clean = config.recipe.augment and epoch >= config.recipe.epochs - config.recipe.clean_epochs
            if clean:
                stop_augmenting(run.train_loader)
            run.log(f"EPOCH: {epoch}  (lr {lr:g}{', images as they are' if clean else ''})")
            epoch_start = [generator.get_state() for generator in run.generators]
            train = train_epoch(run.step, run.train_loader, run.device, run.method.batch_scheduler,
                                progress=bar, position=position)
            (run.log.file_only if bar else run.log)(train.bar_line())
            if run.method.epoch_scheduler:
                run.method.epoch_scheduler.step()
            if run.method.average is not None:
                train = replace(train, seconds=train.seconds + run.average_statistics(epoch_start))
            evaluated = run.method.evaluated(run.model)
            run.end_epoch(epoch, lr, train, evaluate(evaluated, run.eval_loader, run.device, run.precision))
            if on_epoch:
                on_epoch(run.record)
    except tuple(ENDINGS) as error:
        return run.end(error)
    except BaseException as error:
        run.end(error)
        raise
    return run.end(None)
