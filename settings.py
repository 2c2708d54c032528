"""Every setting, declared once: its name, type, default, help text and check.

A recipe (how a model is trained) and an experiment (a recipe plus where and how to run it) are frozen
dataclasses whose fields are declared with `setting(...)`. The command-line flags and their `--help`, the
validation, the one-line description of a run and the report's reproduce commands are all made from these
declarations, so adding a field is one edit:

    @dataclass(frozen=True, kw_only=True)
    class AdamRecipe(Recipe):
        betas: tuple[float, float] = setting((0.9, 0.999), help="Adam's betas", check=UNIT_INTERVAL)

This module imports no torch: the report reads records and recipes without it.
"""
import argparse
import math
import types
import typing
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

LOADERS = ("tensor", "torchvision")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
COMPILE = ("auto", "on", "off")
SEED_LIMIT = 2**32  # numpy's seed range, the narrowest of the generators a run seeds


class ConfigError(ValueError):
    """A setting that cannot work; raised before any training starts."""


@dataclass(frozen=True)
class Check:
    """A test a setting's value must pass, and how to say so when it does not."""
    passes: Callable[[Any], bool]
    requirement: str


POSITIVE = Check(lambda v: v > 0, "positive")
NON_NEGATIVE = Check(lambda v: v >= 0 and math.isfinite(v), "a finite number >= 0")
UNIT_INTERVAL = Check(lambda v: all(0 <= x < 1 for x in v), "numbers in [0, 1)")
SEED = Check(lambda v: 0 <= v < SEED_LIMIT, f"between 0 and {SEED_LIMIT - 1}")


def setting(default: Any = MISSING, *, help: str, check: Check | None = None, choices: tuple = (),
            flag: str | None = None) -> Any:
    """A dataclass field that is also a command-line setting (its flag: --field-name, unless named)."""
    return field(default=default, metadata={"help": help, "check": check, "choices": choices, "flag": flag})


