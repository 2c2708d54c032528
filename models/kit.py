"""Everything a model file takes from the package, in one place: a file imports only from here and from torch.

    from models.kit import SGDRecipe, Target, conv_bn_relu

Recipes (`Recipe`, `SGDRecipe`, and `setting` with its checks for a recipe class of your own), `Target`, the
`TrainingMethod` a file's `configure_optimizers` returns (and `sgd`, the default one), the blocks several files
share and the search spaces they give `--tune`. Where a name lives in the package may change; this list is what a
model file can count on. A file's code hash is of what it does, not of where it imported a name from
(models/source.py).
"""
from core.records import Target
from core.settings import (FRACTION, FRACTIONS, NON_NEGATIVE, OPEN_FRACTION, POSITIVE, Check, Recipe, SGDRecipe,
                           When, setting)
from models.blocks import conv_bn_relu, separable_bn_relu
from models.search_spaces import one_cycle_search_space
from training.optim import TrainingMethod, sgd

__all__ = ["Check", "FRACTION", "FRACTIONS", "NON_NEGATIVE", "OPEN_FRACTION", "POSITIVE", "Recipe", "SGDRecipe",
           "Target", "TrainingMethod", "When", "conv_bn_relu", "one_cycle_search_space", "separable_bn_relu",
           "setting", "sgd"]
