import json
import os
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


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real, verified MNIST (fetched through the project's own sources the first time: the mirror integration path)."""
    data_dir = resolve_data_dir(os.environ.get("MNIST_DATA_DIR") or ROOT / "data")
    ensure_mnist(data_dir)
    return data_dir


def run_cli(*args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def small_model3_run(mnist_dir: Path, out: Path, *flags: str) -> tuple[subprocess.CompletedProcess, dict]:
    """Two epochs of Model3 on the CPU on 1,024 training and 500 test images, with `flags`: the run and its record."""
    done = run_cli("main.py", "--models", "model3", "--epochs", "2", "--limit-train", "1024", "--limit-test", "500",
                   "--device", "cpu", "--data-dir", str(mnist_dir), "--out", str(out), *flags)
    assert done.returncode == 0, done.stderr[-2000:]
    [record] = [json.loads(p.read_text()) for p in out.glob("*/metrics.json")]
    assert record["epochs"][1]["train_loss"] < record["epochs"][0]["train_loss"]
    return done, record


def loader_config(batch_size: int, test_batch_size: int, augment: bool, **run_settings):
    """A Model3 config on the CPU with these batch sizes and augmentation, for the loaders alone."""
    from configs import config_for

    recipe = {key: run_settings.pop(key) for key in ("clean_epochs",) if key in run_settings}
    return config_for("model3", run_settings.pop("seed", 1), {"batch_size": batch_size, "augment": augment} | recipe,
                      device="cpu", test_batch_size=test_batch_size, **run_settings)
