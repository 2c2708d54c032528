"""--tune: a small Optuna study end to end, workers sharing one storage (a journal file, a PostgreSQL server),
Ctrl-C and continue, bad input."""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import optuna
import pytest

import data.loaders
import models
from experiment import studies
from commands import tune
from core.settings import ConfigError
from tests.conftest import ROOT, main_cli

TINY = dict(trials=4, seeds=[1], name=None, storage=None, prune_after=0, overrides={"epochs": 2})


class PruneOddTrials(optuna.pruners.BasePruner):
    """A pruner set up to prune: every odd-numbered trial stops after its first reported epoch."""

    def prune(self, study, trial) -> bool:
        return trial.number % 2 == 1


def tiny_study(tmp_path, mnist_dir, **changes) -> tune.Study:
    settings = TINY | changes
    return tune.make_study("model3", out=str(tmp_path), run_settings={"limit_train": 600, "data_dir": str(mnist_dir)},
                           **settings)


def records_of(folder):
    return [json.loads(p.read_text()) for p in sorted(folder.glob("trials/*/*/metrics.json"))]


def test_a_tiny_study_end_to_end_never_reads_the_test_set(tmp_path, mnist_dir, monkeypatch, capsys):
    opened = []
    real = data.loaders.mnist_dataset
    monkeypatch.setattr(data.loaders, "mnist_dataset",
                        lambda directory, train, transform: opened.append(train) or real(directory, train, transform))
    study = tiny_study(tmp_path, mnist_dir)
    tune.work(study, pruner=PruneOddTrials())
    assert opened and all(opened), "the objective opened the test set"

    states = [t.state for t in study.load().trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED] * 2
    found = records_of(study.folder)
    assert len(found) == 4 and all(r["config"]["validation"] for r in found)
    assert [r["status"] for r in found] == ["completed", "pruned", "completed", "pruned"]
    assert found[1]["reason"].startswith("pruned at epoch 0") and len(found[1]["epochs"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("trial 2/4 (#1): lr=") and "pruned at epoch 0" in lines[1] and "left" in lines[1]

    summary = tune.summarize(study)
    best = max(study.load().get_trials(states=[optuna.trial.TrialState.COMPLETE]), key=lambda t: t.value)
    assert f"Best: trial {best.number}" in summary
    assert f"RECIPE = SGDRecipe(epochs=2, batch_size={best.params['batch_size']}, lr={best.params['lr']!r}," in summary
    for name in ("optimization-history.png", "param-importances.png", "study.md"):
        assert (study.folder / name).stat().st_size > 500


def test_a_study_continued_after_the_model_file_changed_keeps_the_recipe_it_began_with(tmp_path, mnist_dir,
                                                                                       monkeypatch, capsys):
    began = tiny_study(tmp_path, mnist_dir, trials=1).recipe
    file_recipe = models.get_recipe
    monkeypatch.setattr(models, "get_recipe", lambda *name: file_recipe(*name).with_overrides({"floor": 0.01}))
    continued = tiny_study(tmp_path, mnist_dir, trials=1)
    assert continued.recipe == began and began.floor != 0.01
    assert tune.tune(continued) == 0
    assert f"not models/model3.py's now: floor={began.floor:g} (now 0.01)." in capsys.readouterr().out
    [record] = records_of(continued.folder)
    assert record["config"]["floor"] == began.floor
    assert studies.load_study(continued.folder).recipe == began  # --report reads it from study.json
    assert tiny_study(tmp_path, mnist_dir, name="fresh").recipe.floor == 0.01  # a new study: the file's recipe now


@pytest.mark.parametrize("score", [None, "mean"])
def test_the_score_is_the_worst_seed_for_k_of_n_targets_or_as_asked(tmp_path, mnist_dir, score):
    # Every searched field fixed: a recipe drawn at random may diverge to the same constant guess on both
    # seeds, and then the worst seed and the mean could not be told apart.
    steady = {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4, "batch_size": 64, "step_size": 1, "gamma": 0.1}
    study = tiny_study(tmp_path, mnist_dir, trials=1, seeds=[1, 2], overrides={"epochs": 3} | steady, score=score)
    assert study.score == (score or "worst")  # Model3's target: 3 of the last 5
    tune.work(study, pruner=optuna.pruners.NopPruner())
    [trial] = study.load().trials
    found = records_of(study.folder)
    window = models.get_target("model3").window  # 5: more than the 3 epochs, so every epoch counts
    per_seed = [sum(r["epochs"][i]["eval_acc"] for i in range(3)) / 3 for r in found]
    expected = min(per_seed) if study.score == "worst" else sum(per_seed) / 2
    assert window > 3 and len(found) == 2 and per_seed[0] != per_seed[1] and trial.value == pytest.approx(expected)


def test_a_study_from_before_scores_were_chosen_reads_as_the_mean():
    assert studies.load_study(ROOT / "results" / "tuning" / "model3-tune").score == "mean"


@pytest.mark.slow  # two real worker processes
def test_two_workers_on_one_storage_finish_exactly_n_trials(tmp_path, mnist_dir):
    command = [sys.executable, "main.py", "--tune", "--models", "model3", "--trials", "5", "--epochs", "1",
               "--limit-train", "384", "--data-dir", str(mnist_dir), "--out", str(tmp_path), "--study", "shared"]
    workers = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), [err[-2000:] for _, err in outputs]
    study = studies.load_study(tmp_path / "shared")
    counted = tune.counted_trials(study.load())
    assert len(counted) == 5 and all(t.state.is_finished() for t in counted)
    trial_of_run = [p.parent.parent.name for p in (study.folder / "trials").glob("*/*/metrics.json")]
    assert len(trial_of_run) == len(set(trial_of_run)) == 5  # one run per counted trial: none ran twice


POSTGRES_URL = os.environ.get("MNIST8K_POSTGRES_URL")


@pytest.mark.slow  # a PostgreSQL server and real worker processes, one killed
@pytest.mark.skipif(not POSTGRES_URL, reason="no PostgreSQL server given: .ci/run starts one and sets MNIST8K_POSTGRES_URL")
def test_workers_on_postgresql_run_each_trial_once_and_redo_a_killed_workers_trial(tmp_path, mnist_dir):
    name = f"ci-{uuid.uuid4().hex[:8]}"  # a fresh study on a server that may keep others
    command = [sys.executable, "main.py", "--tune", "--models", "model3", "--trials", "4", "--epochs", "3",
               "--limit-train", "384", "--prune-after", "99", "--data-dir", str(mnist_dir), "--out", str(tmp_path),
               "--study", name, "--storage", POSTGRES_URL]
    beat = os.environ | {"MNIST8K_HEARTBEAT_SECONDS": "1"}  # a silent worker's trial fails after 6 s, not 3 min
    workers = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=beat)
               for _ in range(2)]
    killed = workers[0]

    def trials() -> list[optuna.trial.FrozenTrial]:
        try:
            return optuna.load_study(study_name=name, storage=POSTGRES_URL).trials
        except KeyError:  # not created yet
            return []

    def running_in_killed() -> bool:
        return any(t.state == optuna.trial.TrialState.RUNNING and t.user_attrs.get("worker", {}).get("pid") == killed.pid
                   for t in trials())

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not running_in_killed():
        time.sleep(0.2)
    assert running_in_killed(), "the first worker never started a trial"
    killed.kill()
    killed.communicate()
    _, stderr = workers[1].communicate(timeout=300)
    assert workers[1].returncode == 0, stderr[-2000:]
    time.sleep(7)  # past the grace period: whoever looks next fails the killed worker's trial
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=beat)
    assert done.returncode == 0, done.stderr[-2000:]

    finished = trials()
    of_killed = [t for t in finished if t.user_attrs["worker"]["pid"] == killed.pid]
    assert of_killed[-1].state == optuna.trial.TrialState.FAIL  # failed, not counted: redone by another worker
    counted = tune.counted_trials(optuna.load_study(study_name=name, storage=POSTGRES_URL))
    assert len(counted) == 4 and all(t.state == optuna.trial.TrialState.COMPLETE for t in counted)
    completed_runs = [r for r in records_of(tmp_path / name) if r["status"] == "completed"]
    assert len(completed_runs) == 4  # every counted trial ran once, none twice


