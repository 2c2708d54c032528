"""Resuming stopped runs: which run folders `--resume` may continue, and with what config.

A run continues with the config it was recorded with: only where MNIST lives may change. Completed runs
are reported and left alone; a run still going, one that diverged and one without a loadable state are
refused before anything trains.
"""
from pathlib import Path

from experiment.configs import config_from_record
from core.records import load_record, plural
from core.settings import ConfigError, ExperimentConfig
from training.checkpoint import load_state

MAY_CHANGE = ("resume", "data_dir")  # the command-line settings a resumed run may be given


def resumable_runs(folders: list[str], data_dir: str | None,
                   changed: list[str]) -> list[tuple[Path, ExperimentConfig]]:
    """The run folders to continue, with their recorded configs; `changed`: the settings given on the command line."""
    refused = [name for name in changed if name not in MAY_CHANGE]
    if refused:
        flag = "--" + refused[0].replace("_", "-")
        raise ConfigError(f"--resume continues a run with its recorded config: {flag} cannot change it "
                          "(start a new run instead)")
    runs = []
    for folder in map(Path, folders):
        record = load_record(folder)
        if record.status == "completed":
            print(f"{folder}: completed ({len(record.epochs)} of {plural(record.planned_epochs, 'epoch')}); left alone")
            continue
        if record.status == "running" and not record.stopped_unexpectedly():
            raise ConfigError(f"{folder}: still running (process {record.process}); stop it first")
        if record.reason == "diverged":
            raise ConfigError(f"{folder}: diverged; resuming would diverge again (start a run with a lower --lr)")
        load_state(folder)  # a missing or unloadable state is one line, before any training
        try:
            runs.append((folder, config_from_record(record.config | {"model": record.model, "seed": record.seed},
                                                    data_dir)))
        except ConfigError as error:
            raise ConfigError(f"{folder}: {error}") from None
    return runs
