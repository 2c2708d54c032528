"""What produced a run: library versions, the machine, the device and the git commit of the code."""
import functools
import os
import platform
import subprocess
from pathlib import Path

import numpy
import torch
import torchvision

ROOT = Path(__file__).resolve().parent


def library_versions() -> dict[str, str]:
    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": numpy.__version__}


def machine_description() -> str:
    """CPU model and core count, e.g. 'AMD EPYC 9B14, 2 cores' (platform.processor() is often empty on Linux)."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def describe_device(device: torch.device) -> str:
    return f"{device} ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else str(device)


@functools.cache
def git_commit() -> str:
    """HEAD's commit, with '-dirty' when tracked files differ from it: a record's figures trace to clean code only.

    Read once per process, at its first run: the code a process runs is what it loaded then, so
    edits made while it runs (a long study) neither taint its records nor pass for what it ran.
    """
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if commit.returncode != 0:
        return "unknown"
    return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
