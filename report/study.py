"""A study's summary page (study.md): its best trials, the best recipe as a line for the model file, and Optuna's
plots, from the study's storage alone."""
import warnings
from dataclasses import MISSING
from pathlib import Path

import optuna

from core.files import atomic_write_bytes
from report.plots import pyplot, save_figure
from core.settings import Recipe, declared, format_value
from experiment.studies import Study


def recipe_line(recipe: Recipe) -> str:
    """The recipe as a line for the model file; fields at their defaults are left out, so that a setting added later
    does not change the line."""
    fields_text = ", ".join(f"{f.name}={getattr(recipe, f.name)!r}" for f in declared(recipe)
                            if f.default is MISSING or getattr(recipe, f.name) != f.default)
    return f"RECIPE = {type(recipe).__name__}({fields_text})"


def best_trials_table(optuna_study: optuna.Study, top: int = 10) -> str:
    rows = sorted((t for t in optuna_study.trials if t.state == optuna.trial.TrialState.COMPLETE),
                  key=lambda t: t.value, reverse=True)[:top]
    lines = ["| trial | score (validation %) | " + " | ".join(rows[0].params) + " | minutes |",
             "|---|---|" + "---|" * len(rows[0].params) + "---|"] if rows else ["(no completed trial yet)"]
    for t in rows:
        minutes = (t.datetime_complete - t.datetime_start).total_seconds() / 60
        lines.append(f"| {t.number} | {t.value:.3f} | " + " | ".join(format_value(v) for v in t.params.values())
                     + f" | {minutes:.1f} |")
    return "\n".join(lines)


# Optuna's plots by file, each with the completed trials it needs.
PLOTS = {"optimization-history.png": ("plot_optimization_history", 1),
         "param-importances.png": ("plot_param_importances", 2),
         "intermediate-values.png": ("plot_intermediate_values", 1)}


def plot_names(optuna_study: optuna.Study) -> list[str]:
    """The plots a study has trials enough for."""
    complete = [t for t in optuna_study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    return [name for name, (_, needed) in PLOTS.items() if len(complete) >= needed]


def save_plots(optuna_study: optuna.Study, folder: Path) -> None:
    """Optuna's optimization history and parameter importances, as PNGs beside the study."""
    pyplot()
    import optuna.visualization.matplotlib as plots

    for name in plot_names(optuna_study):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # stable enough to draw
            axis = getattr(plots, PLOTS[name][0])(optuna_study)
        save_figure(axis.figure, folder / name)


def split_text(study: Study) -> str:
    used = min(study.run_settings.get("limit_train") or 60_000, 60_000)
    return (f"trained on the first {used - used // 6:,} training images and validated on the next {used // 6:,}"
            + ("" if used == 60_000 else f" (a --limit-train {used} subset)"))


def summary_page(study: Study, optuna_study: optuna.Study) -> str:
    """study.md's text: the best trials, the best recipe as a line for the model file, and its plots."""
    states = [t.state.name.lower() for t in optuna_study.trials]
    counts = ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states))
    lines = [f"## Study {study.name}: {study.model}, {counts}", "",
             f"Generated from the study's storage by `python main.py --report {study.folder.as_posix()}`.", "",
             f"Score: {study.score_text} (seeds {', '.join(map(str, study.seeds))}), {split_text(study)}; "
             f"the test set is not read. Median pruning after epoch {study.prune_after}.", "",
             best_trials_table(optuna_study), ""]
    complete = [t for t in optuna_study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if complete:
        best = max(complete, key=lambda t: t.value)
        lines += [f"Best: trial {best.number}, score {best.value:.3f}. For models/{study.model}.py:", "", "```python",
                  recipe_line(study.recipe.with_overrides(best.params)), "```", ""]
    lines += [f"![{name}]({name})" for name in plot_names(optuna_study)]
    return "\n".join(lines).rstrip() + "\n"


def summarize(study: Study) -> str:
    """The study's page and its plots, written beside it; returns the page."""
    optuna_study = study.read()
    text = summary_page(study, optuna_study)
    save_plots(optuna_study, study.folder)
    atomic_write_bytes(study.folder / "study.md", text.encode())
    return text
