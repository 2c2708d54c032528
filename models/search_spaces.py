"""Search spaces that more than one model file gives `--tune` (a model file names its own as `search_space`)."""
from typing import TYPE_CHECKING, Any

from core.settings import Recipe

if TYPE_CHECKING:
    import optuna


def one_cycle_search_space(trial: "optuna.Trial", recipe: Recipe, fixed: set[str]) -> dict[str, Any]:
    """Model3's region for the rate, weight decay and momentum, widened a little each way (a small model has no
    spare trials for the far corners), and the cycle's shape: how long it rises, and where it ends."""
    space = {
        "lr": lambda: trial.suggest_float("lr", 0.3, 1.5, log=True),
        "weight_decay": lambda: trial.suggest_float("weight_decay", 5e-5, 3e-4, log=True),
        "momentum": lambda: trial.suggest_float("momentum", 0.75, 0.9),
        "warmup": lambda: trial.suggest_float("warmup", 0.1, 0.4),
        "cycle_epochs": lambda: trial.suggest_int("cycle_epochs", max(1, recipe.epochs - 5), recipe.epochs),
    }
    return {name: suggest() for name, suggest in space.items() if name not in fixed}
