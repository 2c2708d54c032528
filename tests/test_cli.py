"""main.py end to end, on small subsets of real MNIST."""
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

import models

from run_experiments import run_experiment
from experiment.configs import config_for
from tests.conftest import ROOT, loader_config, main_cli
from training import TrainingStep, train_epoch
from training.precision import Precision
from data.loaders import make_loaders

SMOKE = ["--models", "model3", "--epochs", "1", "--limit-train", "2048", "--limit-test", "1000"]


def records(out):
    return [json.loads(path.read_text()) for path in sorted(out.glob("*/metrics.json"))]


def test_smoke_run(finished_run):
    """conftest's finished run, the one real `python main.py` process that trains: what a user sees in a pipe."""
    done, run_dir = finished_run
    assert "Total params: 7,944" in done.stdout and "Receptive field at the output: 28x28" in done.stdout
    assert "Estimated time:" in done.stdout and "EPOCH: 0" in done.stdout
    # the last of 1,024 / 64 batches: into a pipe, one line per epoch on stdout, no redraws
    assert re.search(r"^Loss=\d+\.\d{4} Batch_id=15 Accuracy=\d+\.\d{2}", done.stdout, re.MULTILINE)
    test_line = re.compile(r"Test set: Average loss: \d+\.\d{4}, Accuracy: \d+/500 \(\d+\.\d{2}%\)")
    assert test_line.search(done.stdout)
    # what differs from a full default run: the images it saw and the recipe's epochs
    assert "| model3 (limit-train 1024, limit-test 500, epochs=2) | 7,944 | 28 | 1 |" in done.stdout
    assert re.search(r"Test accuracy ≥ 99.40% in 3 of the last 5, ≤ 7,999 parameters, ≤ 15 epochs: [012] of 2 epochs, "
                     r"target met: no", done.stdout)
    [record] = records(run_dir.parent)
    assert record["status"] == "completed" and len(record["epochs"]) == 2
    assert record["parameters"] == 7944 and record["config"]["limit_train"] == 1024
    assert set(record["epochs"][0]) == {"epoch", "lr", "train_loss", "train_acc", "eval_loss", "eval_acc", "seconds"}
    assert (run_dir / "best.pt").exists()
    log = (run_dir / "log.txt").read_text()
    assert "EPOCH: 1" in log and test_line.search(log) and "Batch_id=15" in log and "\r" not in log
    assert list(run_dir.parent.glob("summary-*.md"))


