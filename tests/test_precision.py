"""--precision: autocast around the forward pass, recorded with the run."""

import pytest
import torch

from tests.conftest import main_cli, small_model3_run
from training.precision import Precision, resolve_precision


def test_fp16_needs_cuda_and_is_one_line(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    done = main_cli("--models", "model3", "--precision", "fp16", "--out", str(tmp_path))
    assert done.returncode == 2 and "--precision fp16 needs CUDA" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_auto_is_fp32_and_a_named_precision_is_kept():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"


def test_autocast_casts_the_forward_only():
    model = torch.nn.Linear(8, 4)
    with Precision("bf16", torch.device("cpu")).autocast():
        output = model(torch.randn(2, 8))
    assert output.dtype == torch.bfloat16 and model.weight.dtype == torch.float32
    with Precision("fp32", torch.device("cpu")).autocast():
        assert model(torch.randn(2, 8)).dtype == torch.float32


def test_a_bf16_run_trains_and_records_its_precision(mnist_dir, tmp_path):
    done, record = small_model3_run(mnist_dir, tmp_path, "--precision", "bf16")
    assert "precision bf16" in done.stdout and "| cpu, bf16 |" in done.stdout
    assert record["precision"] == "bf16" and record["config"]["precision"] == "bf16"
