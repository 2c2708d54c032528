"""Making run configs: from a model file's recipe and the command line's values, or from a run's record.

This is where a config meets the machine: the data folder is checked, and the settings whose meaning
depends on the machine (`--device`, `--precision`, `--compile`, each `auto` by default) are resolved
here, once; the config carries the result (`config.execution`) and nothing resolves them again.

    from experiment.configs import config_for
    config = config_for("model3", seed=2, recipe_overrides={"epochs": 2}, limit_train=2048)
"""
from pathlib import Path
from typing import Any

import models
from data.loaders import split_sizes
from models.contract import check_model
from core.settings import ConfigError, Execution, ExperimentConfig, Recipe, declared, recorded_values
from training.compiling import should_compile
from training.graphs import why_not_graphed_by_settings
from training.precision import resolve_precision
from utils import pick_device

DEFAULT_RUN_SETTINGS = {f.name: f.default for f in declared(ExperimentConfig) if f.name != "seed"}
# Evaluation batches by device: a CPU evaluates Model3 fastest in batches that stay in its caches; on a GPU every batch
# is launches and a host read, so fewer, larger batches.
TEST_BATCH_SIZES = {"cpu": 128, "cuda": 1000, "mps": 1000}


def check_data_dir(data_dir: str | None) -> None:
    if data_dir is None:
        return
    path = Path(data_dir)
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"--data-dir {data_dir}: {existing} is a file, not a folder")


def resolve_execution(recipe: Recipe, run: dict[str, Any]) -> Execution:
    """Device, precision, compilation, graph capture and the batches of an epoch for these settings on this machine;
    ConfigError where one cannot work, and for a batch larger than the images it would batch (before anything is
    sized from it)."""
    train, evaluation = split_sizes(run["limit_train"], run["limit_test"], run["validation"])
    split = "validation" if run["validation"] else "test"
    for flag, size, images, what in (("--batch-size", recipe.batch_size, train, "training"),
                                     ("--test-batch-size", run["test_batch_size"], evaluation, split)):
        if size is not None and size > images:
            raise ConfigError(f"{flag} {size:,} is more than the {images:,} {what} images it would batch")
    train_batches = -(-train // recipe.batch_size)
    try:
        device = pick_device(run["device"])
        precision = resolve_precision(run["precision"], device)
        graphed = should_graph(run["cuda_graph"], device, recipe, precision)
        if graphed and run["compile"] == "on":
            raise ValueError("--compile on and a CUDA graph are two ways to run the step: give --cuda-graph off "
                             "to compile")
        compiled = not graphed and should_compile(run["compile"], device, recipe.epochs * train_batches)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    test_batch_size = run["test_batch_size"] or min(TEST_BATCH_SIZES[device.type], evaluation)
    return Execution(device.type, precision, compiled, graphed, test_batch_size, train_batches,
                     -(-evaluation // test_batch_size))


def should_graph(setting: str, device: Any, recipe: Recipe, precision: str) -> bool:
    """Whether the step is to be captured as a CUDA graph: `auto` on CUDA where the settings allow it
    (training/graphs.py says when they do not); `on` where they do not is an error."""
    reason = why_not_graphed_by_settings(device, recipe, precision)
    if setting == "on" and reason:
        raise ValueError(f"--cuda-graph on: {reason}; use --cuda-graph off")
    return setting != "off" and reason is None


def parse_model_recipe(text: str) -> tuple[str, str]:
    """'model3' or 'model3:step' as (model, recipe name); an unknown model or recipe is a ConfigError."""
    model, _, recipe = text.partition(":")
    entry = models.entry(model)
    recipe = recipe.strip() or models.DEFAULT_RECIPE
    entry.recipe(recipe)
    return entry.name, recipe


def make_config(model: str, seed: int, recipe: Recipe, run_settings: dict[str, Any]) -> ExperimentConfig:
    """A config that can run here: its settings checked, then resolved for this machine; its teacher's too."""
    run = DEFAULT_RUN_SETTINGS | run_settings
    unknown = sorted(set(run) - set(DEFAULT_RUN_SETTINGS) - {"progress"})
    if unknown:
        raise ConfigError(f"no run setting {unknown[0]!r}")
    ExperimentConfig.check(model=model, seed=seed, recipe=recipe, **run)  # a bad value's own message comes first
    check_data_dir(run["data_dir"])
    config = ExperimentConfig(model=model, seed=seed, recipe=recipe, execution=resolve_execution(recipe, run), **run)
    teacher_config(config)
    return config


def teacher_config(config: ExperimentConfig) -> ExperimentConfig | None:
    """The run that is a config's teacher: the teacher model with its named recipe, the same seed, split, image limits
    and way of running, in the teachers' folder (--teachers, else --out); None for a recipe without a teacher."""
    if not config.recipe.teacher:
        return None
    try:
        model, recipe_name = parse_model_recipe(config.recipe.teacher)
    except ConfigError as error:
        raise ConfigError(f"--teacher {config.recipe.teacher}: {error}") from None
    recipe = models.get_recipe(model, recipe_name)
    if recipe.teacher:
        raise ConfigError(f"--teacher {config.recipe.teacher}: its recipe has a teacher of its own "
                          f"({recipe.teacher}); name a teacher trained on the labels alone")
    check_model(model)
    run = config.run_settings() | {"recipe_name": recipe_name, "out": config.teachers or config.out, "teachers": None,
                                   "progress": config.progress}
    return make_config(model, config.seed, recipe, run)


def config_for(model: str, seed: int = 1, recipe_overrides: dict[str, Any] | None = None,
               **run_settings: Any) -> ExperimentConfig:
    """The model's recipe (its default, or the one `recipe_name` names) with `recipe_overrides` applied (None values
    keep the recipe's), and the run settings (None values keep their defaults)."""
    entry = models.entry(model)
    check_model(entry.name)
    changes = {key: value for key, value in (recipe_overrides or {}).items() if value is not None}
    run = {key: value for key, value in run_settings.items() if value is not None}
    recipe = entry.recipe(run.get("recipe_name", models.DEFAULT_RECIPE))
    return make_config(entry.name, seed, recipe.with_overrides(changes), run)


def config_from_record(recorded: dict[str, Any], data_dir: str | None = None) -> ExperimentConfig:
    """The config a run was made with, rebuilt from its record (to resume it); `data_dir` may move."""
    current = models.get_recipe(recorded["model"])
    if recorded.get("recipe_type") != type(current).__name__:
        raise ConfigError(f"the run's recipe ({recorded.get('recipe_type', 'from before recipes had types')}) is "
                          f"not {recorded['model']}'s recipe type now ({type(current).__name__})")
    values = recorded_values(type(current), recorded)
    missing = [f.name for f in declared(current) if f.name not in values]
    if missing:
        raise ConfigError(f"the run's record has no {missing[0]!r}: it was made before that setting existed")
    recipe = type(current)(**values)
    run = {name: recorded[name] for name in DEFAULT_RUN_SETTINGS if name in recorded}
    return make_config(recorded["model"], recorded["seed"], recipe, run | ({"data_dir": data_dir} if data_dir else {}))