@pytest.mark.slow  # a real process, stopped and killed
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL])
def test_a_stopped_study_continues_with_the_same_command(tmp_path, mnist_dir, stop):
    """Ctrl-C fails the running trial at once; a killed worker's trial is failed by the next worker."""
    command = [sys.executable, "main.py", "--tune", "--models", "model3", "--trials", "2", "--epochs", "20",
               "--limit-train", "384", "--data-dir", str(mnist_dir), "--out", str(tmp_path), "--prune-after", "99"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(r["epochs"] for r in records_of(tmp_path / "model3-tune")):
        time.sleep(0.2)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=60)
    [stopped] = records_of(tmp_path / "model3-tune")
    if stop == signal.SIGINT:
        assert process.returncode == 130 and "run the same command to continue" in stderr and "Traceback" not in stderr
        assert stopped["status"] == "interrupted"
    else:
        assert stopped["status"] == "running"  # the worker had no chance to write more

    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "0 of 2 trials done or running" in done.stdout  # the stopped trial is not counted, and is redone
    trials = studies.load_study(tmp_path / "model3-tune").load().trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE", "COMPLETE"]


@pytest.mark.parametrize("flags,message", [
    (["--trials", "0"], "--trials must be positive, got 0"),
    (["--storage", "postgresql://nobody@127.0.0.1:1/studies"], "--storage postgresql://nobody@127.0.0.1:1/studies: cannot open it"),
    (["--storage", "nonsense://"], "--storage nonsense://: cannot open it"),
    ([], "--tune searches one model's recipe: give --models NAME"),
])
def test_bad_study_input_is_one_line_and_exit_2(tmp_path, flags, message):
    chosen = [] if not flags else ["--models", "model3"]
    done = main_cli("--tune", *chosen, *flags, "--out", str(tmp_path))
    assert done.returncode == 2, done.stderr[-2000:]
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*/trials"))


