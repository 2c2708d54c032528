"""Live curves: every run writes its epochs to TensorBoard event files in its own folder as it trains, so

    tensorboard --logdir runs

shows every run and seed side by side while they train (with --jobs too). The run record stays the source of truth:
nothing reads these files back.
"""
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

from core.records import EpochRecord


class Curves:
    """A run's TensorBoard writer: its config as text once, then each epoch's scalars, flushed as the epoch ends."""

    def __init__(self, folder: Path, config: str, split: str) -> None:
        self.writer = SummaryWriter(log_dir=str(folder))
        self.split = split
        self.writer.add_text("config", config, 0)

    def add_epoch(self, epoch: EpochRecord) -> None:
        scalars = {"train/loss": epoch.train_loss, "train/accuracy": epoch.train_acc,
                   f"{self.split}/loss": epoch.eval_loss, f"{self.split}/accuracy": epoch.eval_acc,
                   "learning rate": epoch.lr, "seconds": epoch.seconds}
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, epoch.epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