def test_a_named_recipe_trains_as_named_and_its_record_says_so(mnist_dir, tmp_path):
    """--recipe published: the published Model3, StepLR at batch 128; the record names the recipe, the row too."""
    done = main_cli(*SMOKE, "--recipe", "published", "--data-dir", str(mnist_dir), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Training method: SGD + StepLR (per epoch)" in done.stdout and "(16 training batches per epoch)" in done.stdout
    assert "| model3 · published (limit-train 2048, limit-test 1000, epochs=1) | 7,944 |" in done.stdout
    [record] = records(tmp_path)
    config = record["config"]
    assert (config["recipe_name"], config["batch_size"], config["schedule"], config["lr"], config["step_size"]) == \
        ("published", 128, "step", 0.5, 6)


def test_torchvision_loader_end_to_end(mnist_dir, tmp_path):
    done = main_cli("--models", "3", "--epochs", "1", "--limit-train", "512", "--limit-test", "200",
                   "--loader", "torchvision", "--data-dir", str(mnist_dir), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    [record] = records(tmp_path)
    assert record["status"] == "completed" and record["config"]["loader"] == "torchvision"


def test_jobs_run_each_seed_in_a_worker(mnist_dir, tmp_path):
    done = main_cli("--models", "model3", "--seeds", "1", "2", "--jobs", "2", "--epochs", "1",
                   "--limit-train", "512", "--limit-test", "200", "--data-dir", str(mnist_dir), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(r["seed"] for r in records(tmp_path)) == [1, 2]
    assert all(r["status"] == "completed" for r in records(tmp_path))
    label = "| model3 (limit-train 512, limit-test 200, epochs=1) | 7,944 | 28 |"
    assert f"{label} 1 |" in done.stdout and f"{label} 2 |" in done.stdout
    assert "Mean ± standard deviation across seeds" in done.stdout
    plan = done.stdout.split("Plan: 2 runs, 2 at a time", 1)[1]
    assert "1. model3 seed 1, 1 epoch:" in plan and "2. model3 seed 2, 1 epoch:" in plan and "total:" in plan


def output_once_ended(process: subprocess.Popen) -> tuple[str, str]:
    """A stopped process's output; one still running a minute and a half later fails the test and is killed with its
    workers (it runs in a session of its own), so it cannot train on beside the tests that follow."""
    try:
        return process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail("the stopped process did not end")


def ignore_sigint() -> None:
    """What a non-interactive shell does to a job it starts in the background."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.slow  # a real process, killed
@pytest.mark.parametrize("stop,started_in_background", [(signal.SIGINT, False), (signal.SIGTERM, False),
                                                        (signal.SIGINT, True)])
def test_stopping_leaves_a_valid_interrupted_record(mnist_dir, tmp_path, stop, started_in_background):
    command = [sys.executable, "main.py", "--models", "model3", "--epochs", "200", "--limit-train", "1024",
               "--limit-test", "200", "--data-dir", str(mnist_dir), "--out", str(tmp_path)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=ignore_sigint if started_in_background else None, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = records(tmp_path) if list(tmp_path.glob("*/metrics.json")) else []
        if found and len(found[0]["epochs"]) >= 2:
            break
        time.sleep(0.2)
    process.send_signal(stop)
    stdout, stderr = output_once_ended(process)
    assert process.returncode == 130, stderr[-2000:]
    [record] = records(tmp_path)
    assert record["status"] == "interrupted" and 2 <= len(record["epochs"]) < 200
    assert "Traceback" not in stderr
    assert "| model3 (limit-train 1024, limit-test 200, epochs=200) | 7,944 | 28 | 1 |" in stdout


@pytest.mark.slow  # real processes, killed
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_stopping_the_parent_of_workers_stops_every_run_cleanly(mnist_dir, tmp_path, stop):
    """`kill` reaches the parent alone (a scheduler's, `timeout`'s): it stops its workers, and no traceback. Seed 3
    waits in the pool's queue, handed to a worker already, so cancelling cannot stop it: it must not start."""
    command = [sys.executable, "main.py", "--models", "model3", "--seeds", "1-3", "--jobs", "2", "--epochs", "200",
               "--limit-train", "512", "--limit-test", "100", "--data-dir", str(mnist_dir), "--out", str(tmp_path)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # so the signal below reaches the parent only
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = records(tmp_path) if len(list(tmp_path.glob("*/metrics.json"))) == 2 else []
        if found and all(len(r["epochs"]) >= 1 for r in found):
            break
        time.sleep(0.2)
    process.send_signal(stop)
    stdout, stderr = output_once_ended(process)
    assert process.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    assert sorted((r["seed"], r["status"]) for r in records(tmp_path)) == [(1, "interrupted"), (2, "interrupted")]


def children(pid: int) -> list[str]:
    try:
        return (pathlib.Path("/proc") / str(pid) / "task" / str(pid) / "children").read_text().split()
    except OSError:
        return []


@pytest.mark.slow  # real processes, stopped while they start
@pytest.mark.skipif(not pathlib.Path("/proc/self/task").exists(), reason="reads a process's children from /proc")
@pytest.mark.parametrize("whom", ["the parent", "the whole group, as Ctrl-C does"])
def test_a_stop_while_the_workers_are_still_starting_is_clean(mnist_dir, tmp_path, whom):
    """More runs than workers, stopped before the workers have imported torch: a worker killed then broke the pool
    under the tasks queued behind it (a traceback, or the parent waiting for ever)."""
    command = [sys.executable, "main.py", "--models", "model3", "--seeds", "1-5", "--jobs", "2", "--epochs", "200",
               "--limit-train", "512", "--limit-test", "100", "--data-dir", str(mnist_dir), "--out", str(tmp_path)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    while len(children(process.pid)) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # two workers and the resource tracker: spawned, still importing
    if whom == "the parent":
        process.send_signal(signal.SIGINT)
    else:
        os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = output_once_ended(process)
    assert process.returncode == 130 and "Traceback" not in stderr, stderr[-2000:]
    assert all(r["status"] == "interrupted" for r in records(tmp_path))


def test_divergence_fails_that_run_and_the_others_go_on(mnist_dir, tmp_path):
    done = main_cli("--models", "model3", "model2", "--epochs", "1", "--lr", "1e30",
                   "--limit-train", "512", "--limit-test", "200", "--data-dir", str(mnist_dir), "--out", str(tmp_path))
    assert done.returncode == 1
    found = {r["model"]: r for r in records(tmp_path)}
    assert set(found) == {"model2", "model3"}
    assert all(r["status"] == "failed" and r["reason"] == "diverged" for r in found.values())
    assert "diverged" in done.stdout


@pytest.mark.parametrize("flags,message", [
    pytest.param(["--models", "resnet"], f"unknown model 'resnet'; available: {', '.join(models.available())}",
                 marks=pytest.mark.any_models),
    (["--epochs", "0"], "--epochs must be positive, got 0"),
    (["--batch-size", "-4"], "--batch-size must be positive"),
    (["--lr", "-0.1"], "--lr must be a finite number >= 0"),
    (["--out", "README.md/runs"], "cannot write run records to README.md/runs"),
    (["--epochs", "many"], "argument --epochs: invalid int value"),
    (["--data-dir", "README.md"], "--data-dir README.md: README.md is a file, not a folder"),
    (["--data-dir", "README.md/mnist"], "--data-dir README.md/mnist: README.md is a file, not a folder"),
    (["--seeds", "-1"], "--seeds must be between 0 and 4294967295, got -1"),
    (["--seeds", "1180591620717411303424"], "--seeds must be between 0 and 4294967295, got 1180591620717411303424"),
    (["--set", "momentum"], "--set takes NAME=VALUE, got 'momentum'"),
    (["--set", "colour=red"], "SGDRecipe has no setting 'colour'"),
    (["--momentum", "5"], "--momentum must be a number in [0, 1), got 5"),
    (["--set", "momentum=1"], "--momentum must be a number in [0, 1), got 1"),
    (["--seeds", "5-1"], "--seeds 5-1: the range ends before it starts"),
    (["--seeds", "1-3", "3"], "--seeds: seed 3 is given twice"),
    (["--seeds", "one"], "--seeds takes numbers and ranges like 1-20, got 'one'"),
    (["--device", "cpu", "--cuda-graph", "on"], "--cuda-graph on: it needs CUDA; use --cuda-graph off"),
    (["--label-smoothing", "1"], "--label-smoothing must be a number in [0, 1), got 1"),
    (["--schedule", "one-cycle", "--warmup", "0"], "--warmup must be a number in (0, 1), got 0"),
    (["--set", "schedule=cosine"], "--schedule must be one of step, one-cycle, got 'cosine'"),
    (["--models", "model3", "--epochs", "1", "--limit-train", "512", "--limit-test", "200", "--batch-size", "10000000"],
     "--batch-size 10,000,000 is more than the 512 training images it would batch"),
    (["--test-batch-size", "20000"], "--test-batch-size 20,000 is more than the 10,000 test images it would batch"),
    (["--validation", "--limit-train", "600", "--test-batch-size", "200"],
     "--test-batch-size 200 is more than the 100 validation images it would batch"),
    (["--jobs", "1000"], "argument --jobs: must be between 0 and this machine's"),
    (["--workers", "1000"], "--workers must be between 0 and this machine's"),
    (["--seeds", "1-100000000"], "--seeds 1-100000000: 100,000,000 runs of each model; at most 10,000 in one command"),
    (["--models", "model3", "--recipe", "nope"], "model3 has no recipe 'nope' (its recipes: default, published, step)"),
    (["--compare", "model3", "resnet"], "unknown model 'resnet'; available:"),
    (["--compare", "model3", "model3:nope"], "model3 has no recipe 'nope' (its recipes: default, published, step)"),
    (["--compare", "model3:step", "model3", "--seeds", "1-4"], "--compare needs at least 5 seeds a side, got 4"),
    (["--compare", "model3", "model3"], "A and B are the same: model3 with its recipe"),
    (["--compare", "model3", "model3:default", "--gamma", "0.5"], "A and B are the same"),  # StepLR's gamma: idle here
    (["--compare", "model3", "model4", "--records", "nowhere"], "--records nowhere: no such folder"),
    (["--compare", "model3", "model4", "--models", "model5"], "--compare names its two sides itself"),
])
def test_bad_input_is_one_line_and_exit_2(flags, message, monkeypatch):
    monkeypatch.chdir(ROOT)  # the paths above are the root's
    done = main_cli(*flags)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert done.stdout == ""


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_unavailable_device_is_one_line_and_exit_2():
    done = main_cli("--device", "cuda")
    assert done.returncode == 2 and "CUDA is not available" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_same_seed_same_metrics_on_cpu(mnist_dir, tmp_path):
    def run():
        config = config_for("model3", seed=3, recipe_overrides={"epochs": 2}, limit_train=512, limit_test=200, device="cpu",
                            data_dir=str(mnist_dir), out=str(tmp_path), progress=False)
        return [(e.train_loss, e.train_acc, e.eval_loss, e.eval_acc) for e in run_experiment(config, quiet=True).epochs]

    assert run() == run()


def test_loss_goes_down_on_a_few_hundred_real_images(mnist_dir):
    torch.manual_seed(0)
    settings = loader_config(32, 256, False, limit_train=320, limit_test=256)
    train, _ = make_loaders(mnist_dir, settings, torch.device("cpu"))
    model = models.get_model("model3")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    step = TrainingStep(model, optimizer, Precision("fp32", torch.device("cpu")))
    # The training loss, not an evaluation: after 80 steps at this learning rate batch norm's running statistics
    # still lag the weights, so an eval-mode loss swings from epoch to epoch with the CPU's float kernels.
    losses = [train_epoch(step, train, torch.device("cpu"), progress=False).loss for _ in range(8)]
    assert losses[-1] < 0.5 * losses[0]
