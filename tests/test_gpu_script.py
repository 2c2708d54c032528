"""benchmarks/gpu.py's dry run: every stage on the CPU at tiny sizes, the graph stood in for, one stage made to run
past its limit - the plumbing a lent GPU session depends on, proven before a GPU sees it."""
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.slow  # every stage's processes, one run past its limit
def test_the_gpu_script_runs_every_stage_records_each_and_passes_over_one_that_times_out(tmp_path, mnist_dir):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "benchmarks/gpu.py", str(out), "--dry-run", "--limit", "default=1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=400,
                          env=os.environ | {"MNIST_DATA_DIR": str(mnist_dir)})
    assert done.returncode == 1, done.stderr[-2000:]  # one stage did not finish
    summary = json.loads((out / "summary.json").read_text())
    statuses = {stage["stage"]: stage["status"] for stage in summary["stages"]}
    assert statuses == {"checks": "ok", "step": "ok", "default": "timed out", "published": "ok", "seeds": "ok",
                        "tests": "ok", "compile": "ok"}
    for stage in summary["stages"]:  # each stage's own file, written as it ended
        name = stage["stage"]
        assert json.loads((out / f"{name}.json").read_text()) == stage and (out / f"{name}.log").exists()
    figures = {stage["stage"]: stage["figures"] for stage in summary["stages"]}
    assert set(figures["step"]["steps"]) == {"eager", "one CUDA graph (the default)"}
    assert figures["seeds"]["completed"] == 2 and figures["published"]["completed"] == 1
    assert figures["published"]["training_seconds_15_epochs_scaled"] > 0
    records = [json.loads(path.read_text()) for path in out.glob("*/metrics.json")]  # flat: OUT/<run id>/
    assert sorted((r["config"]["recipe_name"], r["seed"]) for r in records) == [("default", 1), ("default", 2),
                                                                               ("published", 1)]
    assert all((out / r["run_id"] / "log.txt").exists() for r in records)
    assert "default: timed out" in done.stdout


def test_the_gpu_script_stops_at_once_when_its_checks_fail(tmp_path):
    (tmp_path / "a-file").write_text("")  # MNIST cannot be placed under a file
    done = subprocess.run([sys.executable, "benchmarks/gpu.py", str(tmp_path), "--dry-run"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env=os.environ | {"MNIST_DATA_DIR": str(tmp_path / "a-file" / "data")})
    assert done.returncode == 2 and "the checks failed" in done.stderr
    assert [stage["stage"] for stage in json.loads((tmp_path / "summary.json").read_text())["stages"]] == ["checks"]
