"""Model registry: every file `models/modelN.py` is a model, found by its name (it holds `class ModelN`).

A model file is a whole experiment: the network, its `RECIPE` (a Recipe: the default), optionally `RECIPES`, more
recipes by name (`published`: the published project's settings; `--recipe NAME` picks one), its `TARGET` (a
Target: accuracy within a budget), its `configure_optimizers` (else SGD with momentum on a StepLR or one-cycle
schedule, training/optim.py), its `search_space` for `--tune`, and its notes as the docstring. It imports what it
takes from the package from models/kit.py.

    import models
    models.available()                         # ['model1', 'model2', ..., 'model6', ...]
    models.get_model("model3")                 # also "Model3" or "3"; a fresh instance each call
    models.get_recipe("model3")                # its default recipe
    models.get_recipe("model3", "published")   # one of its named recipes
    models.entry("model3")                     # all of that at once: module, network, recipes, target, code hash

Each file is read once (again only after it changes) into a ModelEntry; the functions below are its fields. A file
is imported only when something names it, so a file being edited costs only the commands that use it: its
mistakes are a ModelFileError, one line naming the file and the line (models/errors.py; models/contract.py checks the
rest). What a record keeps of a file's code is models/source.py's hash.
"""
import functools
import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Callable

from models import source
from models.errors import ModelFileError, UnknownModelError, raised_in, shown_path
from core.settings import ConfigError, Recipe

if TYPE_CHECKING:
    from torch import nn

    from core.records import Target
    from training.optim import TrainingMethod

MODELS_DIR = Path(__file__).parent
_FILE_PATTERN = re.compile(r"model(\d+)\.py")

DEFAULT_RECIPE = "default"  # the name of a model file's `RECIPE`


def available() -> list[str]:
    """Model names found in models/, in numeric order (no file is imported)."""
    return sorted((p.stem for p in MODELS_DIR.iterdir() if _FILE_PATTERN.fullmatch(p.name)), key=name_order)


def name_order(name: str) -> tuple[int, str]:
    """model2 before model10, by the number; a name that is no file's (a retired candidate's) by its own number after
    the files with it: pages order records by their names alone, whatever files models/ holds now."""
    number = re.match(r"model(\d+)", name)
    return (int(number.group(1)) if number else 1 << 30, name)


def canonical_name(name: str | int) -> str:
    """'model3', 'Model3' and '3' all mean model3; anything else is an UnknownModelError."""
    text = str(name).strip().lower()
    canonical = f"model{text}" if text.isdigit() else text
    if canonical not in available():
        raise UnknownModelError(f"unknown model {name!r}; available: {', '.join(available())}")
    return canonical


def model_file(name: str) -> Path:
    return MODELS_DIR / f"{name}.py"


def _module(canonical: str) -> ModuleType:
    try:
        return importlib.import_module(f"{__name__}.{canonical}")
    except Exception as error:  # the user's file: whatever it raises is named, with its line
        raise raised_in(canonical, model_file(canonical), error) from None


@dataclass(frozen=True)
class ModelEntry:
    """One model file as the package uses it: everything a run, a record's experiment or a page asks of it."""
    name: str  # canonical: model3
    path: Path
    module: ModuleType
    network: "type[nn.Module]"  # the class named after the file (model6.py: Model6)
    recipes: "dict[str, Recipe]"  # `RECIPE` as "default" first, then its `RECIPES` in their order
    target: "Target | None"
    training_method: "Callable[..., TrainingMethod]"  # its `configure_optimizers`, or the shared SGD with momentum
    search_space: Callable | None  # `search_space(trial, recipe, fixed) -> {field: value}` for --tune
    code_hash: str  # the code it trains with, as its records carry it (models/source.py)

    @property
    def notes(self) -> str:
        """The docstring: what the model is, its target and its headline."""
        return (self.module.__doc__ or "").strip()

    def recipe(self, name: str = DEFAULT_RECIPE) -> Recipe:
        """One of its recipes by name; a name it lacks is a ConfigError that lists the ones it has."""
        if name not in self.recipes:
            raise ConfigError(f"{self.name} has no recipe {name!r} (its recipes: {', '.join(self.recipes)})")
        return self.recipes[name]


def entry(name: str | int) -> ModelEntry:
    """The model file's entry, read once per version of the file; each mistake in it is a ModelFileError naming it."""
    canonical = canonical_name(name)
    status = model_file(canonical).stat()
    return _read_entry(canonical, MODELS_DIR, (status.st_mtime_ns, status.st_size))


@functools.cache
def _read_entry(canonical: str, folder: Path, stamp: tuple[int, int]) -> ModelEntry:
    from core.records import Target
    from training.optim import sgd

    path = folder / f"{canonical}.py"
    module, where = _module(canonical), shown_path(path)
    class_name = canonical.capitalize()
    network = getattr(module, class_name, None)
    if not isinstance(network, type):
        raise ModelFileError(f"{canonical}: {where} has no class {class_name}; expected the network as "
                             f"`class {class_name}(nn.Module)`, named after the file")
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
    target = getattr(module, "TARGET", None)
    if target is not None and not isinstance(target, Target):
        raise ModelFileError(f"{canonical}: {where} has TARGET = {type(target).__name__}; expected e.g. "
                             "TARGET = Target(99.40, hits=3, window=5)")
    return ModelEntry(canonical, path, module, network, {DEFAULT_RECIPE: recipe, **recipes}, target,
                      getattr(module, "configure_optimizers", sgd), getattr(module, "search_space", None),
                      source_hash(canonical))


def loads(name: str) -> bool:
    """Whether the model's file is there and can be used (a file mid-edit may not)."""
    try:
        entry(name)
    except ConfigError:
        return False
    return True


def get_model(name: str | int) -> "nn.Module":
    return entry(name).network()


def named_recipes(name: str | int) -> "dict[str, Recipe]":
    return entry(name).recipes


def get_recipe(name: str | int, recipe: str = DEFAULT_RECIPE) -> "Recipe":
    return entry(name).recipe(recipe)


def get_target(name: str | int) -> "Target | None":
    return entry(name).target


def get_training_method(name: str | int) -> "Callable[..., TrainingMethod]":
    return entry(name).training_method


def get_search_space(name: str | int) -> Callable | None:
    return entry(name).search_space


def source_hash(name: str | int) -> str:
    """The model file's code as the hash its records carry (models/source.py)."""
    canonical = canonical_name(name)
    try:
        return source.source_hash(model_file(canonical))
    except SyntaxError as error:
        raise raised_in(canonical, model_file(canonical), error) from None


def get_notes(name: str | int) -> str:
    return entry(name).notes
