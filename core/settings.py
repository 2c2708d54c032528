"""Every setting, declared once: its name, type, default, help text and check.

A recipe (how a model is trained) and an experiment (a recipe plus where and how to run it) are frozen
dataclasses whose fields are declared with `setting(...)`. The command-line flags and their `--help`, the
checks, the one-line description of a run and the report's reproduce commands are all made from these
declarations (commandline.py, configs.py), so adding a field is one edit:

    @dataclass(frozen=True, kw_only=True)
    class AdamRecipe(Recipe):
        betas: tuple[float, float] = setting((0.9, 0.999), help="Adam's betas", check=FRACTIONS)

This module only declares: it imports no torch and nothing else of the package, so records, recipes and the
results tables read without either. Making configs (from the command line, a model file or a record) and
resolving what depends on the machine is configs.py's job; the flags and reproduce commands, commandline.py's.
"""
import math
import os
import types
import typing
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from typing import Any, Callable

LOADERS = ("tensor", "torchvision")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
COMPILE = ("auto", "on", "off")
SCHEDULES = ("step", "one-cycle")
SEED_LIMIT = 2**32  # numpy's seed range, the narrowest of the generators a run seeds
CORES = os.cpu_count() or 1
# Runs one command may ask for: a range is checked before it is made, so a typo such as 1-100000000 costs nothing.
MOST_RUNS = 10_000


class ConfigError(ValueError):
    """Bad input: a setting, a model name, a run folder or a record that cannot be used. Raised before any
    training starts; main.py prints it as one line and exits 2. The package's other input errors derive from it."""


@dataclass(frozen=True)
class Check:
    """A test a setting's value must pass, and how to say so when it does not."""
    passes: Callable[[Any], bool]
    requirement: str


POSITIVE = Check(lambda v: v > 0, "positive")
NON_NEGATIVE = Check(lambda v: v >= 0 and math.isfinite(v), "a finite number >= 0")
FRACTION = Check(lambda v: 0 <= v < 1, "a number in [0, 1)")
OPEN_FRACTION = Check(lambda v: 0 < v < 1, "a number in (0, 1)")
FRACTIONS = Check(lambda v: all(0 <= x < 1 for x in v), "numbers in [0, 1)")
SEED = Check(lambda v: 0 <= v < SEED_LIMIT, f"between 0 and {SEED_LIMIT - 1}")
# Each worker process holds its own torch and its own copy of the data: more of them than cores only time-slice.
AT_MOST_CORES = Check(lambda v: 0 <= v <= CORES, f"between 0 and this machine's {CORES} CPU cores")


@dataclass(frozen=True)
class When:
    """The values of another setting under which a setting is read: `When("schedule", "step")` for StepLR's step size,
    `When("teacher")` (any value but an empty one) for the teacher's temperature. Elsewhere the setting is idle: a
    difference in it changes nothing a run does, so the report pools such runs and --compare reuses them."""
    name: str
    values: tuple = ()

    def __init__(self, name: str, *values: Any) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "values", values)

    def holds(self, values: dict[str, Any]) -> bool:
        """Whether the setting is read under `values` (a record that lacks the deciding setting reads it)."""
        if self.name not in values:
            return True
        return values[self.name] in self.values if self.values else bool(values[self.name])


def setting(default: Any = MISSING, *, help: str, check: Check | None = None, choices: tuple = (),
            flag: str | None = None, when: When | None = None) -> Any:
    """A dataclass field that is also a command-line setting (its flag: --field-name, unless named); `when` says under
    which values of another setting it is read at all."""
    return field(default=default, metadata={"help": help, "check": check, "choices": choices, "flag": flag,
                                            "when": when})


