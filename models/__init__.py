"""Model registry: every file `models/modelN.py` is a model, found by its name (it holds `class ModelN`).

A model file is a whole experiment: the network, its `RECIPE` (a settings.Recipe: the default), optionally
`RECIPES`, more recipes by name (`published`: the published project's settings; `--recipe NAME` picks one), its
`TARGET` (a records.Target), its `configure_optimizers` (else SGD with momentum on a StepLR or one-cycle
schedule, training/optim.py), its `search_space` for `--tune`, and its notes as the docstring.

    import models
    models.available()                         # ['model1', 'model2', 'model3', 'model4', 'model5']
    models.get_model("model3")                 # also "Model3" or "3"; a fresh instance each call
    models.get_recipe("model3")                # its default recipe
    models.get_recipe("model3", "published")   # one of its named recipes
"""
import importlib
import re
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Callable

from settings import ConfigError, Recipe

if TYPE_CHECKING:
    from torch import nn

    from records import Target
    from training.optim import TrainingMethod

MODELS_DIR = Path(__file__).parent
_FILE_PATTERN = re.compile(r"model(\d+)\.py")


DEFAULT_RECIPE = "default"  # the name of a model file's `RECIPE`


class UnknownModelError(ConfigError):
    pass


def available() -> list[str]:
    """Model names found in models/, in numeric order."""
    numbers = sorted(int(m.group(1)) for p in MODELS_DIR.iterdir() if (m := _FILE_PATTERN.fullmatch(p.name)))
    return [f"model{n}" for n in numbers]


def canonical_name(name: str | int) -> str:
    """'model3', 'Model3' and '3' all mean model3; anything else is an UnknownModelError."""
    text = str(name).strip().lower()
    canonical = f"model{text}" if text.isdigit() else text
    if canonical not in available():
        raise UnknownModelError(f"unknown model {name!r}; available: {', '.join(available())}")
    return canonical


def _module(name: str | int) -> ModuleType:
    return importlib.import_module(f"{__name__}.{canonical_name(name)}")


def get_model(name: str | int) -> "nn.Module":
    canonical = canonical_name(name)
    return getattr(_module(canonical), canonical.capitalize())()


def named_recipes(name: str | int) -> "dict[str, Recipe]":
    """The model file's recipes by name: `RECIPE` as "default" first, then its `RECIPES` in their order."""
    module = _module(name)
    return {DEFAULT_RECIPE: module.RECIPE, **getattr(module, "RECIPES", {})}


def get_recipe(name: str | int, recipe: str = DEFAULT_RECIPE) -> "Recipe":
    """One of the model file's recipes by name; a name it lacks is a ConfigError that lists the ones it has."""
    recipes = named_recipes(name)
    if recipe not in recipes:
        raise ConfigError(f"{canonical_name(name)} has no recipe {recipe!r} (its recipes: {', '.join(recipes)})")
    return recipes[recipe]


def get_target(name: str | int) -> "Target | None":
    return getattr(_module(name), "TARGET", None)


def get_training_method(name: str | int) -> "Callable[..., TrainingMethod]":
    """The model file's `configure_optimizers(model, recipe, batches_per_epoch)`, or the shared SGD with momentum."""
    from training.optim import sgd

    return getattr(_module(name), "configure_optimizers", sgd)


def get_search_space(name: str | int) -> Callable | None:
    """The model file's `search_space(trial, recipe, fixed) -> {field: value}` for --tune, if it has one."""
    return getattr(_module(name), "search_space", None)


def get_notes(name: str | int) -> str:
    """The model file's docstring: its Target / Results / Analysis notes."""
    return (_module(name).__doc__ or "").strip()
