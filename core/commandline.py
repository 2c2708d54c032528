"""The command line, made from the settings' declarations: flags for argparse, the values given on it, and
the `python main.py ...` command that repeats a recorded run. No torch: the results tables use this."""
import argparse
import typing
from dataclasses import MISSING, Field
from typing import Any

from core.settings import (MOST_RUNS, ConfigError, ExperimentConfig, Recipe, SGDRecipe, declared, flag_of, format_value,
                      idle_settings, recorded_values, without_none)

def add_setting_flags(group: Any, cls: type, recipe: bool, names: tuple[str, ...] | None = None,
                      skip: tuple[str, ...] = ()) -> None:
    """One flag per declared field of `cls` (or of those in `names`). Recipe flags default to None: "keep the
    model's recipe"."""
    kinds = typing.get_type_hints(cls)
    for f in declared(cls):
        if f.name in skip or (names is not None and f.name not in names):
            continue
        kind = without_none(kinds[f.name])
        shown = "the recipe's" if recipe else format_value(f.default) if f.default is not None else "none"
        default_text = "" if "(default:" in f.metadata["help"] else f" (default: {shown})"
        options = dict(dest=f.name, default=None if recipe else f.default, help=f.metadata["help"] + default_text)
        if kind is bool:
            group.add_argument(flag_of(f), action=argparse.BooleanOptionalAction, **options)
        elif f.metadata["choices"]:
            group.add_argument(flag_of(f), type=kind, choices=f.metadata["choices"], **options)
        else:
            group.add_argument(flag_of(f), type=kind, metavar=flag_of(f)[2:].replace("-", "_").upper(), **options)


def parse_seeds(items: list[str]) -> list[int]:
    """`--seeds 1-20 25 30-32` as the seeds in that order; a malformed range or a repeated seed is a ConfigError.
    Each seed is then checked as a setting (its range) when its config is made."""
    seeds: list[int] = []
    for item in items:
        first, dash, last = item.partition("-")
        try:
            span = range(int(item), int(item) + 1) if not dash or not first else range(int(first), int(last) + 1)
        except ValueError:
            raise ConfigError(f"--seeds takes numbers and ranges like 1-20, got {item!r}") from None
        if len(seeds) + len(span) > MOST_RUNS:
            raise ConfigError(f"--seeds {' '.join(items)}: {len(seeds) + len(span):,} runs of each model; at most "
                              f"{MOST_RUNS:,} in one command")
        if not span:
            raise ConfigError(f"--seeds {item}: the range ends before it starts")
        repeated = next((seed for seed in span if seed in seeds), None)
        if repeated is not None:
            raise ConfigError(f"--seeds: seed {repeated} is given twice")
        seeds += list(span)
    return seeds


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
    """The main.py command that repeats a run from its recorded config: the named recipe it started from (`current`,
    the model file's now) plus what differs."""
    words = [f"python main.py --models {model} --seeds {seed}"]
    run = {f.name: f for f in declared(ExperimentConfig) if f.name not in ("seed", "out", "data_dir")}
    if recorded.get("recipe_name", run["recipe_name"].default) != run["recipe_name"].default:
        words.append(as_flag(run.pop("recipe_name"), recorded["recipe_name"]))
    named = {f.name for f in declared(SGDRecipe)}
    values = recorded_values(type(current), recorded)
    idle = idle_settings(type(current), values)
    for f in declared(current):
        value, now = values.get(f.name, MISSING), getattr(current, f.name)
        if value is not MISSING and value != now and f.name not in idle:
            words.append(as_flag(f, value) if f.name in named else f"--set {f.name}={format_value(value)}")
    for f in run.values():
        value = recorded.get(f.name, f.default)
        if value != f.default:
            words.append(as_flag(f, value))
    return " ".join(words)
