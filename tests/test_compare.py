"""--compare end to end on two tiny models: it trains what the sides lack, says which is ahead, writes the table, and
a second identical command trains nothing."""
import json
import textwrap

import pytest

from tests.conftest import main_cli

TINY = textwrap.dedent('''
    """Model{n}: a tiny test network ({hidden} hidden units)."""
    import torch.nn.functional as F
    from torch import nn

    from models.kit import SGDRecipe, Target

    RECIPE = SGDRecipe(epochs=2, batch_size=64, lr=0.05, momentum=0.9, step_size=1, gamma=0.5, augment=False)
    TARGET = Target(80.0, hits=1, window=2)


    class Model{n}(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(784, {hidden})
            self.out = nn.Linear({hidden}, 10)

        def forward(self, x):
            return F.log_softmax(self.out(F.relu(self.hidden(x.flatten(1)))), dim=1)
    ''')


@pytest.fixture
def tiny_models(user_models):
    """A user's two tiny models: model7 (2 hidden units) and model8 (32)."""
    user_models("model7", TINY.format(n=7, hidden=2))
    user_models("model8", TINY.format(n=8, hidden=32))


def test_compare_trains_what_is_missing_then_reuses_it(tiny_models, mnist_dir, tmp_path):
    def compare():
        return main_cli("--compare", "model7", "model8", "--seeds", "1-5", "--limit-train", "600",
                        "--limit-test", "300", "--device", "cpu", "--compile", "off", "--data-dir", str(mnist_dir),
                        "--out", str(tmp_path))

    first = compare()
    assert first.returncode == 0, first.stderr[-2000:]
    records = [json.loads(path.read_text()) for path in tmp_path.glob("*/metrics.json")]
    expected = [(model, seed) for model in ("model7", "model8") for seed in range(1, 6)]
    assert sorted((r["model"], r["seed"]) for r in records) == expected
    assert all(r["split"] == "validation" and r["model_hash"] for r in records)
    assert "A has 0, B has 0 already, 10 runs to train." in first.stdout
    assert "Verdict: B is ahead by" in first.stdout  # 32 hidden units against 2, on 500 images: not luck
    assert "exact over all 252 relabellings" in first.stdout and "B ahead on 5 of 5 seeds" in first.stdout
    [table] = tmp_path.glob("compare-*.md")
    text = table.read_text()
    assert "| A | model7 | 5 |" in text and "| B | model8 | 5 |" in text and "**Verdict:** B is ahead" in text

    second = compare()
    assert second.returncode == 0, second.stderr[-2000:]
    assert "A has 5, B has 5 already: nothing to train." in second.stdout and "EPOCH" not in second.stdout
    assert len(list(tmp_path.glob("*/metrics.json"))) == 10
    verdict = [line for line in first.stdout.splitlines() if line.startswith("Verdict")]
    assert verdict == [line for line in second.stdout.splitlines() if line.startswith("Verdict")]
    assert "5 reused, 0 trained" in second.stdout


def test_a_changed_setting_trains_only_that_side(tiny_models, mnist_dir, tmp_path):
    """B with --set: A's runs of the file's recipe count, B's changed recipe is trained."""
    base = ["--limit-train", "600", "--limit-test", "300", "--device", "cpu", "--compile", "off",
            "--data-dir", str(mnist_dir), "--out", str(tmp_path), "--seeds", "1-5"]
    trained = main_cli("--models", "model8", "--validation", *base)
    assert trained.returncode == 0, trained.stderr[-2000:]
    done = main_cli("--compare", "model8", "model8", "--set", "lr=0.01", *base)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "B = model8 (lr=0.01)" in done.stdout and "A has 5, B has 0 already, 5 runs to train." in done.stdout
    assert "  B: model8's default recipe with lr=0.01 (recipe flags and --set change B only): epochs=2 " in done.stdout


def test_a_look_counts_the_seeds_it_reused_not_every_record_a_side_holds(tiny_models, mnist_dir, tmp_path):
    """A holds six seeds; the sequential design's first look uses five of them and trains B's five."""
    base = ["--limit-train", "600", "--limit-test", "300", "--device", "cpu", "--compile", "off",
            "--data-dir", str(mnist_dir), "--out", str(tmp_path)]
    trained = main_cli("--models", "model7", "--validation", "--seeds", "1-6", *base)
    assert trained.returncode == 0, trained.stderr[-2000:]
    done = main_cli("--compare", "model7", "model8", *base)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Stopped at look 1 of 4" in done.stdout
    assert "  A: model7: " in done.stdout and "; 5 reused, 0 trained\n" in done.stdout
    assert "; 0 reused, 5 trained\n" in done.stdout


def test_too_few_epochs_for_the_targets_statistic_is_one_line_before_training(tmp_path):
    """Model3's target reads the last 5 epochs: --epochs 2 on B is refused, naming the fix, and nothing trains."""
    done = main_cli("--compare", "model3", "model4", "--seeds", "1-5", "--epochs", "2", "--out", str(tmp_path))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert ("B = model4 (epochs=2) trains 2 epochs: give --epochs 5 or more (recipe flags change B only)"
            in done.stderr)
    assert not list(tmp_path.iterdir()) and "EPOCH" not in done.stdout


def test_without_seeds_the_sequential_design_stops_at_the_first_look_that_decides(tiny_models, mnist_dir, tmp_path):
    """32 hidden units against 2: clear at 5 seeds a side, so the looks at 10, 15 and 20 are never trained."""
    done = main_cli("--compare", "model7", "model8", "--limit-train", "600", "--limit-test", "300", "--device", "cpu",
                    "--compile", "off", "--data-dir", str(mnist_dir), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Design: sequential: looks at 5, 10, 15, 20 seeds a side" in done.stdout  # the plan names the design
    assert "each look trains only the seeds it lacks" in done.stdout
    assert "Look 1 of 4 (5 seeds a side): B − A +" in done.stdout and ": decided." in done.stdout
    assert "Stopped at look 1 of 4: 30 of the design's 40 runs not needed." in done.stdout
    assert "Look 2 of 4" not in done.stdout and len(list(tmp_path.glob("*/metrics.json"))) == 10
    assert "Verdict: B is ahead by" in done.stdout and "the level of look 1 of 4, 5 seeds a side)" in done.stdout
    [page] = tmp_path.glob("compare-*.md")
    text = page.read_text()
    assert "Design: sequential" in text and "| code hash |" in text and "| training time, all seeds |" in text
    assert "| model and recipe | model7 | model8 |" in text
