"""Recipes that more than one model file trains with, and the search space around them. How each was chosen, on
the validation split, is in results/tuning/README.md."""
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from settings import Recipe, SGDRecipe

if TYPE_CHECKING:
    import optuna

# Trial 15 of Model3's recipe search (rate, momentum, batch 64) with weight decay 1.5e-4, on a one-cycle schedule
# that anneals by epoch 12 and holds its floor, on the images as they are, for the three epochs the target reads.
# Chosen for Model4, then for Model3; Model5 trains as Model4 does.
ONE_CYCLE = SGDRecipe(epochs=15, batch_size=64, lr=0.8801502858461098, momentum=0.8285934066041577,
                      weight_decay=1.5e-4, step_size=4, gamma=0.1466624901477834, augment=True,
                      schedule="one-cycle", cycle_epochs=12, floor=0.003, clean_epochs=3)
# The StepLR recipe it replaced (the rate times 0.147 every 4 epochs, every epoch augmented): its runs keep a name.
STEP = replace(ONE_CYCLE, schedule="step", clean_epochs=0)


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
