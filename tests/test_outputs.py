"""What a run leaves for others: files as the user's umask says, live curves TensorBoard reads, and console output
that reads well in a pipe or a file."""
import stat

import pytest

from core.records import load_record


@pytest.fixture
def run(finished_run):
    """conftest's finished run: two epochs under umask 022, its output a pipe. (its process, its run folder)"""
    return finished_run


def test_files_get_the_mode_the_umask_gives(run):
    _, folder = run
    written = [*folder.iterdir(), *folder.parent.glob("summary-*.md")]
    assert {"metrics.json", "best.pt", "state.pt", "log.txt"} <= {path.name for path in written}
    assert {path.name: oct(stat.S_IMODE(path.stat().st_mode)) for path in written} == \
        {path.name: "0o644" for path in written}


def test_tensorboard_reads_back_the_epochs_scalars(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, folder = run
    events = EventAccumulator(str(folder))
    events.Reload()
    record = load_record(folder)
    assert [(e.step, round(e.value, 4)) for e in events.Scalars("test/accuracy")] == \
        [(e.epoch, e.eval_acc) for e in record.epochs]
    assert [e.value for e in events.Scalars("train/loss")] == pytest.approx([e.train_loss for e in record.epochs])
    assert [e.value for e in events.Scalars("learning rate")] == pytest.approx([e.lr for e in record.epochs])
    assert {"test/loss", "train/accuracy", "seconds"} <= set(events.Tags()["scalars"])


def test_a_pipe_gets_one_progress_line_per_epoch_and_the_data_line_once(run):
    done, _ = run
    assert done.stdout.count("MNIST found in") == 1 and "\r" not in done.stdout + done.stderr
    bars = [line for line in done.stdout.splitlines() if line.startswith("Loss=")]
    assert len(bars) == 2 and all("Batch_id=15" in line for line in bars)  # 1,024 images in batches of 64
    assert "for 2 epochs" in done.stdout and "No CUDA runtime is found" not in done.stderr
