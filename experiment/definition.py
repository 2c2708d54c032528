"""What "the same experiment" means, once: runs that differ only in their seed are seeds of one experiment.

An experiment is the code a model file trains with (the source hash a record carries, models/source.py; records
from before hashes, their network: parameters and multiply-accumulates), its recipe's values, and the way the run
computed and what it saw: device, precision, compiling, CUDA graph, split, image limits, loader and dropout
implementation. `--report` makes one row of each experiment and `--compare` reuses a record only for its own
experiment, so a `--limit-train 256` smoke run never pools with full runs, nor bf16 seeds with fp32 ones. Anything
else that must find "a run of X" asks here.

    experiment_of_config(config) == experiment_of_record(record)   # seeds of one experiment
    experiment_label(record)     # 'model3 · published (compiled, limit-train 256)': what differs from a default run

Plain data: importing this loads no torch; comparing a record made before source hashes with its model file today
(the network's size) imports that model file, and so torch, when first asked.
"""
import functools
from dataclasses import asdict, dataclass
from typing import Any

import models
from core.records import RunRecord
from core.settings import ExperimentConfig, Recipe, SGDRecipe, format_value, idle_settings, recorded_values
from models import DEFAULT_RECIPE, ModelEntry

GONE = "not in models/ now"  # a record outlives its model file (a design tried and dropped): its commit has the code


@dataclass(frozen=True)
class Experiment:
    """Everything but the seed that makes two runs comparable draws from one distribution."""
    model: str
    code: str  # the source hash of the code its model file trains with; before hashes, 'network P/M' (its size)
    recipe_type: str
    recipe: tuple[tuple[str, Any], ...]  # the recipe's values (a schedule's idle settings left out), sorted by name
    device: str  # cpu, cuda, mps (the device's model name is the machine's, not the experiment's)
    precision: str
    compiled: bool
    graphed: bool
    split: str  # test or validation
    limit_train: int | None
    limit_test: int | None
    loader: str
    torch_dropout: bool
    # An average of the weights evaluated with batch-norm statistics averaged along with them, as runs made before
    # they were recomputed for the average were: another computation under the same recipe values.
    statistics_averaged: bool = False