def test_a_search_space_naming_an_unknown_field_is_refused_before_training(tmp_path, mnist_dir, monkeypatch):
    monkeypatch.setattr(models, "get_search_space",
                        lambda name: lambda trial, recipe, fixed: {"colour": trial.suggest_float("colour", 0, 1)})
    with pytest.raises(ConfigError, match="SGDRecipe has no setting 'colour'"):
        tiny_study(tmp_path, mnist_dir)
    assert not (tmp_path / "model3-tune").exists()


@pytest.mark.any_models
@pytest.mark.parametrize("name", models.available())
def test_every_models_search_space_names_its_recipes_fields_and_leaves_fixed_ones(name):
    recipe = models.get_recipe(name)
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    suggested = tune.search_space(name)(trial, recipe, {"lr"})
    assert suggested and "lr" not in suggested
    assert dataclasses.replace(recipe, **suggested) != recipe


@pytest.mark.parametrize("schedule, searched, left", [("step", {"step_size", "gamma"}, {"warmup"}),
                                                      ("one-cycle", {"warmup"}, {"step_size", "gamma"})])
def test_the_default_search_space_varies_the_schedules_own_settings(schedule, searched, left):
    recipe = models.get_recipe("model2").with_overrides({"schedule": schedule})
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    suggested = tune.default_search_space(trial, recipe, set())
    assert searched <= set(suggested) and not left & set(suggested)