def flag_of(f: Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def named_in_errors(f: Field) -> str:
    """How the user gave this setting: its own flag, or --set for fields only some recipes have."""
    own_flags = {g.name for cls in (SGDRecipe, ExperimentConfig) for g in declared(cls)}
    return flag_of(f) if f.name in own_flags else f"--set {f.name}"


def declared(cls_or_value) -> list[Field]:
    """The fields declared with `setting(...)`, in declaration order."""
    return [f for f in fields(cls_or_value) if "help" in f.metadata]


def check_values(cls: type, values: dict[str, Any]) -> None:
    """Raise ConfigError for the first of `values` that fails its declared setting's check or choices."""
    for f in declared(cls):
        current = values.get(f.name)
        check, choices = f.metadata["check"], f.metadata["choices"]
        if current is None:
            continue
        if choices and current not in choices:
            raise ConfigError(f"{named_in_errors(f)} must be one of {', '.join(choices)}, got {current!r}")
        if check and not check.passes(current):
            raise ConfigError(f"{named_in_errors(f)} must be {check.requirement}, got {format_value(current)}")


def check_settings(value: Any) -> None:
    """check_values for a dataclass instance's own fields."""
    check_values(type(value), {f.name: getattr(value, f.name) for f in declared(value)})


def format_value(value: Any) -> str:
    """A value as it is typed on the command line: 0.5, 1e-4, on/off, 0.9,0.999."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(format_value(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def idle_settings(cls: type, values: dict[str, Any]) -> set[str]:
    """The settings of `cls` that `values` do not read, by each field's declared `when` (StepLR's under one-cycle, and
    the other way round; the teacher's temperature and share without a teacher)."""
    return {f.name for f in declared(cls) if f.metadata["when"] and not f.metadata["when"].holds(values)}


def recorded_values(cls: type, recorded: dict[str, Any]) -> dict[str, Any]:
    """The declared fields of `cls` as a record's config holds them: JSON's lists back to tuples, and a field the
    record predates at its declared default (a field with no default it lacks is left out)."""
    values = {}
    for f in declared(cls):
        value = recorded.get(f.name, f.default)
        if value is not MISSING:
            values[f.name] = tuple(value) if isinstance(value, list) else value
    return values


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
    translate: float = setting(0.0, check=FRACTION, help="with --augment, also shift each training image by up to "
                                                        "this fraction of its size (whole pixels, as RandomAffine)")
    scale: float = setting(0.0, check=FRACTION, help="with --augment, also zoom each training image by a factor "
                                                    "in [1 - scale, 1 + scale]")
    clean_epochs: int = setting(0, check=NON_NEGATIVE,
                                help="with --augment, train the last N epochs on the images as they are")
    # Distillation (Hinton, Vinyals and Dean, 2015): a larger network's softened outputs carry what it learned about
    # which digits look alike, which a network too small to find it alone can still fit.
    teacher: str = setting("", help="train against a teacher's softened outputs too: MODEL or MODEL:RECIPE, the run of "
                                    "it with the same seed, split and image limits (found in --out, else trained "
                                    "first); '' for none")
    temperature: float = setting(4.0, check=POSITIVE, when=When("teacher"),
                                 help="with a teacher: both networks' outputs are softened by dividing their logits "
                                      "by this before the softmax")
    teacher_share: float = setting(0.5, check=Check(lambda v: 0 < v <= 1, "a number in (0, 1]"), when=When("teacher"),
                                   help="with a teacher: the share of the loss on its softened outputs (that term "
                                        "scaled by the temperature squared, so its gradients keep their size); the "
                                        "rest on the labels")

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
    """The default training method: SGD with momentum, and StepLR stepped once per epoch or OneCycleLR per batch."""
    momentum: float = setting(help="SGD momentum", check=FRACTION)  # at 1 or more the velocity never decays
    schedule: str = setting("step", choices=SCHEDULES,
                            help="how the rate moves: 'step' (StepLR: times gamma every step_size epochs) or "
                                 "'one-cycle' (OneCycleLR: up to lr over the warmup share of the cycle, then down "
                                 "along a cosine to lr times the floor)")
    step_size: int = setting(help="StepLR: epochs between learning-rate drops", check=POSITIVE,
                             when=When("schedule", "step"))
    gamma: float = setting(help="StepLR: factor applied at each drop", check=POSITIVE, when=When("schedule", "step"))
    warmup: float = setting(0.25, check=OPEN_FRACTION, help="one-cycle: the share of the cycle spent rising to lr",
                            when=When("schedule", "one-cycle"))
    cycle_epochs: int = setting(0, check=NON_NEGATIVE, when=When("schedule", "one-cycle"),
                                help="one-cycle: the epochs the cycle spans (at most the run's), after which the rate "
                                     "holds at its last; 0: every epoch")
    floor: float = setting(4e-6, check=OPEN_FRACTION, when=When("schedule", "one-cycle"),
                           help="one-cycle: the rate the cycle ends at (and holds), as a share of lr")
    ema_decay: float = setting(0.0, check=FRACTION,
                               help="evaluate and keep an exponential moving average of the weights, updated every "
                                    "step with this decay, its batch-norm statistics recomputed for it after every "
                                    "epoch over that epoch's training images; 0: the weights themselves")
    label_smoothing: float = setting(0.0, check=FRACTION,
                                     help="train towards targets that give this share of the probability to the "
                                          "other classes, spread evenly; 0: the label itself")


@dataclass(frozen=True)
class Execution:
    """How a run computes on this machine: its `auto` settings resolved once, when the config is made, and the
    batches of an epoch that follow from them; the record keeps these."""
    device: str  # "cpu", "cuda" or "mps"
    precision: str  # fp32, bf16 or fp16
    compiled: bool  # the training step runs under torch.compile
    graphed: bool  # the training step is to be captured once as a CUDA graph and replayed
    test_batch_size: int  # `--test-batch-size`, or the device's own default
    train_batches: int  # in one epoch
    eval_batches: int


@dataclass(frozen=True, kw_only=True)
class ExperimentConfig:
    """One run: a model, a seed, its recipe (after overrides), and where and how to run it.

    Checked when made; configs.make_config also checks it against this machine, so a config that exists can run.
    """
    model: str
    seed: int = setting(1, help="random seed: the weights, data order, augmentation and dropout", check=SEED,
                        flag="--seeds")
    recipe_name: str = setting("default", flag="--recipe",
                               help="which of the model file's named recipes the run starts from: default, or one "
                                    "its RECIPES names (Model3: published, the published project's settings; step)")
    recipe: Recipe
    device: str = setting("auto", help="where to train; auto takes CUDA, then MPS, then the CPU", choices=DEVICES)
    data_dir: str | None = setting(None, help="folder holding MNIST/raw, fetched and verified if missing "
                                              "(default: $MNIST_DATA_DIR or ./data)")
    out: str = setting("runs", help="folder for run records, one sub-folder per run")
    teachers: str | None = setting(None, help="with a teacher: the folder its runs are found in, and trained into "
                                              "where none is (default: --out)")
    loader: str = setting("tensor", choices=LOADERS,
                          help="tensor: data kept on the device, batch augmentation (fast); "
                               "torchvision: the published per-image PIL pipeline")
    workers: int = setting(0, help="DataLoader worker processes, for --loader torchvision", check=AT_MOST_CORES)
    limit_train: int | None = setting(None, help="train on the first N training images only", check=POSITIVE)
    limit_test: int | None = setting(None, help="test on the first N test images only", check=POSITIVE)
    precision: str = setting("auto", choices=PRECISIONS,
                             help="arithmetic of the forward pass: fp32, bf16 (autocast), fp16 (CUDA, with a "
                                  "gradient scaler); auto: what training/precision.py found keeps the accuracy")
    compile: str = setting("auto", choices=COMPILE,
                           help="torch.compile the training step (full batches); auto: where a C++ compiler (CPU) "
                                "or Triton (CUDA) is found and the run is long enough to repay the compilation "
                                "(training/compiling.py)")
    cuda_graph: str = setting("auto", choices=COMPILE,
                              help="on CUDA, capture the whole training step once as a CUDA graph and replay it "
                                   "(training/graphs.py); auto: on CUDA, in place of --compile, unless the method "
                                   "keeps a moving average or the precision is fp16")
    validation: bool = setting(False, help="train on the first 50,000 training images and evaluate on the last "
                                           "10,000 (five sixths and one sixth of a --limit-train subset), never "
                                           "reading the test set: how --tune scores recipes")
    test_batch_size: int | None = setting(None, check=POSITIVE,
                                          help="evaluation batch size (default: 128 on a CPU, where it evaluates "
                                               "twice as fast as 1000; 1000 on a GPU, where each batch is a launch)")
    torch_dropout: bool = setting(False, help="on the CPU, use nn.Dropout's own mask instead of the faster, "
                                              "equally exact one in training/dropout.py")
    progress: bool = True  # progress bars; off in worker processes, whose bars would interleave

    execution: Execution  # device, precision and compilation as resolved for this machine (configs.py)

    def __post_init__(self) -> None:
        check_settings(self)

    @classmethod
    def check(cls, **values: Any) -> None:
        """The checks of __post_init__ on values alone, before the machine is asked what `auto` means."""
        check_values(cls, values)

    def run_settings(self) -> dict[str, Any]:
        """The declared settings other than the seed: those the record's config keeps beside the recipe."""
        return {f.name: getattr(self, f.name) for f in declared(self) if f.name != "seed"}

    def to_json(self) -> dict:
        """The record's config: one flat mapping of the recipe's fields and the run's settings."""
        from dataclasses import asdict

        return {"model": self.model, "seed": self.seed, "recipe_type": type(self.recipe).__name__,
                **asdict(self.recipe), **self.run_settings(), "progress": self.progress}


def recipe_text(recipe: Recipe) -> str:
    """Every field of a recipe as `name=value` words, in declaration order; a feature switched off (no teacher) is
    not described, neither its switch nor the settings only it reads."""
    values = {f.name: getattr(recipe, f.name) for f in declared(recipe)}
    off = {f.name: f.metadata["when"].name for f in declared(recipe)
           if f.metadata["when"] and not f.metadata["when"].values and not f.metadata["when"].holds(values)}
    unused = set(off) | set(off.values())
    return " ".join(f"{f.name}={format_value(getattr(recipe, f.name))}" for f in declared(recipe)
                    if f.name not in unused)


def describe(config: ExperimentConfig) -> str:
    """The one-line configuration: every recipe field, then the run settings that differ from their defaults."""
    recipe = recipe_text(config.recipe)
    changed = [f"{f.name}={format_value(getattr(config, f.name))}" for f in declared(config)
               if f.name != "seed" and getattr(config, f.name) != f.default]
    return " ".join([f"{config.model} seed={config.seed}", recipe, *changed])
