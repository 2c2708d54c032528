"""Model registry: every file `models/modelN.py` is a model, found by its name (it holds `class ModelN`).

A model file is a whole experiment: the network, its `RECIPE` (a settings.Recipe: the default), optionally
`RECIPES`, more recipes by name (`published`: the published project's settings; `--recipe NAME` picks one), its
`TARGET` (a records.Target), its `configure_optimizers` (else SGD with momentum on a StepLR or one-cycle
schedule, training/optim.py), its `search_space` for `--tune`, and its notes as the docstring.

    import models
    models.available()                         # ['model1', 'model2', 'model3', 'model4', 'model5', 'model6']
    models.get_model("model3")                 # also "Model3" or "3"; a fresh instance each call
    models.get_recipe("model3")                # its default recipe
    models.get_recipe("model3", "published")   # one of its named recipes

A file is imported only when something names it, so a file being edited costs only the commands that use it: its
mistakes are a ModelFileError, one line naming the file and the line (models/errors.py; models/contract.py checks the
rest). What a record keeps of a file's code is models/source.py's hash.
"""
import importlib
import re
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Callable

from models import source
from models.errors import ModelFileError, UnknownModelError, raised_in, shown_path
from settings import ConfigError, Recipe

if TYPE_CHECKING:
    from torch import nn

    from records import Target
    from training.optim import TrainingMethod

MODELS_DIR = Path(__file__).parent
_FILE_PATTERN = re.compile(r"model(\d+)\.py")

DEFAULT_RECIPE = "default"  # the name of a model file's `RECIPE`


def available() -> list[str]:
    """Model names found in models/, in numeric order (no file is imported)."""
    numbers = sorted(int(m.group(1)) for p in MODELS_DIR.iterdir() if (m := _FILE_PATTERN.fullmatch(p.name)))
    return [f"model{n}" for n in numbers]


def canonical_name(name: str | int) -> str:
    """'model3', 'Model3' and '3' all mean model3; anything else is an UnknownModelError."""
    text = str(name).strip().lower()
    canonical = f"model{text}" if text.isdigit() else text
    if canonical not in available():
        raise UnknownModelError(f"unknown model {name!r}; available: {', '.join(available())}")
    return canonical


def model_file(name: str) -> Path:
    return MODELS_DIR / f"{name}.py"


def _module(name: str | int) -> ModuleType:
    canonical = canonical_name(name)
    try:
        return importlib.import_module(f"{__name__}.{canonical}")
    except Exception as error:  # the user's file: whatever it raises is named, with its line
        raise raised_in(canonical, model_file(canonical), error) from None


def loads(name: str) -> bool:
    """Whether the model's file is there and imports (a file mid-edit may not)."""
    try:
        _module(name)
    except ConfigError:
        return False
    return True


def network_class(name: str | int) -> "type[nn.Module]":
    """The file's network, the class named after it (model6.py: Model6)."""
    canonical = canonical_name(name)
    module, class_name = _module(canonical), canonical.capitalize()
    network = getattr(module, class_name, None)
    if not isinstance(network, type):
        raise ModelFileError(f"{canonical}: {shown_path(model_file(canonical))} has no class {class_name}; expected "
                             f"the network as `class {class_name}(nn.Module)`, named after the file")
    return network


def get_model(name: str | int) -> "nn.Module":
    return network_class(name)()


def named_recipes(name: str | int) -> "dict[str, Recipe]":
    """The model file's recipes by name: `RECIPE` as "default" first, then its `RECIPES` in their order."""
    canonical = canonical_name(name)
    module, where = _module(canonical), shown_path(model_file(canonical))
    recipe = getattr(module, "RECIPE", None)
    if not isinstance(recipe, Recipe):
        found = "no RECIPE" if recipe is None else f"RECIPE = {type(recipe).__name__}"
        raise ModelFileError(f"{canonical}: {where} has {found}; expected its default recipe, e.g. "
                             "RECIPE = SGDRecipe(epochs=15, batch_size=64, lr=0.1, momentum=0.9, ...)")
    recipes = getattr(module, "RECIPES", {})
    wrong = (["RECIPES"] if not isinstance(recipes, dict) else
             [f"RECIPES[{key!r}]" for key, value in recipes.items() if not isinstance(value, Recipe)])
    if wrong:
        raise ModelFileError(f"{canonical}: {where}: {wrong[0]} is not a recipe; expected RECIPES = "
                             "{\"name\": SGDRecipe(...)}")
    return {DEFAULT_RECIPE: recipe, **recipes}


def get_recipe(name: str | int, recipe: str = DEFAULT_RECIPE) -> "Recipe":
    """One of the model file's recipes by name; a name it lacks is a ConfigError that lists the ones it has."""
    recipes = named_recipes(name)
    if recipe not in recipes:
        raise ConfigError(f"{canonical_name(name)} has no recipe {recipe!r} (its recipes: {', '.join(recipes)})")
    return recipes[recipe]


def get_target(name: str | int) -> "Target | None":
    from records import Target

    canonical = canonical_name(name)
    target = getattr(_module(canonical), "TARGET", None)
    if target is not None and not isinstance(target, Target):
        raise ModelFileError(f"{canonical}: {shown_path(model_file(canonical))} has TARGET = "
                             f"{type(target).__name__}; expected e.g. TARGET = Target(99.40, hits=3, window=5)")
    return target


def get_training_method(name: str | int) -> "Callable[..., TrainingMethod]":
    """The model file's `configure_optimizers(model, recipe, batches_per_epoch)`, or the shared SGD with momentum."""
    from training.optim import sgd

    return getattr(_module(name), "configure_optimizers", sgd)


def get_search_space(name: str | int) -> Callable | None:
    """The model file's `search_space(trial, recipe, fixed) -> {field: value}` for --tune, if it has one."""
    return getattr(_module(name), "search_space", None)


def source_hash(name: str | int) -> str:
    """The model file's code as the hash its records carry (models/source.py)."""
    canonical = canonical_name(name)
    try:
        return source.source_hash(model_file(canonical))
    except SyntaxError as error:
        raise raised_in(canonical, model_file(canonical), error) from None


def get_notes(name: str | int) -> str:
    """The model file's docstring: what the model is, its target and its headline."""
    return (_module(name).__doc__ or "").strip()