def flag_of(f: Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def named_in_errors(f: Field) -> str:
    """How the user gave this setting: its own flag, or --set for fields only some recipes have."""
    own_flags = {g.name for cls in (SGDRecipe, ExperimentConfig) for g in declared(cls)}
    return flag_of(f) if f.name in own_flags else f"--set {f.name}"


def declared(cls_or_value) -> list[Field]:
    """The fields declared with `setting(...)`, in declaration order."""
    return [f for f in fields(cls_or_value) if "help" in f.metadata]


def check_settings(value) -> None:
    """Raise ConfigError for the first declared setting of `value` that fails its check or choices."""
    for f in declared(value):
        current = getattr(value, f.name)
        check, choices = f.metadata["check"], f.metadata["choices"]
        if current is None:
            continue
        if choices and current not in choices:
            raise ConfigError(f"{named_in_errors(f)} must be one of {', '.join(choices)}, got {current!r}")
        if check and not check.passes(current):
            raise ConfigError(f"{named_in_errors(f)} must be {check.requirement}, got {format_value(current)}")


def format_value(value: Any) -> str:
    """A value as it is typed on the command line: 0.5, 1e-4, on/off, 0.9,0.999."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(format_value(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def without_none(kind: Any) -> Any:
    """`int | None` -> int: the type a value of an optional setting has when it is given."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return next(arg for arg in typing.get_args(kind) if arg is not type(None))
    return kind


def parse_value(kind: Any, text: str, name: str) -> Any:
    """Text from `--set name=text` as the declared type of the field."""
    kind = without_none(kind)
    if typing.get_origin(kind) is tuple:
        items = typing.get_args(kind)
        expected = f"{len(items)} comma-separated {items[0].__name__}s"
        parts = text.split(",")
        if len(parts) != len(items):
            raise ConfigError(f"--set {name}={text}: expected {expected}")
        try:
            return tuple(item(part) for item, part in zip(items, parts))
        except ValueError:
            raise ConfigError(f"--set {name}={text}: expected {expected}") from None
    if kind is bool:
        if text.lower() not in ("on", "off", "true", "false"):
            raise ConfigError(f"--set {name}={text}: expected on or off")
        return text.lower() in ("on", "true")
    try:
        return kind(text)
    except ValueError:
        raise ConfigError(f"--set {name}={text}: not a valid {kind.__name__}") from None


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """How a model is trained: what every training method needs. Model files extend it with their own fields."""
    epochs: int = setting(help="training epochs", check=POSITIVE)
    batch_size: int = setting(help="training batch size", check=POSITIVE)
    lr: float = setting(help="learning rate (the peak rate, for schedules that have one)", check=NON_NEGATIVE)
    weight_decay: float = setting(0.0, help="L2 weight decay", check=NON_NEGATIVE)
    augment: bool = setting(help="ColorJitter + rotation augmentation of the training images")

    def __post_init__(self) -> None:
        check_settings(self)

    def field_types(self) -> dict[str, Any]:
        return typing.get_type_hints(type(self))

    def with_overrides(self, overrides: dict[str, Any]) -> "Recipe":
        """This recipe with some fields changed; text values (from `--set`) are parsed by the field's type."""
        names = {f.name for f in declared(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ConfigError(f"{type(self).__name__} has no setting {unknown[0]!r} "
                              f"(its settings: {', '.join(sorted(names))})")
        kinds = self.field_types()
        parsed = {name: parse_value(kinds[name], value, name) if isinstance(value, str) and kinds[name] is not str
                  else value for name, value in overrides.items()}
        return replace(self, **parsed)


@dataclass(frozen=True, kw_only=True)
class SGDRecipe(Recipe):
    """The default training method: SGD with momentum and a StepLR schedule stepped once per epoch."""
    momentum: float = setting(help="SGD momentum", check=NON_NEGATIVE)
    step_size: int = setting(help="StepLR: epochs between learning-rate drops", check=POSITIVE)
    gamma: float = setting(help="StepLR: factor applied at each drop", check=POSITIVE)


@dataclass(frozen=True, kw_only=True)
class ExperimentConfig:
    """One run: a model, a seed, its recipe (after overrides), and where and how to run it.

    Validated when made, so a config that exists can run.
    """
    model: str
    seed: int = setting(1, help="random seed: the weights, data order, augmentation and dropout", check=SEED,
                        flag="--seeds")
    recipe: Recipe
    device: str = setting("auto", help="where to train; auto takes CUDA, then MPS, then the CPU", choices=DEVICES)
    data_dir: str | None = setting(None, help="folder holding MNIST/raw, fetched and verified if missing "
                                              "(default: $MNIST_DATA_DIR or ./data)")
    out: str = setting("runs", help="folder for run records, one sub-folder per run")
    loader: str = setting("tensor", choices=LOADERS,
                          help="tensor: data kept on the device, batch augmentation (fast); "
                               "torchvision: the published per-image PIL pipeline")
    workers: int = setting(0, help="DataLoader worker processes, for --loader torchvision", check=NON_NEGATIVE)
    limit_train: int | None = setting(None, help="train on the first N training images only", check=POSITIVE)
    limit_test: int | None = setting(None, help="test on the first N test images only", check=POSITIVE)
    precision: str = setting("auto", choices=PRECISIONS,
                             help="arithmetic of the forward pass: fp32, bf16 (autocast), fp16 (CUDA, with a "
                                  "gradient scaler); auto: what training/precision.py found keeps the accuracy")
    compile: str = setting("auto", choices=COMPILE,
                           help="torch.compile the training step (full batches); auto: where a C++ compiler (CPU) "
                                "or Triton (CUDA) is found and the run is long enough to repay the compilation "
                                "(training/compile.py)")
    validation: bool = setting(False, help="train on the first 50,000 training images and evaluate on the last "
                                           "10,000 (five sixths and one sixth of a --limit-train subset), never "
                                           "reading the test set: how --tune scores recipes")
    test_batch_size: int = setting(128, help="evaluation batch size (128 evaluates twice as fast as 1000 on a CPU)",
                                   check=POSITIVE)
    torch_dropout: bool = setting(False, help="on the CPU, use nn.Dropout's own mask instead of the faster, "
                                              "equally exact one in training/dropout.py")
    progress: bool = True  # progress bars; off in worker processes, whose bars would interleave

    def __post_init__(self) -> None:
        import models
        from training import compile as compiling
        from training.precision import resolve
        from utils import pick_device

        check_settings(self)
        if self.data_dir is not None:
            path = Path(self.data_dir)
            existing = next(p for p in (path, *path.parents) if p.exists())
            if not existing.is_dir():
                raise ConfigError(f"--data-dir {self.data_dir}: {existing} is a file, not a folder")
        try:
            models.canonical_name(self.model)
            resolve(self.precision, pick_device(self.device))
            compiling.resolve(self.compile, pick_device(self.device), steps=0)
        except ValueError as error:
            raise ConfigError(str(error)) from None

    def run_settings(self) -> dict[str, Any]:
        """The declared settings other than the seed: those the record's config keeps beside the recipe."""
        return {f.name: getattr(self, f.name) for f in declared(self) if f.name != "seed"}

    def to_json(self) -> dict:
        """The record's config: one flat mapping of the recipe's fields and the run's settings."""
        from dataclasses import asdict

        return {"model": self.model, "seed": self.seed, "recipe_type": type(self.recipe).__name__,
                **asdict(self.recipe), **self.run_settings(), "progress": self.progress}


def describe(config: ExperimentConfig) -> str:
    """The one-line configuration: every recipe field, then the run settings that differ from their defaults."""
    recipe = " ".join(f"{f.name}={format_value(getattr(config.recipe, f.name))}" for f in declared(config.recipe))
    changed = [f"{f.name}={format_value(getattr(config, f.name))}" for f in declared(config)
               if f.name != "seed" and getattr(config, f.name) != f.default]
    return " ".join([f"{config.model} seed={config.seed}", recipe, *changed])


def config_for(model: str, seed: int = 1, recipe_overrides: dict[str, Any] | None = None,
               **run_settings: Any) -> ExperimentConfig:
    """The model's recipe with `recipe_overrides` applied (None values keep the recipe's), and the run settings."""
    import models

    name = models.canonical_name(model)
    changes = {key: value for key, value in (recipe_overrides or {}).items() if value is not None}
    return ExperimentConfig(model=name, seed=seed, recipe=models.get_recipe(name).with_overrides(changes),
                            **{key: value for key, value in run_settings.items() if value is not None})


def config_from_record(recorded: dict[str, Any], data_dir: str | None = None) -> ExperimentConfig:
    """The config a run was made with, rebuilt from its record (to resume it); `data_dir` may move."""
    import models

    current = models.get_recipe(recorded["model"])
    if recorded.get("recipe_type") != type(current).__name__:
        raise ConfigError(f"the run's recipe ({recorded.get('recipe_type', 'from before recipes had types')}) is "
                          f"not {recorded['model']}'s recipe type now ({type(current).__name__})")
    missing = [f.name for f in declared(current) if f.name not in recorded]
    if missing:
        raise ConfigError(f"the run's record has no {missing[0]!r}: it was made before that setting existed")
    recipe = type(current)(**{f.name: tuple(recorded[f.name]) if isinstance(recorded[f.name], list)
                              else recorded[f.name] for f in declared(current)})
    run = {f.name: recorded[f.name] for f in declared(ExperimentConfig) if f.name != "seed" and f.name in recorded}
    return ExperimentConfig(model=recorded["model"], seed=recorded["seed"], recipe=recipe,
                            **(run | ({"data_dir": data_dir} if data_dir else {})))


# --- the command line, made from the declarations ---------------------------------------------------------

def add_setting_flags(group: argparse._ActionsContainer, cls: type, recipe: bool, skip: tuple[str, ...] = ()) -> None:
    """One flag per declared field of `cls`. Recipe flags default to None: "keep the model's recipe"."""
    kinds = typing.get_type_hints(cls)
    for f in declared(cls):
        if f.name in skip:
            continue
        kind = without_none(kinds[f.name])
        shown = "the recipe's" if recipe else format_value(f.default) if f.default is not None else "none"
        options = dict(dest=f.name, default=None if recipe else f.default, help=f.metadata["help"] + ("" if "(default:" in f.metadata["help"] else f" (default: {shown})"))
        if kind is bool:
            group.add_argument(flag_of(f), action=argparse.BooleanOptionalAction, **options)
        elif f.metadata["choices"]:
            group.add_argument(flag_of(f), type=kind, choices=f.metadata["choices"], **options)
        else:
            group.add_argument(flag_of(f), type=kind, metavar=f.name.upper(), **options)


def parse_assignments(items: list[str]) -> dict[str, str]:
    """`--set name=value ...` as {name: text}; the recipe parses the text by the field's type."""
    assignments = {}
    for item in items:
        name, equals, value = item.partition("=")
        if not equals or not name.strip():
            raise ConfigError(f"--set takes NAME=VALUE, got {item!r}")
        assignments[name.strip().replace("-", "_")] = value.strip()
    return assignments


def recipe_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The recipe fields given on the command line, by named flag or by --set (a name given both ways is an error)."""
    named = {f.name: getattr(args, f.name) for f in declared(SGDRecipe) if getattr(args, f.name, None) is not None}
    generic = parse_assignments(args.set or [])
    both = sorted(set(named) & set(generic))
    if both:
        raise ConfigError(f"{both[0]} given twice, as a flag and with --set")
    return named | generic


def run_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The run settings given on the command line (all of them: their flags carry the defaults)."""
    return {f.name: getattr(args, f.name) for f in declared(ExperimentConfig) if f.name != "seed"}


def as_flag(f: Field, value: Any) -> str:
    if isinstance(value, bool):
        return flag_of(f) if value else "--no-" + flag_of(f)[2:]
    return f"{flag_of(f)} {format_value(value)}"


def command_line(model: str, seed: int, recorded: dict[str, Any], current: Recipe) -> str:
    """The main.py command that repeats a run from its recorded config: the model's current recipe plus what differs."""
    words = [f"python main.py --models {model} --seeds {seed}"]
    named = {f.name for f in declared(SGDRecipe)}
    for f in declared(current):
        value, now = recorded.get(f.name, MISSING), getattr(current, f.name)
        value = tuple(value) if isinstance(value, list) else value  # JSON keeps tuples as lists
        if value is not MISSING and value != now:
            words.append(as_flag(f, value) if f.name in named else f"--set {f.name}={format_value(value)}")
    for f in declared(ExperimentConfig):
        value = recorded.get(f.name, f.default)
        if f.name not in ("seed", "out", "data_dir") and value != f.default:
            words.append(as_flag(f, value))
    return " ".join(words)
