"""A model file is the whole experiment: a new file with its own recipe fields, optimizer and per-batch
schedule trains through main.py with no other edit, and the suite stays green with it."""
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from tests.conftest import ROOT, main_cli

ADAM_MODEL = textwrap.dedent('''
    """Model7 - a test model trained with Adam and a per-batch OneCycle schedule.

    Target:
    - none; it checks that a model file can name its own training method.

    Recipe:
    Adam, OneCycleLR stepped every batch.
    """
    from dataclasses import dataclass

    import torch
    import torch.nn.functional as F
    from torch import nn

    from models.kit import FRACTIONS, Recipe, TrainingMethod, setting


    @dataclass(frozen=True, kw_only=True)
    class AdamRecipe(Recipe):
        betas: tuple[float, float] = setting((0.9, 0.999), help="Adam's betas, the moments' decay rates",
                                             check=FRACTIONS)


    RECIPE = AdamRecipe(epochs=3, batch_size=64, lr=0.01, augment=False)


    def configure_optimizers(model, recipe, batches_per_epoch):
        optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, betas=recipe.betas)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr, epochs=recipe.epochs,
                                                        steps_per_epoch=batches_per_epoch)
        return TrainingMethod(optimizer, scheduler, step="batch")


    class Model7(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(784, 32)
            self.out = nn.Linear(32, 10)

        def forward(self, x):
            return F.log_softmax(self.out(F.relu(self.hidden(x.flatten(1)))), dim=1)
    ''')


@pytest.fixture
def adam_model(user_models):
    """models/ with a user's models/model7.py (Adam, a per-batch schedule) added, and nothing else changed."""
    user_models("model7", ADAM_MODEL)


def one_cycle_starts(lr: float, epochs: int, batches: int) -> list[float]:
    """The rate OneCycleLR gives at the start of each epoch."""
    optimizer = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, epochs=epochs, steps_per_epoch=batches)
    starts = []
    for _ in range(epochs):
        starts.append(optimizer.param_groups[0]["lr"])
        for _ in range(batches):
            optimizer.step()
            scheduler.step()
    return starts


def train(mnist_dir, out, *flags):
    done = main_cli("--models", "model7", "--limit-train", "1024", "--limit-test", "500",
                    "--data-dir", str(mnist_dir), "--out", str(out), *flags)
    records = [json.loads(p.read_text()) for p in out.glob("*/metrics.json")]
    return done, records


def test_adam_and_one_cycle_from_the_model_file(adam_model, mnist_dir, tmp_path):
    done, [record] = train(mnist_dir, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Training method: Adam + OneCycleLR (per batch)" in done.stdout
    losses = [e["train_loss"] for e in record["epochs"]]
    assert losses[-1] < 0.6 * losses[0]
    assert [e["lr"] for e in record["epochs"]] == pytest.approx(one_cycle_starts(0.01, 3, 16))
    assert record["config"]["betas"] == [0.9, 0.999] and record["config"]["recipe_type"] == "AdamRecipe"


def test_common_flags_and_set_override_the_model_files_recipe(adam_model, mnist_dir, tmp_path):
    done, [record] = train(mnist_dir, tmp_path, "--lr", "0.02", "--epochs", "2", "--set", "betas=0.8,0.99")
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(record["epochs"]) == 2 and record["config"]["lr"] == 0.02
    assert [e["lr"] for e in record["epochs"]] == pytest.approx(one_cycle_starts(0.02, 2, 16))
    assert record["config"]["betas"] == [0.8, 0.99]
    assert "betas=0.8,0.99" in done.stdout  # the config line


def test_a_field_declared_once_is_in_help_and_validated(adam_model, tmp_path):
    help_text = main_cli("--help").stdout
    assert "betas (model7): Adam's betas, the moments' decay rates" in help_text
    for value, message in [("1.5,0.9", "--set betas must be numbers in [0, 1), got 1.5,0.9"),
                           ("0.9", "--set betas=0.9: expected 2 comma-separated floats"),
                           ("0.9,fast", "--set betas=0.9,fast: expected 2 comma-separated floats")]:
        done = main_cli("--models", "model7", "--set", f"betas={value}", "--out", str(tmp_path))
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_a_field_the_recipe_lacks_is_refused(adam_model, tmp_path):
    done = main_cli("--models", "model7", "--momentum", "0.5", "--out", str(tmp_path))
    assert done.returncode == 2 and "AdamRecipe has no setting 'momentum'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow  # a copied checkout, and the fast tier run again in it
def test_the_guides_model_file_keeps_the_suite_green(tmp_path, mnist_dir):
    """The promise of "Adding a model": models/README.md's example, saved as models/model7.py beside the published
    models (its own recipe class, AdamW, its own schedule, no TARGET), passes the whole suite's fast tier, and the
    tests that check every model check model7 too."""
    copy = tmp_path / "checkout"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", ".venv", "MNIST", "runs", "__pycache__",
                                                               ".pytest_cache", ".gpu"))
    [example] = re.findall(r"```python\n(.*?)```", (ROOT / "models" / "README.md").read_text(), re.S)
    assert "class Model7(nn.Module)" in example and "TARGET" not in example and "torch.optim.AdamW" in example
    (copy / "models" / "model7.py").write_text(example)
    done = subprocess.run([sys.executable, "-m", "pytest", "-rA", "-p", "no:cacheprovider"],
                          cwd=copy, capture_output=True, text=True, timeout=600,
                          env=os.environ | {"MNIST_DATA_DIR": str(mnist_dir)})
    assert done.returncode == 0, done.stdout[-3000:]
    passed = re.findall(r"^PASSED \S+::(\w+)(?:\[(\w+)\])?", done.stdout, re.M)  # -rA's summary lines
    checked = {name for name, parameter in passed if parameter == "model7"}
    assert {"test_forward_gives_log_probabilities", "test_every_recipe_is_complete_and_valid",
            "test_every_models_search_space_names_its_recipes_fields_and_leaves_fixed_ones"} <= checked
    assert ("test_the_quickest_models_run_first_when_none_is_named", "") in passed
