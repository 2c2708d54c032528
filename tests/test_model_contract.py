"""A model file being edited is input: each way a half-edited file breaks is one line naming the file, exit 2, and
it costs only the commands that name it."""
import textwrap

import pytest

from tests.conftest import main_cli

GOOD = textwrap.dedent('''
    """Model7: a small test network."""
    import torch.nn.functional as F
    from torch import nn

    from models.kit import SGDRecipe

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


def smoke(mnist_dir, out, *names):
    return main_cli("--models", *names, "--epochs", "1", "--limit-train", "256", "--limit-test", "100",
                    "--device", "cpu", "--data-dir", str(mnist_dir), "--out", str(out))


@pytest.mark.parametrize("mistake", BROKEN)
def test_a_broken_model_file_is_one_line_and_exit_2_before_anything_trains(user_models, mnist_dir, tmp_path, mistake):
    text, line = BROKEN[mistake]
    user_models("model7", text)
    done = smoke(mnist_dir, tmp_path, "model3", "model7")
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.count("\n") == 1 and line in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not list(tmp_path.iterdir()) and "EPOCH" not in done.stdout  # nothing ran, not even model3


def test_the_traceback_is_kept_behind_a_flag(user_models, mnist_dir, tmp_path):
    user_models("model7", BROKEN["error in forward"][0])
    done = main_cli("--models", "model7", "--traceback", "--data-dir", str(mnist_dir), "--out", str(tmp_path))
    assert done.returncode == 2
    first, rest = done.stderr.split("\n", 1)
    assert "line 17 (in forward)" in first and "Traceback (most recent call last)" in rest and "model7.py" in rest


def test_a_broken_file_leaves_help_report_and_other_models_working(user_models, mnist_dir, tmp_path):
    user_models("model7", BROKEN["syntax error"][0])
    help_text = main_cli("--help")
    assert help_text.returncode == 0 and "--models NAME" in help_text.stdout
    assert "model files that cannot be used now:\n  model7: models/model7.py, line 11" in help_text.stdout
    done = smoke(mnist_dir, tmp_path, "model3")
    assert done.returncode == 0, done.stderr[-2000:]
    report = main_cli("--report", *map(str, tmp_path.glob("*-model3-seed1")))
    assert report.returncode == 0, report.stderr[-2000:]
    assert (tmp_path / "README.md").exists()


def test_a_good_file_passes_and_plain_main_plans_it(user_models, mnist_dir, tmp_path):
    user_models("model7", GOOD)
    done = smoke(mnist_dir, tmp_path, "model7")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Config: model7" in done.stdout
