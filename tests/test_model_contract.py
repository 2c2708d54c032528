"""A model file being edited is input: each way a half-edited file breaks is one line naming the file, exit 2, and
it costs only the commands that name it."""
import shutil
import textwrap

import pytest

from tests.conftest import ROOT, run_cli

GOOD = textwrap.dedent('''
    """Model7: a small test network."""
    import torch.nn.functional as F
    from torch import nn

    from settings import SGDRecipe

    RECIPE = SGDRecipe(epochs=1, batch_size=64, lr=0.05, momentum=0.9, step_size=1, gamma=0.1, augment=False)


    class Model7(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 10, 28)

        def forward(self, x):
            x = self.conv(x)
            return F.log_softmax(x.flatten(1), dim=1)
    ''')

# (what the user did, the file's text, the one line's words)
BROKEN = {
    "syntax error": (GOOD.replace("class Model7(nn.Module):", "class Model7(nn.Module)"),
                     "model7: models/model7.py, line 11: SyntaxError: expected ':'"),
    "no RECIPE": (GOOD.replace("RECIPE = ", "LEARNING = "), "model7: models/model7.py has no RECIPE; expected"),
    "wrong shape": (GOOD.replace("F.log_softmax(x.flatten(1), dim=1)", "F.log_softmax(x, dim=1)"),
                    "model7: forward returned [2, 10, 1, 1]; expected [2, 10]: flatten before log_softmax "
                    "(models/model7.py)"),
    "raw scores": (GOOD.replace("F.log_softmax(x.flatten(1), dim=1)", "x.flatten(1)"),
                   "expected log-probabilities: end forward with F.log_softmax(x, dim=1)"),
    "error in forward": (GOOD.replace("x = self.conv(x)", "x = self.conv(x.flatten(1))"),
                         "model7: models/model7.py, line 17 (in forward): RuntimeError: "),
    "error in __init__": (GOOD.replace("nn.Conv2d(1, 10, 28)", "nn.Conv2d(1, 10, 28, groups=3)"),
                          "model7: models/model7.py, line 14 (in __init__): ValueError: in_channels must be "
                          "divisible by groups"),
    "class misnamed": (GOOD.replace("class Model7", "class ModelSix"),
                       "model7: models/model7.py has no class Model7; expected"),
}


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """A copy of the code whose models/ gets a model7.py per test."""
    copy = tmp_path_factory.mktemp("checkout")
    skip = shutil.ignore_patterns(".git", ".venv", "MNIST", "runs", "results", "__pycache__", "*.png", ".gpu")
    shutil.copytree(ROOT, copy, ignore=skip, dirs_exist_ok=True)
    return copy


def smoke(checkout, mnist_dir, out, *names):
    return run_cli("main.py", "--models", *names, "--epochs", "1", "--limit-train", "256", "--limit-test", "100",
                   "--device", "cpu", "--data-dir", str(mnist_dir), "--out", str(out), cwd=checkout)


@pytest.mark.parametrize("mistake", BROKEN)
def test_a_broken_model_file_is_one_line_and_exit_2_before_anything_trains(checkout, mnist_dir, tmp_path, mistake):
    text, line = BROKEN[mistake]
    (checkout / "models" / "model7.py").write_text(text)
    done = smoke(checkout, mnist_dir, tmp_path, "model3", "model7")
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.count("\n") == 1 and line in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not list(tmp_path.iterdir()) and "EPOCH" not in done.stdout  # nothing ran, not even model3


def test_the_traceback_is_kept_behind_a_flag(checkout, mnist_dir, tmp_path):
    (checkout / "models" / "model7.py").write_text(BROKEN["error in forward"][0])
    done = run_cli("main.py", "--models", "model7", "--traceback", "--data-dir", str(mnist_dir), cwd=checkout)
    assert done.returncode == 2
    first, rest = done.stderr.split("\n", 1)
    assert "line 17 (in forward)" in first and "Traceback (most recent call last)" in rest and "model7.py" in rest


def test_a_broken_file_leaves_help_report_and_other_models_working(checkout, mnist_dir, tmp_path):
    (checkout / "models" / "model7.py").write_text(BROKEN["syntax error"][0])
    help_text = run_cli("main.py", "--help", cwd=checkout)
    assert help_text.returncode == 0 and "--models NAME" in help_text.stdout
    assert "model files that cannot be used now:\n  model7: models/model7.py, line 11" in help_text.stdout
    done = smoke(checkout, mnist_dir, tmp_path, "model3")
    assert done.returncode == 0, done.stderr[-2000:]
    report = run_cli("main.py", "--report", *map(str, tmp_path.glob("*-model3-seed1")), cwd=checkout)
    assert report.returncode == 0, report.stderr[-2000:]
    assert (tmp_path / "README.md").exists()


def test_a_good_file_passes_and_plain_main_plans_it(checkout, mnist_dir, tmp_path):
    (checkout / "models" / "model7.py").write_text(GOOD)
    done = smoke(checkout, mnist_dir, tmp_path, "model7")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Config: model7" in done.stdout
