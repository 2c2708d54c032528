import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data.mnist import ensure_mnist, resolve_data_dir  # noqa: E402


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real, verified MNIST (fetched through the project's own sources the first time: the mirror integration path)."""
    data_dir = resolve_data_dir(os.environ.get("MNIST_DATA_DIR") or ROOT / "data")
    ensure_mnist(data_dir)
    return data_dir


def run_cli(*args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
