import json
from dataclasses import asdict

import pytest

import models

from experiment.configs import config_for
from main import main
from experiment.definition import current_network, experiment_label
from core.records import EpochRecord, RunRecord, Target, load_record
from report.pages import SUMMARY_END, SUMMARY_START, write_pages
from report.plots import column_label
from report.tables import load_runs, reproduce_command, results_table, summary_table


def fake_run(folder, model, seed, accuracies, status="completed", planned=None, target=Target(99.40, 3, 5),
             recipe=None, parameters=None, macs=None, validation=False, compiled=False, recipe_name=None,
             precision="fp32", **run_settings):
    config = config_for("model3" if model not in models.available() else model, seed=seed, validation=validation,
                        recipe_overrides={"epochs": planned or len(accuracies)} | (recipe or {}),
                        recipe_name=recipe_name, **run_settings)
    network = current_network(model) if model in models.available() else (1, 1)
    record = RunRecord(run_id=folder.name, model=model, parameters=parameters or network[0], receptive_field=28,
                       macs_per_image=macs or network[1],
                       seed=seed, device="cpu", config=config.to_json(), target=target, versions={"torch": "x"},
                       git_commit="abc", started="2026-01-01T00:00:00", machine="test machine", status=status,
                       seconds=120.0, compiled=compiled, precision=precision,
                       split="validation" if validation else "test")
    record.epochs = [EpochRecord(i, 0.1, 0.1, acc - 0.2, 0.05, acc, 1.0) for i, acc in enumerate(accuracies)]
    record.best_eval_acc = max(accuracies)
    record.best_epoch = accuracies.index(record.best_eval_acc)
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(record.to_json()))
    (folder / "log.txt").write_text("summary\nEPOCH: 0\nTest set: ...\n")
    (folder / "misclassified.json").write_text(json.dumps([{"index": 0, "label": 7, "predicted": 1}]))
    return folder


@pytest.mark.any_models
def test_report_from_records_alone(tmp_path, mnist_dir):
    runs = tmp_path / "runs"
    folders = [fake_run(runs / "a", "model3", 1, [99.0, 99.41, 99.42, 99.43, 99.40, 99.38]),
               fake_run(runs / "b", "model3", 2, [99.1, 99.2, 99.3, 99.39, 99.38, 99.37]),
               fake_run(runs / "c", "model1", 1, [98.0, 98.9], status="interrupted", planned=15, target=None)]
    (runs / "pages.json").write_text('{"featured": "model3"}')
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{SUMMARY_START}\nold\n{SUMMARY_END}\noutro\n")
    page = write_pages(folders, readme, mnist_dir)
    section = page.read_text()
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "\nold\n" not in text
    assert "| model" not in text  # model1's run stopped; model3's differ from its file (6 epochs)
    assert "No completed run yet of model1, model3 as its file now stands." in text  # of the models it has runs of
    assert "(1 group of runs)" in text
    assert section.index("](parameters.png)") < section.index("| model |")  # the picture opens the page
    assert "by `python main.py --report " in section and "EPOCH: 0" in section  # its command; the featured log
    assert "](augmentation.png)" in section  # the featured model's training digits, augmented
    target = "≥ 99.40% in 3 of the last 5"
    row = f"| model3 (epochs=6) | 7,944 | 28 | 1 | 99.23 | 99.43 (3) | 99.38 | {target} | 4/5 | yes | 2.0 min | cpu | a |"
    assert row in section
    assert f"| model3 (epochs=6) | 7,944 | 28 | 2 | 99.19 | 99.39 (3) | 99.37 | {target} | 0/5 | no |" in section
    assert "| model1 | 6,379,786 | 28 | 1 | 98.70 | 98.90 (1) | 98.90 | - | - | partial: 2 of 15 epochs, CPU |" in section
    assert ("| model3 (epochs=6) | 2 | 99.21 ± 0.03 | 99.41 ± 0.03 | 99.38 ± 0.01 | 99.37 ± 0.06 | 99.33 (seed 2) | "
            "2.00 ± 2.83 | 1/2 (50%, 9–91%) |") in section
    for name in ("model3-epochs-6.png", "model1.png", "comparison.png", "parameters.png", "misclassified.png",
                 "augmentation.png"):
        assert (runs / name).stat().st_size > 1000
    assert write_pages(folders, readme, mnist_dir).read_text() == section


def test_readme_shows_each_model_as_its_file_now_stands(tmp_path, mnist_dir):
    """The top README's picture and rows are the model files' networks and recipes; the results page keeps the other
    recipes and designs tried."""
    full = [99.0] * 10 + [99.41, 99.42, 99.40, 99.44, 99.45]
    runs = tmp_path / "results"
    folders = [fake_run(runs / f"filed{seed}", "model4", seed, full) for seed in (1, 2)]
    folders += [fake_run(runs / "lr", "model4", 1, full, recipe={"lr": 0.05}),
                fake_run(runs / "older", "model4", 1, full, parameters=4720)]
    readme = tmp_path / "README.md"
    readme.write_text(f"{SUMMARY_START}\n{SUMMARY_END}\n")
    section = write_pages(folders, readme, mnist_dir).read_text()
    text = readme.read_text()
    assert "| model4 | 4,612 | 2 | 99.45 ± 0.00 | 99.42 ± 0.00 | 99.42 (seed 1) |" in text
    assert "lr=0.05" not in text and "4,720" not in text and "(2 groups of runs)" in text
    assert "No completed run yet" not in text
    assert "](results/frontier.png)" in text and (runs / "frontier.png").stat().st_size > 1000
    for group in ("| model4 (lr=0.05) |", "| model4 (4,720 parameters at abc) |", "| model4 |"):
        assert group in section


