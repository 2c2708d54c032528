"""Model registry: every `models/modelN.py` holding `class ModelN` and a `RECIPE` is a model.

    import models
    models.available()            # ['model1', 'model2', 'model3']
    models.get_model("model3")    # also "Model3" or "3"; a fresh instance each call
    models.get_recipe("model3")   # its training recipe
"""
import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from torch import nn

MODELS_DIR = Path(__file__).parent
_FILE_PATTERN = re.compile(r"model(\d+)\.py")


@dataclass(frozen=True, kw_only=True)
class Hyperparameters:
    """How a model is trained: SGD with momentum, a StepLR schedule, augmentation on or off."""
    epochs: int
    batch_size: int
    lr: float
    momentum: float
    step_size: int
    gamma: float
    augment: bool
    weight_decay: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Recipe(Hyperparameters):
    """A model's own hyperparameters and target.

    The target is met when test accuracy reaches `target_test_acc` in at least `target_hits`
    of the last `target_window` epochs (None: the model has no accuracy target).
    """
    target_test_acc: float | None = None
    target_hits: int = 1
    target_window: int = 15


class UnknownModelError(ValueError):
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


def get_model(name: str | int) -> nn.Module:
    canonical = canonical_name(name)
    return getattr(_module(canonical), canonical.capitalize())()


def get_recipe(name: str | int) -> Recipe:
    return _module(name).RECIPE


def get_notes(name: str | int) -> str:
    """The model file's docstring: its Target / Results / Analysis notes."""
    return (_module(name).__doc__ or "").strip()

