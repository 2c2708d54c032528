"""The whole target: accuracy within a budget of parameters and epochs. A run over its budget does not meet its target,
however accurate, and every place that judges a run says why."""
import json
import textwrap

import pytest

import models
from core.records import EpochRecord, RunRecord, Target
from report.tables import results_table, summary_table
from tests.conftest import main_cli
from utils import model_summary, parameter_count, torchsummary_table

MODEL3 = Target(99.40, hits=3, window=5, max_parameters=7_999, max_epochs=15)


def record(parameters: int, epochs: int, accuracy: float = 99.5, target: Target = MODEL3) -> RunRecord:
    run = RunRecord(run_id="r", model="model3", parameters=parameters, receptive_field=28, macs_per_image=1, seed=1,
                    device="cpu", config={"epochs": epochs}, versions={"torch": "x"}, git_commit="abc",
                    started="2026-01-01T00:00:00", target=target, status="completed", seconds=60.0)
    for epoch in range(epochs):
        run.add_epoch(EpochRecord(epoch, 0.1, 0.1, 99.0, 0.02, accuracy, 1.0))
    return run


def test_the_budget_is_part_of_the_target_and_says_why_a_run_is_over_it():
    assert MODEL3.over_budget(7_944, 15) is None and MODEL3.over_budget(7_999, 15) is None
    assert MODEL3.over_budget(8_516, 15) == "8,516 parameters > 7,999"
    assert MODEL3.over_budget(7_944, 20) == "20 epochs > 15"
    assert MODEL3.over_budget(8_516, 20) == "8,516 parameters > 7,999, 20 epochs > 15"
    assert str(MODEL3) == "≥ 99.40% in 3 of the last 5, ≤ 7,999 parameters, ≤ 15 epochs"
    assert str(Target(99.40, hits=3, window=15)) == "≥ 99.40% in 3 of the last 15"  # no budget: none stated
    assert Target(99.40, hits=3, window=5).over_budget(10**6, 100) is None


@pytest.mark.parametrize("parameters,epochs,verdict", [
    (7_944, 15, "target met: yes"),
    (8_516, 15, "target not met: 8,516 parameters > 7,999"),
    (7_944, 20, "target not met: 20 epochs > 15"),
])
def test_an_accurate_run_over_its_budget_does_not_meet_its_target(parameters, epochs, verdict):
    run = record(parameters, epochs)
    assert run.target_hits() == 5  # accurate enough on every epoch of the window
    assert run.target_met() is (verdict == "target met: yes") and run.target_verdict() == verdict
    assert json.loads(json.dumps(run.to_json()))["target"]["max_parameters"] == 7_999  # the record keeps the budget
    assert RunRecord.from_json(run.to_json()).target == MODEL3
    row = results_table([run]).splitlines()[2]
    assert ("| yes |" in row) is (verdict == "target met: yes")


def test_records_made_before_budgets_read_as_made():
    old = RunRecord.from_json(record(8_516, 15, target=Target(99.40, 3, 5)).to_json() | {
        "target": {"accuracy": 99.40, "hits": 3, "window": 5}})
    assert old.target == Target(99.40, 3, 5) and old.target_met() is True  # judged by the target it was made under


def test_a_row_pooling_records_from_before_budgets_states_the_target_as_it_is_now():
    old = record(7_944, 15, target=Target(99.40, 3, 5))
    new = RunRecord.from_json(record(7_944, 15).to_json() | {"run_id": "s", "seed": 2, "started": "2026-02-01T00:00:00"})
    for pooled in ([old, new], [new, old]):
        [row] = summary_table(pooled).splitlines()[2:]
        assert f"| {MODEL3} | 2/2 " in row, row


def test_the_published_models_declare_the_budgets_their_notes_state():
    budgets = {name: (models.get_target(name).max_parameters, models.get_target(name).max_epochs)
               for name in ("model3", "model4", "model5", "model6")}
    assert budgets == {"model3": (7_999, 15), "model4": (5_000, 15), "model5": (4_000, 15), "model6": (3_000, 15)}


def test_a_run_over_its_budget_is_warned_before_training_goes_on_and_ends_not_met(mnist_dir, tmp_path):
    done = main_cli("--models", "model3", "--epochs", "16", "--limit-train", "128", "--limit-test", "100",
                    "--device", "cpu", "--compile", "off", "--data-dir", str(mnist_dir), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.strip() == ("main.py: warning: model3 is over its target's budget (16 epochs > 15): its runs "
                                   "go on, and none can meet the target")
    assert "EPOCH: 15" in done.stdout and "of 5 epochs, target not met: 16 epochs > 15\n" in done.stdout
    [saved] = [json.loads(path.read_text()) for path in tmp_path.glob("*/metrics.json")]
    assert saved["target"]["max_epochs"] == 15 and len(saved["epochs"]) == 16


SHARED = textwrap.dedent('''
    """Model7: one 3x3 convolution used three times, a batch norm per use."""
    import torch.nn.functional as F
    from torch import nn

    from models.kit import SGDRecipe, Target

    RECIPE = SGDRecipe(epochs=1, batch_size=64, lr=0.05, momentum=0.9, step_size=1, gamma=0.5, augment=False)
    TARGET = Target(99.40, hits=1, window=1, max_parameters=1_000)


    class Model7(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(1, 8, 3, bias=False)                   # 72
            self.shared = nn.Conv2d(8, 8, 3, padding=1, bias=False)     # 576: the budget holds it once, not 3 times
            self.norms = nn.ModuleList(nn.BatchNorm2d(8) for _ in range(3))
            self.head = nn.Conv2d(8, 10, 1, bias=False)                 # 80

        def forward(self, x):
            x = self.stem(x)
            for norm in self.norms:  # the same weights each time
                x = F.relu(norm(self.shared(x)))
            return F.log_softmax(self.head(x).mean((2, 3)), dim=1)
    ''')


def test_a_block_used_more_than_once_is_counted_once_in_the_record_the_log_and_the_budget(user_models, mnist_dir,
                                                                                          tmp_path):
    # The shared convolution is one tensor: 72 + 576 + 3 x 16 + 80 = 776 parameters, within the budget of 1,000;
    # torchsummary lists the convolution once per use (776 + 2 x 576 = 1,928), which would be over it.
    user_models("model7", SHARED)
    network = models.get_model("model7")
    assert parameter_count(network) == 776 and "Total params: 1,928" in torchsummary_table(network)
    done = main_cli("--models", "model7", "--limit-train", "128", "--limit-test", "100",
                    "--device", "cpu", "--compile", "off", "--data-dir", str(mnist_dir), "--out", str(tmp_path))
    assert done.returncode == 0 and done.stderr == "", done.stderr[-2000:]
    assert ("Shared weights: the table lists a layer once per use, so its total counts 1,928; the network has 776 "
            "parameters, each counted once") in done.stdout
    assert "parameters >" not in done.stdout  # within its budget: the verdict names no parameter excess
    [saved] = [json.loads(path.read_text()) for path in tmp_path.glob("*/metrics.json")]
    assert saved["parameters"] == 776 and saved["target"]["max_parameters"] == 1_000


def test_the_summary_says_nothing_of_sharing_where_no_layer_is_used_twice():
    assert "Shared weights" not in model_summary(models.get_model("model5"))
