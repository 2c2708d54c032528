"""Run records and their judgement: what `metrics.json` holds, and whether a run met its own target.

Plain data, no torch: the report and the end-of-run table read records with this module alone.
A record carries the target it was made under, so a run is judged by that, not by today's model file.
"""
import json
import os
import socket
import statistics
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from core.files import atomic_write_json
from core.settings import ConfigError

RECORD_FILE = "metrics.json"
# Records made before accuracies were named by their split called every evaluation a test.
OLD_NAMES = {"test_loss": "eval_loss", "test_acc": "eval_acc", "best_test_acc": "best_eval_acc",
             "final_test_acc": "final_eval_acc"}


@dataclass(frozen=True)
class Target:
    """Accuracy of at least `accuracy` % in at least `hits` of the last `window` epochs (on the run's split), within
    the assignment's budget where it has one: at most `max_parameters` parameters, trained at most `max_epochs`
    epochs. A run over its budget does not meet its target, however accurate."""
    accuracy: float
    hits: int = 1
    window: int = 15
    max_parameters: int | None = None
    max_epochs: int | None = None

    def hits_in(self, accuracies: list[float]) -> int:
        return sum(a >= self.accuracy for a in accuracies[-self.window:])

    def met_by(self, accuracies: list[float]) -> bool:
        return self.hits_in(accuracies) >= self.hits

    def statistic(self, accuracies: list[float]) -> float:
        """The accuracy the target needed: the `hits`-th best of the last `window` epochs (met where it is at least
        `accuracy`): what --compare scores a seed by, and the frontier picture plots."""
        return sorted(accuracies[-self.window:], reverse=True)[self.hits - 1]

    def over_budget(self, parameters: int, epochs: int) -> str | None:
        """Why a network of `parameters` trained `epochs` epochs is over the budget ('8,516 parameters > 7,999');
        None within it."""
        reasons = [f"{parameters:,} parameters > {self.max_parameters:,}"
                   if self.max_parameters is not None and parameters > self.max_parameters else "",
                   f"{epochs} epochs > {self.max_epochs}" if self.max_epochs is not None and epochs > self.max_epochs
                   else ""]
        return ", ".join(filter(None, reasons)) or None

    def __str__(self) -> str:
        budget = [f"≤ {self.max_parameters:,} parameters" if self.max_parameters is not None else "",
                  f"≤ {self.max_epochs} epochs" if self.max_epochs is not None else ""]
        return ", ".join(filter(None, [f"≥ {self.accuracy:.2f}% in {self.hits} of the last {self.window}", *budget]))


