"""Resume: a run killed mid-epoch continues exactly; failed writes leave the previous files valid."""
import errno
import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from core import files
import training.checkpoint
from core.records import load_record
from run_experiments import run_experiment
from experiment.configs import config_for
from tests.conftest import ROOT, main_cli, run_cli

RUN = ["--models", "model3", "--epochs", "4", "--limit-train", "4096", "--limit-test", "500"]


def metrics(folder):
    return [(e.epoch, e.lr, e.train_loss, e.train_acc, e.eval_loss, e.eval_acc) for e in load_record(folder).epochs]


METHODS = {"weights": {}, "averaged weights": {"ema_decay": 0.9},
           "one-cycle, held after epoch 3": {"schedule": "one-cycle", "cycle_epochs": 3}}


def stop_after_two_epochs(record) -> None:
    if len(record.epochs) == 2:
        raise KeyboardInterrupt


@pytest.mark.parametrize("method", METHODS.values(), ids=METHODS.keys())
def test_a_stopped_run_resumes_to_the_same_metrics(mnist_dir, tmp_path, method):
    """In this process: a run stopped after its second epoch, resumed, gives the metrics of one never stopped (the
    slow tier kills a real process mid-epoch)."""
    def config(out):
        return config_for("model3", recipe_overrides={"epochs": 4} | method, limit_train=512, limit_test=200,
                          device="cpu", data_dir=str(mnist_dir), out=str(out), progress=False)

    stopped = run_experiment(config(tmp_path / "stopped"), quiet=True, on_epoch=stop_after_two_epochs)
    assert stopped.status == "interrupted" and len(stopped.epochs) == 2
    [folder] = [p.parent for p in (tmp_path / "stopped").glob("*/metrics.json")]
    resumed = main_cli("--resume", str(folder), "--data-dir", str(mnist_dir))
    assert resumed.returncode == 0 and "Resumed after epoch" in resumed.stdout, resumed.stderr[-2000:]
    whole = run_experiment(config(tmp_path / "whole"), quiet=True)
    [whole_folder] = [p.parent for p in (tmp_path / "whole").glob("*/metrics.json")]
    assert load_record(folder).status == whole.status == "completed"
    assert metrics(folder) == metrics(whole_folder) and len(metrics(folder)) == 4


@pytest.mark.slow  # a real process, killed mid-epoch
@pytest.mark.parametrize("method", [[], ["--ema-decay", "0.9"], ["--schedule", "one-cycle", "--cycle-epochs", "3"]],
                         ids=["weights", "averaged weights", "one-cycle, held after epoch 3"])
