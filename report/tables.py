"""The results tables: one row per run, the spread across seeds, and the summary: a row per experiment, labelled
by experiment/definition.py (the one definition of "the same experiment").

Plain text from records; importing this loads no torch. Comparing a record with its model file today (the
recipe it was run with, the network's size) imports that model file, and so torch, when first asked.
"""
import statistics
from dataclasses import dataclass
from pathlib import Path

import models
from core.commandline import command_line
from experiment.definition import GONE, as_filed, experiment_label, file_of, named_recipe, network_changed
from core.records import RunRecord, Target, format_duration, load_record
from core.settings import ConfigError, format_value
from core.stats import wilson_interval


class ReportError(ConfigError):
    pass


@dataclass
class RecordedRun:
    record: RunRecord
    folder: Path


def load_runs(folders: list[Path]) -> list[RecordedRun]:
    runs = [RecordedRun(load_record(folder), Path(folder)) for folder in folders]
    if not runs:
        raise ReportError("no run records given")
    return sorted(runs, key=lambda run: (models.name_order(run.record.model), not as_filed(run.record),
                                         experiment_label(run.record), run.record.seed))


def by_group(runs: list[RecordedRun]) -> dict[str, list[RecordedRun]]:
    grouped: dict[str, list[RecordedRun]] = {}
    for run in runs:
        grouped.setdefault(experiment_label(run.record), []).append(run)
    return grouped


def run_state(record: RunRecord) -> str:
    """'yes' / 'no' / 'n/a' for the target of a completed run; otherwise why it has fewer epochs."""
    if record.status == "completed":
        return {True: "yes", False: "no", None: "n/a"}[record.target_met()]
    if record.status == "failed":
        return f"failed: {record.reason}"
    if record.stopped_unexpectedly():
        return f"stopped unexpectedly after {len(record.epochs)} of {record.planned_epochs} epochs (--resume)"
    device = record.device.split(" ")[0].upper()
    return f"partial: {len(record.epochs)} of {record.planned_epochs} epochs, {device}"


def target_text(target: Target | None) -> str:
    return "-" if target is None else str(target)


def hits_text(record: RunRecord) -> str:
    hits = record.target_hits()
    return "-" if hits is None else f"{hits}/{min(record.target.window, len(record.epochs))}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def split_name(records: list[RunRecord]) -> str:
    """What the accuracies of these records were measured on: test, validation, or both."""
    return "/".join(dict.fromkeys(sorted(r.split for r in records))) or "test"


def results_header(split: str) -> list[str]:
    return ["model", "parameters", "RF", "seed", "best train %", f"best {split} % (epoch)", f"final {split} %",
            f"target ({split} accuracy, epochs)", "hits", "target met", "time", "device"]


def spread_header(split: str) -> list[str]:
    return ["model", "seeds", "best train %", f"best {split} %", f"final {split} %",
            f"{split} % over the target's epochs", "worst seed", "hits", "target met (95% interval)"]


def results_rows(records: list[RunRecord], with_run_ids: bool) -> list[list[str]]:
    rows = []
    for r in records:
        best = f"{r.best_eval_acc:.2f} ({r.best_epoch})" if r.best_epoch is not None else "-"
        row = [experiment_label(r), f"{r.parameters:,}", str(r.receptive_field), str(r.seed), percent(r.best_train_acc), best,
               percent(r.final_eval_acc), target_text(r.target), hits_text(r), run_state(r), run_time(r),
               r.device.split(" ")[0] + ("" if r.precision == "fp32" else f", {r.precision}")]
        rows.append(row + [r.run_id] if with_run_ids else row)
    return rows


def run_time(record: RunRecord) -> str:
    """The run's time, and its teacher's training where it had one: '7.1 min (teacher 3.0 min)'."""
    own = format_duration(record.total_seconds)
    return f"{own} (teacher {format_duration(record.teacher_seconds)})" if record.teacher_seconds else own


def optional_spread(values: list[float | None]) -> str:
    return "-" if None in values else mean_std([float(v) for v in values])


def met_count(met: list[bool | None]) -> str:
    """'19/20 (95%, 76–99%)': seeds meeting the target, with the 95% Wilson interval on the rate."""
    return "-" if None in met or not met else str(wilson_interval(sum(met), len(met)))


