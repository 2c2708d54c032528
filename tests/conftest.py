import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# The models the README publishes: those with committed run records. A model file a user adds is not among them.
PUBLISHED_MODELS = sorted({json.loads(path.read_text())["model"] for path in (ROOT / "results").glob("*/metrics.json")},
                          key=lambda name: int(name.removeprefix("model")))

from data.mnist import ensure_mnist, resolve_data_dir  # noqa: E402

if os.environ.get("PYTEST_XDIST_WORKER"):  # one test per core: two threads each would only time-slice
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real, verified MNIST (fetched through the project's own sources the first time: the mirror integration path)."""
    data_dir = resolve_data_dir(os.environ.get("MNIST_DATA_DIR") or ROOT / "data")
    ensure_mnist(data_dir)
    return data_dir


def run_cli(*args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    """A real `python ARGS` process: for what only a process shows (its exit, signals, a copied checkout)."""
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def main_cli(*args: str) -> subprocess.CompletedProcess:
    """`python main.py ARGS` in this process: the same main(), exit code, stdout and stderr, without a new
    interpreter, torch import and compile cache each time. The signal handlers a run sets are put back."""
    from main import main

    out, err = io.StringIO(), io.StringIO()
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exit:  # argparse's errors and --help
                code = exit.code if isinstance(exit.code, int) else 0 if exit.code is None else 1
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
    return subprocess.CompletedProcess(["main.py", *args], code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, mnist_dir) -> tuple[subprocess.CompletedProcess, Path]:
    """The one real `python main.py` process that trains, shared by the tests that read a finished run: Model3, two
    epochs on 1,024 training and 500 test images, on the CPU, under umask 022, its output a pipe. (its process, its
    run folder)"""
    out = tmp_path_factory.mktemp("finished")
    done = subprocess.run([sys.executable, "main.py", "--models", "model3", "--epochs", "2", "--limit-train", "1024",
                           "--limit-test", "500", "--device", "cpu", "--data-dir", str(mnist_dir), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, preexec_fn=lambda: os.umask(0o022))
    assert done.returncode == 0, done.stderr[-2000:]
    [folder] = [path.parent for path in out.glob("*/metrics.json")]
    return done, folder


def small_model3_run(mnist_dir: Path, out: Path, *flags: str) -> tuple[subprocess.CompletedProcess, dict]:
    """Two epochs of Model3 on the CPU on 1,024 training and 500 test images, with `flags`: the run and its record."""
    done = main_cli("--models", "model3", "--epochs", "2", "--limit-train", "1024", "--limit-test", "500",
                    "--device", "cpu", "--data-dir", str(mnist_dir), "--out", str(out), *flags)
    assert done.returncode == 0, done.stderr[-2000:]
    [record] = [json.loads(p.read_text()) for p in out.glob("*/metrics.json")]
    assert record["epochs"][1]["train_loss"] < record["epochs"][0]["train_loss"]
    return done, record


def loader_config(batch_size: int, test_batch_size: int, augment: bool, **run_settings):
    """A Model3 config on the CPU with these batch sizes and augmentation, for the loaders alone."""
    from experiment.configs import config_for

    recipe = {key: run_settings.pop(key) for key in ("clean_epochs",) if key in run_settings}
    return config_for("model3", run_settings.pop("seed", 1), {"batch_size": batch_size, "augment": augment} | recipe,
                      device="cpu", test_batch_size=test_batch_size, **run_settings)


@pytest.fixture
def user_models(tmp_path_factory, monkeypatch):
    """models/ as a user has it, with files of their own: a copy the registry, the import system and the error lines
    read instead of models/ for this test, so the test runs in this process. Returns add(name, source)."""
    import importlib

    import models
    import models.errors
    from models.contract import check_model

    project = tmp_path_factory.mktemp("project")
    (project / "models").mkdir()
    for path in (ROOT / "models").glob("*.py"):
        (project / "models" / path.name).write_text(path.read_text())
    monkeypatch.setattr(models, "MODELS_DIR", project / "models")
    monkeypatch.setattr(models, "__path__", [str(project / "models")])
    monkeypatch.setattr(models.errors, "PROJECT_DIR", project)
    added: list[str] = []

    def add(name: str, source: str) -> Path:
        path = project / "models" / f"{name}.py"
        path.write_text(source)
        added.append(name)
        sys.modules.pop(f"models.{name}", None)
        importlib.invalidate_caches()
        check_model.cache_clear()
        return path

    yield add
    for name in added:
        sys.modules.pop(f"models.{name}", None)
    check_model.cache_clear()