def recipe_values(recipe_type: type, values: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A recipe's values as an experiment holds them: hashable, in name order, the settings they leave idle out."""
    idle = idle_settings(recipe_type, values)
    return tuple(sorted((name, tuple(value) if isinstance(value, list) else value)
                        for name, value in values.items() if name not in idle))


def experiment_of_config(config: ExperimentConfig) -> Experiment:
    """The experiment a config runs (its `auto` settings as resolved on this machine)."""
    execution = config.execution
    return Experiment(config.model, models.entry(config.model).code_hash, type(config.recipe).__name__,
                      recipe_values(type(config.recipe), asdict(config.recipe)), execution.device, execution.precision,
                      execution.compiled, execution.graphed, "validation" if config.validation else "test",
                      config.limit_train, config.limit_test, config.loader, config.torch_dropout)


def file_of(record: RunRecord) -> ModelEntry | None:
    """The record's model file as it stands, if it is there and can be used (a file mid-edit may not)."""
    return models.entry(record.model) if models.loads(record.model) else None


@functools.cache
def current_network(model: str) -> tuple[int, int]:
    """The model file's network today as a record states one: parameters and multiply-accumulates per image."""
    from utils import layer_geometry, parameter_count  # torch, only when a record is compared with its model file
    network = models.get_model(model)
    return parameter_count(network), sum(layer.macs for layer in layer_geometry(network))


def network_changed(record: RunRecord, file: ModelEntry) -> bool:
    """The record's network is not its model file's today: its file's code has changed since (records with a source
    hash), or, for records made before hashes, another size or the same size doing other work (a pool moved, say)."""
    if record.model_hash is not None:
        return record.model_hash != file.code_hash
    return (record.parameters, record.macs_per_image) != current_network(record.model)


def record_code(record: RunRecord, file: ModelEntry | None) -> str:
    """The record's model code: its hash; before hashes, today's hash where its network is today's, else its size."""
    if record.model_hash is not None:
        return record.model_hash
    if file and not network_changed(record, file):
        return file.code_hash
    return f"network {record.parameters}/{record.macs_per_image}"


def recipe_type_of(record: RunRecord, file: ModelEntry | None) -> type:
    """The class of the record's recipe: its model file's today, or for a model gone from models/, the default
    method's where the record names it (a class that left with its file is read as the base recipe)."""
    if file:
        return type(file.recipe())
    return SGDRecipe if record.config.get("recipe_type", "SGDRecipe") == "SGDRecipe" else Recipe


def record_recipe(record: RunRecord, file: ModelEntry | None) -> dict[str, Any]:
    """The recipe values a record ran with: its model's recipe fields today (a field added since at its default), or
    for a model no longer in models/, what its config holds beside the run settings."""
    if file:
        return recorded_values(type(file.recipe()), record.config)
    run = set(ExperimentConfig.__dataclass_fields__) | {"recipe_type", "progress"}
    return {name: value for name, value in record.config.items() if name not in run}


def experiment_of_record(record: RunRecord, file: ModelEntry | None = None) -> Experiment:
    """The experiment a record's run was a seed of (settings the record predates at their defaults); `file` is its
    model file's entry where the caller has it."""
    file = file or file_of(record)
    config = record.config
    recipe_type = config.get("recipe_type") or (type(file.recipe()).__name__ if file else "")  # before types
    return Experiment(record.model, record_code(record, file), recipe_type,
                      recipe_values(recipe_type_of(record, file), record_recipe(record, file)),
                      record.device.split(" ")[0], record.precision, record.compiled, record.graphed, record.split,
                      config.get("limit_train"), config.get("limit_test"), config.get("loader", "tensor"),
                      config.get("torch_dropout", False),
                      statistics_averaged=bool(config.get("ema_decay")) and record.average_statistics is None)


def is_seed_of(record: RunRecord, config: ExperimentConfig) -> bool:
    """The record is a completed run of this config's experiment and seed: one that can stand for running it."""
    if not (record.seed == config.seed and record.status == "completed" and len(record.epochs) == config.recipe.epochs):
        return False
    file = file_of(record)
    return file is not None and experiment_of_record(record, file) == experiment_of_config(config)


def runs_of(config: ExperimentConfig, records: list[RunRecord]) -> list[RunRecord]:
    """The records that can stand for running `config`, the latest first."""
    return sorted((r for r in records if r.model == config.model and is_seed_of(r, config)),
                  key=lambda r: r.started, reverse=True)


def changed_fields(values: dict[str, Any], recipe: Recipe) -> str:
    """The fields where a record's recipe `values` differ from `recipe`, as `name=value` words ('' for none); the
    settings the values leave idle are left out."""
    named, idle = asdict(recipe), idle_settings(type(recipe), values)
    return " ".join(f"{name}={format_value(value)}" for name, value in values.items()
                    if name in named and value != named[name] and name not in idle)


def named_recipe(record: RunRecord, file: ModelEntry | None = None) -> tuple[str, str]:
    """(the model file's named recipe the run trained with, or was changed from; the fields it changed, '' for none).

    The recipe whose values the run's equal is its name (the default first), so a record from before recipes had
    names lands in its row; otherwise the one its record names, or for such an old record the one it changed least.
    """
    recipes = (file or models.entry(record.model)).recipes
    values = recorded_values(type(recipes[DEFAULT_RECIPE]), record.config)
    changes = {name: changed_fields(values, recipe) for name, recipe in recipes.items()}
    named = record.config.get("recipe_name")
    exact = next((name for name, changed in changes.items() if not changed), None)
    nearest = min(changes, key=lambda name: len(changes[name].split()))  # the default first among equals
    name = exact or (named if named in recipes else nearest)
    return name, changes[name]


def as_filed(record: RunRecord) -> bool:
    """The run was made with its model file as the file stands now: the same network and one of its named recipes
    as it is."""
    file = file_of(record)
    return file is not None and not network_changed(record, file) and named_recipe(record, file)[1] == ""


def way_of_running(experiment: Experiment) -> list[str]:
    """What an experiment did otherwise than a full default run on a CPU, in words, the most telling first."""
    words = []
    if experiment.split == "validation":
        words.append("validation")
    if experiment.device != "cpu":  # another device rounds otherwise: its seeds are their own sample
        words.append(experiment.device)
    if experiment.graphed:
        words.append("CUDA graph")
    if experiment.compiled:
        words.append("compiled")
    if experiment.precision != "fp32":
        words.append(experiment.precision)
    words += [f"{flag} {limit}" for flag, limit in (("limit-train", experiment.limit_train),
                                                       ("limit-test", experiment.limit_test)) if limit is not None]
    if experiment.loader != "tensor":
        words.append(f"{experiment.loader} loader")
    if experiment.torch_dropout:
        words.append("torch dropout")
    if experiment.statistics_averaged:
        words.append("statistics averaged")
    return words


def experiment_label(record: RunRecord) -> str:
    """A row's label: the model and its named recipe, then in brackets what differs from a default run of the file as
    it stands (how it ran, a network changed since, recipe fields changed): `model3 · published (compiled)`. Runs
    of different experiments never share a label, but for two versions of a changed file at one commit."""
    file = file_of(record)
    name, changed = named_recipe(record, file) if file else (DEFAULT_RECIPE, GONE)
    words = way_of_running(experiment_of_record(record, file))
    if file and network_changed(record, file):
        words.append(f"{record.parameters:,} parameters at {record.git_commit[:7]}"
                     if (record.parameters, record.macs_per_image) != current_network(record.model)
                     else f"as at {record.git_commit[:7]}")
    title = record.model if name == DEFAULT_RECIPE else f"{record.model} · {name}"
    label = ", ".join(filter(None, [*words, changed]))
    return f"{title} ({label})" if label else title