def test_a_run_killed_mid_epoch_resumes_to_the_same_metrics(mnist_dir, tmp_path, method):
    killed_out, whole_out = tmp_path / "killed", tmp_path / "whole"
    process = subprocess.Popen([sys.executable, "main.py", *RUN, *method, "--data-dir", str(mnist_dir),
                                "--out", str(killed_out)],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        found = list(killed_out.glob("*/metrics.json"))
        if found and len(json.loads(found[0].read_text())["epochs"]) >= 2:
            break
        time.sleep(0.05)
    time.sleep(0.3)  # into the third epoch
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    [folder] = [p.parent for p in killed_out.glob("*/metrics.json")]
    record = load_record(folder)
    assert record.status == "running" and 2 <= len(record.epochs) < 4 and record.stopped_unexpectedly()
    report = run_cli("main.py", "--report", str(folder))
    assert report.returncode == 0 and "stopped unexpectedly after" in (killed_out / "README.md").read_text()

    resumed = run_cli("main.py", "--resume", str(folder), "--data-dir", str(mnist_dir))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resumed after epoch" in resumed.stdout
    whole = run_cli("main.py", *RUN, *method, "--data-dir", str(mnist_dir), "--out", str(whole_out))
    assert whole.returncode == 0, whole.stderr[-2000:]
    [whole_folder] = [p.parent for p in whole_out.glob("*/metrics.json")]
    assert load_record(folder).status == "completed"
    assert metrics(folder) == metrics(whole_folder) and len(metrics(folder)) == 4


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def run_until_writes_fail(mnist_dir, tmp_path, monkeypatch, modules):
    """A 4-epoch run whose writes through `modules` fail from the third epoch on."""
    def fail_from_now_on(record):
        if len(record.epochs) == 2:
            for module in modules:
                monkeypatch.setattr(module, "atomic_write_bytes", no_space)

    config = config_for("model3", recipe_overrides={"epochs": 4}, limit_train=512, limit_test=200,
                        data_dir=str(mnist_dir), out=str(tmp_path), progress=False)
    record = run_experiment(config, quiet=True, on_epoch=fail_from_now_on)
    [folder] = [p.parent for p in tmp_path.glob("*/metrics.json")]
    return record, folder


def test_a_full_disk_keeps_the_previous_record_and_state(mnist_dir, tmp_path, monkeypatch, capsys):
    record, folder = run_until_writes_fail(mnist_dir, tmp_path, monkeypatch, [files, training.checkpoint])
    assert record.status == "failed" and "No space left on device" in record.reason and str(folder) in record.reason
    assert capsys.readouterr().err.count("\n") == 1  # one line names the folder and the cause
    on_disk = load_record(folder)  # the last record written whole, before the disk filled
    assert on_disk.status == "running" and len(on_disk.epochs) == 2
    assert training.checkpoint.load_state(folder).epoch == 1
    torch.load(folder / "best.pt", weights_only=True)


def test_a_checkpoint_that_cannot_be_written_fails_the_run_with_its_cause(mnist_dir, tmp_path, monkeypatch):
    record, folder = run_until_writes_fail(mnist_dir, tmp_path, monkeypatch, [training.checkpoint])
    on_disk = load_record(folder)
    assert on_disk.status == "failed" and on_disk.reason == record.reason
    assert "cannot write the saved state in" in on_disk.reason or "cannot write the best checkpoint in" in on_disk.reason
    assert training.checkpoint.load_state(folder).epoch == 1 and len(on_disk.epochs) == 3


def test_resume_refuses_in_one_line(mnist_dir, tmp_path):
    config = config_for("model3", recipe_overrides={"epochs": 1}, limit_train=256, limit_test=100,
                        data_dir=str(mnist_dir), out=str(tmp_path / "runs"), progress=False)
    completed = run_experiment(config, quiet=True)
    folder = next((tmp_path / "runs").glob("*"))
    before = (folder / "metrics.json").read_text()
    done = main_cli("--resume", str(folder))
    assert done.returncode == 0 and "completed (1 of 1 epoch); left alone" in done.stdout
    assert (folder / "metrics.json").read_text() == before and completed.status == "completed"

    stateless = tmp_path / "stateless"
    stateless.mkdir()
    (stateless / "metrics.json").write_text(before.replace('"completed"', '"interrupted"'))
    for flags, message in [([str(stateless)], "no saved state to resume from (state.pt is missing)"),
                           ([str(folder), "--lr", "0.1"], "--lr cannot change it"),
                           ([str(tmp_path)], "not a readable run record")]:
        done = main_cli("--resume", *flags)
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("damage", [b"", b"not a checkpoint"])
def test_a_damaged_state_is_one_line(mnist_dir, tmp_path, damage):
    config = config_for("model3", recipe_overrides={"epochs": 1}, limit_train=256, limit_test=100,
                        data_dir=str(mnist_dir), out=str(tmp_path), progress=False)
    run_experiment(config, quiet=True)
    folder = next(tmp_path.glob("*"))
    (folder / "state.pt").write_bytes(damage)
    (folder / "metrics.json").write_text((folder / "metrics.json").read_text().replace('"completed"', '"interrupted"'))
    done = main_cli("--resume", str(folder))
    assert done.returncode == 2 and "cannot load the saved state" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


class Planted:
    """What a crafted state.pt holds: an object whose unpickling calls open(path, "w"), creating the file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_state_that_would_run_code_is_refused_and_runs_nothing(mnist_dir, tmp_path):
    config = config_for("model3", recipe_overrides={"epochs": 1}, limit_train=256, limit_test=100,
                        data_dir=str(mnist_dir), out=str(tmp_path / "runs"), progress=False)
    run_experiment(config, quiet=True)
    folder = next((tmp_path / "runs").glob("*"))
    state = torch.load(folder / "state.pt", weights_only=True)  # what a run writes loads without running code
    assert set(state["random"]) == {"torch", "cuda", "numpy", "python", "generators"}
    payload = tmp_path / "payload-ran"
    state["epoch"] = Planted(payload)
    torch.save(state, folder / "state.pt")
    (folder / "metrics.json").write_text((folder / "metrics.json").read_text().replace('"completed"', '"interrupted"'))
    done = main_cli("--resume", str(folder), "--data-dir", str(mnist_dir))
    assert done.returncode == 2 and "refused: loading it would run code it names (io.open)" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not payload.exists()
