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
mistakes are a ModelFileError, one line naming the file and the line (models/contract.py checks the rest).
"""
import ast
import functools
import hashlib
import importlib
import re
import traceback
from pathlib import Path
from types import ModuleType, TracebackType
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


class ModelFileError(ConfigError):
    """A model file that cannot be used: it does not import, breaks the contract, or its own code raised. The message
    is one line in the user's words; `details` keeps Python's whole traceback, where there is one (--traceback)."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


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


def shown_path(path: Path) -> str:
    """A file as the user finds it: models/model6.py."""
    return path.relative_to(MODELS_DIR.parent).as_posix() if path.is_relative_to(MODELS_DIR.parent) else str(path)


def where_in_file(tb: TracebackType | None, path: Path) -> str:
    """'models/model6.py, line 23 (in forward)': the last place in `path` that the traceback passed through."""
    frames = [frame for frame in traceback.extract_tb(tb) if Path(frame.filename).resolve() == path.resolve()]
    if not frames:
        return shown_path(path)
    return f"{shown_path(path)}, line {frames[-1].lineno}" + ("" if frames[-1].name == "<module>"
                                                               else f" (in {frames[-1].name})")


def raised_in(name: str, error: BaseException) -> ModelFileError:
    """An exception from a model file's own code as one line: the file's line, the error and its first line."""
    path = model_file(name)
    if isinstance(error, SyntaxError) and error.filename and Path(error.filename).resolve() == path.resolve():
        place = f"{shown_path(path)}, line {error.lineno}"
        message = f"SyntaxError: {error.msg}"
    else:
        place = where_in_file(error.__traceback__, path)
        first_line = (str(error).strip().splitlines() or [""])[0]
        message = f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__
    details = "".join(traceback.format_exception(error))
    return ModelFileError(f"{name}: {place}: {message} (--traceback shows Python's traceback)", details)


def _module(name: str | int) -> ModuleType:
    canonical = canonical_name(name)
    try:
        return importlib.import_module(f"{__name__}.{canonical}")
    except Exception as error:  # the user's file: whatever it raises is named, with its line
        raise raised_in(canonical, error) from None


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


@functools.cache
def _read(path: Path, stamp: tuple[int, int]) -> tuple[str, tuple[str, ...]]:
    """A file as (what it does, the modules it imports): its syntax tree without docstrings (and so without comments),
    so notes may change freely. Cached by the file's modification time and size: a report asks once per record."""
    tree = ast.parse(path.read_text(), filename=str(path))
    imported: list[str] = []
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
        if isinstance(node, ast.ImportFrom) and node.module:
            imported += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
    return ast.dump(tree), tuple(imported)


def _code_and_imports(path: Path) -> tuple[str, tuple[str, ...]]:
    status = path.stat()
    return _read(path, (status.st_mtime_ns, status.st_size))


def _sources(path: Path, seen: set[Path]) -> set[Path]:
    """`path` and the modules of models/ it imports, and theirs."""
    seen.add(path)
    for module in _code_and_imports(path)[1]:
        if module.startswith(f"{__name__}."):
            found = MODELS_DIR / f"{module.split('.')[1]}.py"
            if found.exists() and found not in seen:
                _sources(found, seen)
    return seen


def source_hash(name: str | int) -> str:
    """The model file's code and that of the models/ modules it imports, as a short hash: two runs with the same hash
    (and the same recipe) trained the same network. Docstrings and comments are not part of it."""
    canonical = canonical_name(name)
    try:
        paths = sorted(_sources(model_file(canonical), set()))
        digest = hashlib.sha256()
        for path in paths:
            digest.update(path.name.encode() + b"\0" + _code_and_imports(path)[0].encode() + b"\0")
    except SyntaxError as error:
        raise raised_in(canonical, error) from None
    return digest.hexdigest()[:16]


def get_notes(name: str | int) -> str:
    """The model file's docstring: what the model is, its target and its headline."""
    return (_module(name).__doc__ or "").strip()