def test_parameters_plot_labels_each_column_with_its_size_and_pass_rate(tmp_path):
    records = [load_record(fake_run(tmp_path / f"s{seed}", "model3", seed, accuracies, recipe={"lr": 0.1}))
               for seed, accuracies in ((1, [99.0, 99.41, 99.42, 99.43, 99.40, 99.38]), (2, [99.0] * 6))]
    name = experiment_label(records[0])
    assert column_label(name, records) == "model3\n(epochs=6\nlr=0.1)\n7,944 params\ntarget met 1/2"
    changed = records[0].parameters + 1
    record = load_record(fake_run(tmp_path / "old", "model3", 1, [99.0] * 6, parameters=changed))
    assert column_label(experiment_label(record), [record]) == f"model3\n({changed:,}\nparameters at\nabc,\nepochs=6)\ntarget met 0/1"
    record = load_record(fake_run(tmp_path / "decay", "model3", 1, [99.0] * 6, recipe={"weight_decay": 1e-4}))
    assert column_label(experiment_label(record), [record]).startswith("model3\n(epochs=6\nweight_decay=\n0.0001)\n")


def test_runs_of_one_model_are_grouped_by_recipe(tmp_path, mnist_dir):
    """The file's recipe, each named recipe (a record from before recipes had names lands in the row its values
    match) and any change to one are separate rows, spreads and plots; each reproduces with its name."""
    full = [99.0] * 10 + [99.41, 99.42, 99.40, 99.44, 99.45]
    published = asdict(models.get_recipe("model3", "published"))
    folders = [fake_run(tmp_path / f"current{seed}", "model3", seed, full) for seed in (1, 2)]
    folders += [fake_run(tmp_path / "published1", "model3", 1, full, recipe_name="published")]
    folders += [fake_run(tmp_path / "published2", "model3", 2, full, recipe=published)]  # named by its values
    folders += [fake_run(tmp_path / "other", "model3", 1, full, recipe={"lr": 0.05, "momentum": 0.8})]
    folders += [fake_run(tmp_path / "changed", "model3", 1, full, recipe={"lr": 0.1}, recipe_name="published")]
    runs = load_runs(folders)
    assert [experiment_label(run.record) for run in runs] == ["model3"] * 2 + ["model3 · published"] * 2 + \
        ["model3 (lr=0.05 momentum=0.8)", "model3 · published (lr=0.1)"]
    assert [reproduce_command(run.record) for run in runs[2:4]] == [
        f"python main.py --models model3 --seeds {seed} --recipe published --device cpu --compile off" for seed in (1, 2)]
    assert reproduce_command(runs[5].record).startswith("python main.py --models model3 --seeds 1 --recipe published "
                                                         "--lr 0.1 ")
    section = write_pages(folders, None, mnist_dir).read_text()
    for group in ("model3", "model3 · published"):
        assert (f"| {group} | 2 | 99.25 ± 0.00 | 99.45 ± 0.00 | 99.45 ± 0.00 | 99.42 ± 0.00 | 99.42 (seed 1) | "
                f"5.00 ± 0.00 | 2/2 (100%, 34–100%) |") in section
    for name in ("model3.png", "model3-published.png", "model3-lr-0.05-momentum-0.8.png"):
        assert f"]({name})" in section and (tmp_path / name).stat().st_size > 1000


def test_validation_runs_changed_networks_and_retired_models_are_their_own_rows(tmp_path, mnist_dir):
    """Design records: a validation run, networks since changed (another size; the same size doing other work) and a
    model file since removed."""
    full = [99.0] * 10 + [99.41, 99.42, 99.40, 99.44, 99.45]
    folders = [fake_run(tmp_path / "test", "model4", 1, full),
               fake_run(tmp_path / "validation", "model4", 1, full, validation=True),
               fake_run(tmp_path / "older", "model4", 1, full, validation=True, parameters=4720),
               fake_run(tmp_path / "pool-moved", "model4", 1, full, validation=True,
                        macs=2 * current_network("model4")[1]),
               fake_run(tmp_path / "retired", "model6-retired", 1, full, validation=True, parameters=3712)]
    names = [experiment_label(load_runs([folder])[0].record) for folder in folders]
    assert names == ["model4", "model4 (validation)", "model4 (validation, 4,720 parameters at abc)",
                     "model4 (validation, 4,612 parameters at abc)", "model6-retired (validation, not in models/ now)"]
    section = write_pages(folders, None, mnist_dir).read_text()
    assert "# model6-retired seed 1: not in models/ now; commit abc has it" in section
    assert "# model4 seed 1: its network (4,720 parameters) has changed since; commit abc has it" in section