@dataclass
class EpochRecord:
    epoch: int
    lr: float  # the rate the epoch started with
    train_loss: float
    train_acc: float
    eval_loss: float  # on the run's evaluation split: the test set, or validation's held-out images
    eval_acc: float
    seconds: float

    @classmethod
    def from_json(cls, value: dict) -> "EpochRecord":
        return cls(**{OLD_NAMES.get(name, name): item for name, item in value.items()})


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
    model_hash: str | None = None  # models.source_hash: the code its model file trained with (None: made before hashes)
    precision: str = "fp32"  # the forward pass's arithmetic, `auto` resolved
    compiled: bool = False  # the training step ran under torch.compile (`--compile`, resolved)
    graphed: bool = False  # the training step ran as one captured CUDA graph (`--cuda-graph`, as it turned out)
    graph_reason: str | None = None  # why a run that was to be graphed stepped eagerly (refused, or capture failed)
    process: dict | None = None  # {"host", "pid"} of the process writing it, to tell a run that died
    target: Target | None = None
    split: str = "test"  # what eval_acc was measured on: "test", or "validation" (held-out training images)
    status: str = "running"
    reason: str | None = None
    epochs: list[EpochRecord] = field(default_factory=list)
    best_eval_acc: float | None = None
    best_epoch: int | None = None
    seconds: float = 0.0  # the run's own training and evaluation
    teacher_run: str | None = None  # the teacher's run folder, beside this one in the same output folder
    teacher_seconds: float = 0.0  # the teacher's training, which this run's result cost too
    # How an average of the weights was evaluated: "recomputed" (batch-norm statistics recomputed for the averaged
    # weights); None for runs without an average and for those made before, whose statistics were averaged too.
    average_statistics: str | None = None

    @property
    def total_seconds(self) -> float:
        """What the result cost: the run, and its teacher's training where it had one."""
        return self.seconds + self.teacher_seconds

    @property
    def planned_epochs(self) -> int:
        return self.config["epochs"]

    @property
    def best_train_acc(self) -> float | None:
        return max((e.train_acc for e in self.epochs), default=None)

    @property
    def final_eval_acc(self) -> float | None:
        return self.epochs[-1].eval_acc if self.epochs else None

    @property
    def eval_accuracies(self) -> list[float]:
        return [e.eval_acc for e in self.epochs]

    def stopped_unexpectedly(self) -> bool:
        """Still `running` on disk, but the process that wrote it, on this machine, is gone (kill -9, power cut)."""
        if self.status != "running" or not self.process or self.process.get("host") != socket.gethostname():
            return False
        try:
            os.kill(self.process["pid"], 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def target_hits(self) -> int | None:
        """Epochs of the target's window at or above its accuracy; None without a target."""
        return self.target.hits_in(self.eval_accuracies) if self.target else None

    def window_accuracy(self) -> float | None:
        """Mean accuracy over the target's window of last epochs (the margin above the target); None without one."""
        return statistics.mean(self.eval_accuracies[-self.target.window:]) if self.target and self.epochs else None

    def over_budget(self) -> str | None:
        """Why the run is over its target's budget ('8,516 parameters > 7,999'); None within it, or with no target."""
        return self.target.over_budget(self.parameters, self.planned_epochs) if self.target else None

    def target_met(self) -> bool | None:
        """None when the run has no target or did not finish all of its epochs; False over the target's budget."""
        if self.target is None or self.status != "completed" or len(self.epochs) < self.planned_epochs:
            return None
        return self.target.met_by(self.eval_accuracies) and self.over_budget() is None

    def target_verdict(self) -> str:
        """'target met: yes', 'target met: no', or 'target not met: 8,516 parameters > 7,999' (over budget)."""
        breach = self.over_budget()
        return f"target not met: {breach}" if breach else f"target met: {'yes' if self.target_met() else 'no'}"

    def add_epoch(self, epoch: EpochRecord) -> bool:
        """Append an epoch; True when it is the best so far (its checkpoint is worth keeping)."""
        self.epochs.append(epoch)
        if self.best_eval_acc is None or epoch.eval_acc > self.best_eval_acc:
            self.best_eval_acc, self.best_epoch = epoch.eval_acc, epoch.epoch
            return True
        return False

    def to_json(self) -> dict:
        return asdict(self) | {"best_train_acc": self.best_train_acc, "final_eval_acc": self.final_eval_acc}

    @classmethod
    def from_json(cls, value: dict) -> "RunRecord":
        known = {f.name for f in fields(cls)}
        value = {OLD_NAMES.get(name, name): item for name, item in value.items()}
        value.setdefault("split", "validation" if value.get("config", {}).get("validation") else "test")
        record = cls(**{k: v for k, v in value.items() if k in known})
        record.epochs = [EpochRecord.from_json(e) for e in record.epochs]
        record.target = Target(**record.target) if record.target else None
        if "fast_dropout" in record.config:  # records made before the setting was named torch_dropout
            record.config["torch_dropout"] = not record.config.pop("fast_dropout")
        if record.config.get("test_batch_size") == 128 and record.device == "cpu":
            record.config["test_batch_size"] = None  # made when 128 was every device's default; it is the CPU's
        return record

    def save(self, folder: Path) -> None:
        atomic_write_json(Path(folder) / RECORD_FILE, self.to_json())


class RecordError(ConfigError):
    pass


def load_record(folder: Path) -> RunRecord:
    path = Path(folder) / RECORD_FILE
    try:
        return RunRecord.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise RecordError(f"{path}: not a readable run record ({error})") from None


def records_in(folders: list[Path]) -> list[RunRecord]:
    """Every readable run record under these folders (at any depth); a folder that is not there holds none."""
    found = []
    for folder in folders:
        for path in sorted(Path(folder).rglob(RECORD_FILE)) if Path(folder).is_dir() else []:
            try:
                found.append(load_record(path.parent))
            except RecordError:
                continue  # a half-written or foreign file: not a record to use
    return found


def plural(count: int, word: str) -> str:
    """'1 epoch', '15 epochs'."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