def worst_seed(records: list[RunRecord]) -> str:
    """The seed with the lowest accuracy over the target's epochs: the run a claim about every seed rests on."""
    judged = [r for r in records if r.window_accuracy() is not None]
    if not judged:
        return "-"
    worst = min(judged, key=lambda r: r.window_accuracy())
    return f"{worst.window_accuracy():.2f} (seed {worst.seed})"


def completed_groups(records: list[RunRecord]) -> dict[str, list[RunRecord]]:
    """The completed runs of each group (model and recipe), in the order the groups first appear."""
    groups: dict[str, list[RunRecord]] = {}
    for record in records:
        groups.setdefault(experiment_label(record), [])
        if record.status == "completed":
            groups[experiment_label(record)].append(record)
    return groups


def spread_rows(records: list[RunRecord]) -> list[list[str]]:
    """Mean ± std per group (model and recipe) over its completed runs, for groups with two or more."""
    return [[group, str(len(done)), mean_std([r.best_train_acc for r in done]),
             mean_std([r.best_eval_acc for r in done]), mean_std([r.final_eval_acc for r in done]),
             optional_spread([r.window_accuracy() for r in done]), worst_seed(done),
             optional_spread([r.target_hits() for r in done]),
             met_count([r.target_met() for r in done])]
            for group, done in completed_groups(records).items() if len(done) >= 2]


def results_table(records: list[RunRecord], with_run_ids: bool = False) -> str:
    """One row per run, then mean ± std per model across seeds: the end-of-run table and the results page's."""
    split = split_name(records)
    header = results_header(split) + ["run"] if with_run_ids else results_header(split)
    text = markdown_table(header, results_rows(records, with_run_ids))
    spread = spread_rows(records)
    if spread:
        text += ("\n\nMean ± standard deviation across seeds (completed runs):\n\n"
                 + markdown_table(spread_header(split), spread))
    return text


def spread_text(values: list[float | None]) -> str:
    """Mean ± sd, the value alone for one run, '-' where a run has none."""
    if None in values:
        return "-"
    return mean_std(values) if len(values) > 1 else f"{values[0]:.2f}"


def newest(records: list[RunRecord]) -> RunRecord:
    """The run made last: a row pooling records from before a target gained its budget states the target as it is
    now, while each record is still judged by the target it was made under."""
    return max(records, key=lambda record: record.started)


def summary_table(records: list[RunRecord]) -> str:
    """One row per model and recipe: parameters, seeds, best accuracy, the accuracy over the target's epochs and
    its worst seed, the target and how often it was met."""
    rows = [[group, f"{done[0].parameters:,}", str(len(done)), spread_text([r.best_eval_acc for r in done]),
             spread_text([r.window_accuracy() for r in done]), worst_seed(done), target_text(newest(done).target),
             met_count([r.target_met() for r in done])]
            for group, done in completed_groups(records).items() if done]
    split = split_name(records)
    return markdown_table(["model", "parameters", "seeds", f"best {split} % (mean ± sd)",
                           f"{split} % over the target's epochs (mean ± sd)", "worst seed", "target",
                           "target met (95% interval)"], rows)


def resolved_execution(record: RunRecord) -> list[str]:
    """Flags for what the run's `auto` settings became (device, compiling, the CUDA graph), so that its command trains
    the same row on any machine."""
    config, device = record.config, record.device.split(" ")[0]
    words = [f"--device {device}"] if config.get("device", "auto") == "auto" else []
    if config.get("compile", "auto") == "auto":
        words.append(f"--compile {format_value(record.compiled)}")
    if device.startswith("cuda") and config.get("cuda_graph", "auto") == "auto":
        words.append(f"--cuda-graph {format_value(record.graphed)}")
    return words


def reproduce_command(record: RunRecord) -> str:
    """The main.py command that repeats this run: its named recipe, what the run changed, and how it computed."""
    file = file_of(record)
    if file is None:
        return f"# {record.model} seed {record.seed}: {GONE}; commit {record.git_commit} has it"
    if network_changed(record, file):
        return (f"# {record.model} seed {record.seed}: its network ({record.parameters:,} parameters) has changed "
                f"since; commit {record.git_commit} has it")
    name, _ = named_recipe(record, file)
    command = command_line(record.model, record.seed, record.config | {"recipe_name": name}, file.recipe(name))
    return " ".join([command, *resolved_execution(record)])