def test_report_of_a_missing_record_is_one_line_exit_2(tmp_path, capsys):
    assert main(["--report", str(tmp_path / "nowhere")]) == 2
    assert "not a readable run record" in capsys.readouterr().err


def test_each_run_is_judged_by_the_target_it_was_made_under(tmp_path):
    lenient = fake_run(tmp_path / "a", "model3", 1, [98.0, 99.1, 99.2], target=Target(99.0, hits=2, window=3))
    [run] = load_runs([lenient])
    assert run.record.target_met() is True  # today's model3 asks for 99.40%: the record's own target decides
    assert "| ≥ 99.00% in 2 of the last 3 | 2/3 | yes |" in results_table([run.record])


def test_records_written_before_targets_were_recorded_still_read(tmp_path):
    folder = fake_run(tmp_path / "old", "model3", 1, [99.0, 99.5])
    old = json.loads((folder / "metrics.json").read_text())
    del old["target"]
    del old["config"]["torch_dropout"]
    old["config"]["fast_dropout"] = False  # its name then, for --torch-dropout
    (folder / "metrics.json").write_text(json.dumps(old))
    [run] = load_runs([folder])
    assert run.record.target is None and run.record.target_met() is None
    assert "| - | - | n/a |" in results_table([run.record])
    assert reproduce_command(run.record).endswith("--torch-dropout --device cpu --compile off")


def test_compiled_and_eager_runs_are_their_own_rows_and_reproduce_as_made(tmp_path):
    full = [99.0] * 10 + [99.41, 99.42, 99.40, 99.44, 99.45]
    [eager], [compiled] = load_runs([fake_run(tmp_path / "e", "model3", 1, full)]), \
        load_runs([fake_run(tmp_path / "c", "model3", 1, full, compiled=True)])
    assert (experiment_label(eager.record), experiment_label(compiled.record)) == ("model3", "model3 (compiled)")
    assert reproduce_command(eager.record) == "python main.py --models model3 --seeds 1 --device cpu --compile off"
    assert reproduce_command(compiled.record) == "python main.py --models model3 --seeds 1 --device cpu --compile on"


def test_settings_a_runs_schedule_does_not_read_neither_split_rows_nor_enter_its_command(tmp_path):
    full = [99.0] * 10 + [99.41, 99.42, 99.40, 99.44, 99.45]
    one_cycle = load_record(fake_run(tmp_path / "o", "model3", 1, full, recipe={"step_size": 5, "gamma": 0.5}))
    step_lr = load_record(fake_run(tmp_path / "s", "model3", 1, full,
                                   recipe={"schedule": "step", "step_size": 5, "cycle_epochs": 9, "floor": 0.01}))
    assert experiment_label(one_cycle) == "model3"
    assert reproduce_command(one_cycle) == "python main.py --models model3 --seeds 1 --device cpu --compile off"
    assert experiment_label(step_lr) == "model3 (schedule=step step_size=5)"
    assert reproduce_command(step_lr) == ("python main.py --models model3 --seeds 1 --schedule step --step-size 5 "
                                          "--device cpu --compile off")


def test_runs_that_ran_otherwise_are_their_own_labelled_rows_and_never_stand_for_each_other(tmp_path):
    """A smoke run on 256 images, a bf16 run and full fp32 runs of one recipe are three experiments: three rows, each
    naming what differs from a default run; and --compare reuses a record only for its own experiment."""
    from experiment.definition import is_seed_of

    full = [99.0] * 10 + [99.41, 99.42, 99.40, 99.44, 99.45]
    folders = [fake_run(tmp_path / f"full{seed}", "model3", seed, full) for seed in (1, 2)]
    folders += [fake_run(tmp_path / f"smoke{seed}", "model3", seed, [90.0] * 15, limit_train=256) for seed in (1, 2)]
    folders += [fake_run(tmp_path / "bf16", "model3", 1, full, precision="bf16")]
    records = [run.record for run in load_runs(folders)]
    assert sorted({experiment_label(r) for r in records}) == ["model3", "model3 (bf16)", "model3 (limit-train 256)"]
    table = summary_table(records)
    for row in ("| model3 | 7,944 | 2 | 99.45 ± 0.00 |", "| model3 (limit-train 256) | 7,944 | 2 | 90.00 ± 0.00 |",
                "| model3 (bf16) | 7,944 | 1 | 99.45 |"):
        assert row in table
    full_run = config_for("model3", seed=1, device="cpu", compile="off")
    smoke_run = config_for("model3", seed=1, device="cpu", compile="off", limit_train=256)
    by_folder = {r.run_id: r for r in records}
    assert is_seed_of(by_folder["full1"], full_run) and not is_seed_of(by_folder["full1"], smoke_run)
    assert is_seed_of(by_folder["smoke1"], smoke_run) and not is_seed_of(by_folder["smoke1"], full_run)
    assert not is_seed_of(by_folder["bf16"], full_run) and not is_seed_of(by_folder["full2"], full_run)  # seed 2
