"""What a recipe search is, and where it is kept: the Study that `--tune` runs (tune.py) and the report reads
(report/study.py), its Optuna storage and its study.json. No training here."""
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

import models
from core.records import plural
from core.settings import Recipe, recorded_values
from core.stats import SCORE_TEXT, SCORES

STUDY_FILE = "study.json"
# A worker writes the time into the trial it runs this often (on any storage), and a trial silent for six beats
# (its worker killed, its machine off) is failed and redone. The tests shorten the beat through the environment.
HEARTBEAT_SECONDS = int(os.environ.get("MNIST8K_HEARTBEAT_SECONDS", "30"))
GRACE_SECONDS = 6 * HEARTBEAT_SECONDS
JOURNAL_FILE = "study.log"


@dataclass(frozen=True)
class Study:
    """One recipe search: what it tunes, how trials run, and where it is kept."""
    model: str
    name: str
    folder: Path
    storage: str | None  # an Optuna RDB URL, or the path of a journal file; None: study.log in the folder
    trials: int
    seeds: tuple[int, ...]
    prune_after: int  # epochs every trial runs before the pruner may stop it
    overrides: dict[str, Any] = field(default_factory=dict)  # recipe fields fixed from the command line
    run_settings: dict[str, Any] = field(default_factory=dict)
    score: str = "mean"  # the statistic over seeds (SCORES)
    # The model file's recipe when the study began, kept with the study: every trial starts from it, so a study
    # continued after the file changed still searches around one recipe. Empty: the file's recipe now.
    base_recipe: dict[str, Any] = field(default_factory=dict)

    def file_recipe(self) -> Recipe:
        """The model file's recipe now, of the name the study was given (`--recipe`; the default)."""
        return models.get_recipe(self.model, self.run_settings.get("recipe_name", models.DEFAULT_RECIPE))

    @property
    def recipe(self) -> Recipe:
        """The recipe every trial starts from: the study's base recipe with the fields fixed on its command line."""
        current = self.file_recipe()
        base = type(current)(**recorded_values(type(current), self.base_recipe)) if self.base_recipe else current
        return base.with_overrides(self.overrides)

    @property
    def score_window(self) -> int:
        target = models.get_target(self.model)
        return min(target.window, self.recipe.epochs) if target else 1

    @property
    def where(self) -> str:
        return self.storage or str(self.folder / JOURNAL_FILE)

    def open_storage(self) -> optuna.storages.BaseStorage:
        if "://" in self.where:
            return optuna.storages.RDBStorage(self.where)
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(self.where))

    def load(self, pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
        pruner = pruner or optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=self.prune_after)
        return optuna.create_study(storage=self.open_storage(), study_name=self.name, direction="maximize",
                                   load_if_exists=True, pruner=pruner)

    def read(self) -> optuna.Study:
        """The study as stored, for reading: unlike load(), this writes nothing to the storage."""
        return optuna.load_study(study_name=self.name, storage=self.open_storage())

    def describe(self) -> dict[str, Any]:
        return {"model": self.model, "name": self.name, "storage": self.storage, "trials": self.trials,
                "seeds": list(self.seeds), "prune_after": self.prune_after, "overrides": self.overrides,
                "run_settings": {k: v for k, v in self.run_settings.items() if k not in ("out", "data_dir")},
                "score": self.score, "score_text": self.score_text, "recipe": self.base_recipe}

    @property
    def score_text(self) -> str:
        return f"{SCORE_TEXT[self.score]} of validation accuracy over the last {plural(self.score_window, 'epoch')}"


def load_study(folder: Path) -> Study:
    """The Study a folder's study.json describes (for --report on a study folder)."""
    value = json.loads((Path(folder) / STUDY_FILE).read_text())
    score = value["score"] if value.get("score") in SCORES else "mean"  # studies from before --score took the mean
    return Study(value["model"], value["name"], Path(folder), value["storage"], value["trials"],
                 tuple(value["seeds"]), value["prune_after"], value["overrides"], value["run_settings"], score,
                 value.get("recipe", {}))  # studies from before the base recipe was kept: the file's recipe now
