"""Recipe search: `python main.py --tune`, an Optuna study whose trials are ordinary runs of the shared loops.

Trials train on the first 50,000 training images and are scored on the last 10,000 (the validation split);
the test set is never read. A trial's score follows the model's target: each seed's validation accuracy
over the target's window of last epochs, summed up over the seeds by a statistic (SCORES). For targets
of the kind "k of the last n" the default is the worst seed, so a search prefers recipes that hold on
every seed to ones that shine on some. Pruning watches the first seed's validation accuracy per epoch,
after a warm-up that lets every trial live past its first learning-rate drop.

The study lives in an Optuna storage (by default a journal file in the study's folder), so Ctrl-C loses
nothing and the same command continues it; several processes or machines given the same storage and study
name work one study together.
"""
import contextlib
import json
import os
import socket
import statistics
import sys
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import optuna
import sqlalchemy.exc

import models
from core.files import atomic_write_bytes
from commands.parallel import Worker, run_in_workers
from core.records import RunRecord, format_duration
from experiment.configs import config_for, make_config, teacher_config
from run_experiments import Pruned, finished_teacher, run_experiment
from report.study import summarize
from core.settings import ConfigError, Recipe, SGDRecipe, format_value
from core.stats import SCORES
from experiment.studies import GRACE_SECONDS, HEARTBEAT_SECONDS, STUDY_FILE, Study

# One line per trial is ours to print (progress_line, failures with their reason); Optuna's errors still show.
optuna.logging.set_verbosity(optuna.logging.ERROR)

# Workers starting together on a new database race to create its tables: the losers open it again.
OPEN_ATTEMPTS = 3
ALIVE = "alive"  # the trial's user attribute its worker keeps writing the time into (beating)
COUNTED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.RUNNING,
           optuna.trial.TrialState.WAITING)


def default_search_space(trial: optuna.Trial, recipe: Recipe, fixed: set[str]) -> dict[str, Any]:
    """Around the recipe: learning rate and weight decay on log scales, batch size; for SGD also the momentum, and
    for StepLR the step size (at most half the epochs, so pruning can wait for the first drop) and gamma, for
    one-cycle the warmup."""
    space: dict[str, Callable[[], Any]] = {
        "lr": lambda: trial.suggest_float("lr", recipe.lr / 5, recipe.lr * 2, log=True),
        "weight_decay": lambda: trial.suggest_float("weight_decay", 1e-5, 1e-3, log=True),
        "batch_size": lambda: trial.suggest_categorical("batch_size", [64, 128, 256]),
    }
    if isinstance(recipe, SGDRecipe):
        space["momentum"] = lambda: trial.suggest_float("momentum", 0.8, 0.95)
        if recipe.schedule == "one-cycle":
            space["warmup"] = lambda: trial.suggest_float("warmup", 0.1, 0.4)
        else:
            space |= {
                "step_size": lambda: trial.suggest_int("step_size", max(1, recipe.epochs // 5),
                                                       max(1, recipe.epochs // 2)),
                "gamma": lambda: trial.suggest_float("gamma", 0.05, 0.5, log=True),
            }
    return {name: suggest() for name, suggest in space.items() if name not in fixed}


def search_space(model: str) -> Callable[[optuna.Trial, Recipe, set[str]], dict[str, Any]]:
    """The model file's `search_space(trial, recipe, fixed)`, or the default around its recipe; for a recipe with a
    teacher, also the temperature and the teacher's share where the space leaves them out."""
    space = models.get_search_space(model) or default_search_space

    def searched(trial: optuna.Trial, recipe: Recipe, fixed: set[str]) -> dict[str, Any]:
        values = space(trial, recipe, fixed)
        teacher = {"temperature": lambda: trial.suggest_float("temperature", 1.0, 10.0, log=True),
                   "teacher_share": lambda: trial.suggest_float("teacher_share", 0.3, 0.95)} if recipe.teacher else {}
        return values | {name: suggest() for name, suggest in teacher.items() if name not in fixed | set(values)}
    return searched


def default_score(model: str) -> str:
    """The worst seed for targets met in k of the last n epochs (k < n), where one bad seed is a miss; else the mean."""
    target = models.get_target(model)
    return "worst" if target and target.hits < target.window else "mean"


def make_study(model: str, trials: int, seeds: list[int], out: str, name: str | None, storage: str | None,
               prune_after: int | None, overrides: dict[str, Any], run_settings: dict[str, Any],
               score: str | None = None) -> Study:
    """A checked Study: bad settings, a search space naming a field the recipe lacks and a storage that cannot
    be opened are ConfigErrors here, before any training."""
    if trials <= 0:
        raise ConfigError(f"--trials must be positive, got {trials}")
    model = models.canonical_name(model)
    name = name or f"{model}-tune"
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"--study must be letters, digits, - and _, got {name!r}")
    folder = Path(out) / name
    run_settings = {key: value for key, value in run_settings.items() if key != "validation"}  # always on
    recipe = models.get_recipe(model, run_settings.get("recipe_name", models.DEFAULT_RECIPE)).with_overrides(overrides)
    study = Study(model, name, folder, storage, trials, tuple(seeds),
                  prune_after if prune_after is not None else recipe.epochs // 2 + 1, overrides, run_settings,
                  score or default_score(model))
    sample = search_space(model)(optuna.create_study().ask(), recipe, set(overrides))
    recipe.with_overrides(sample)  # an unknown field or a value its check refuses is a ConfigError
    for seed in seeds:
        config_for(model, seed, sample | overrides, validation=True, **run_settings)
    folder.mkdir(parents=True, exist_ok=True)
    for attempt in range(OPEN_ATTEMPTS):
        try:
            optuna_study = study.load()
            break
        except Exception as error:  # what a storage raises differs by backend: any failure to open it is bad input
            detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            if attempt + 1 == OPEN_ATTEMPTS or isinstance(error, sqlalchemy.exc.ArgumentError):  # a URL never opens
                raise ConfigError(f"--storage {study.where}: cannot open it ({detail})") from None
            time.sleep(1 + attempt)
    return replace(study, base_recipe=base_recipe(optuna_study, study.file_recipe()))


def base_recipe(optuna_study: optuna.Study, file_recipe: Recipe) -> dict[str, Any]:
    """The recipe the study began from, as its storage keeps it for every worker on any machine; a new study (or one
    from before studies kept it) begins from the model file's recipe now."""
    kept = optuna_study.user_attrs.get("recipe")
    if kept is None:
        kept = json.loads(json.dumps(asdict(file_recipe)))  # as the storage will return it
        optuna_study.set_user_attr("recipe", kept)
    return kept


def recipe_changes(study: Study) -> str:
    """The fields where the model file's recipe now differs from the study's ('' where it does not)."""
    current = study.file_recipe().with_overrides(study.overrides)
    began, now = asdict(study.recipe), asdict(current)
    return " ".join(f"{name}={format_value(began[name])} (now {format_value(now[name])})"
                    for name in began if began[name] != now[name])


def trial_score(records: list[RunRecord], window: int, score: str = "mean") -> float:
    """The `score` statistic over seeds of each seed's validation accuracy over the last `window` epochs."""
    return SCORES[score]([statistics.mean(r.eval_accuracies[-window:]) for r in records])


class TrialFailed(Exception):
    pass


def run_trial(study: Study, trial: optuna.Trial, thread_share: Callable[[], int] | None) -> float:
    params = search_space(study.model)(trial, study.recipe, set(study.overrides))
    folder = study.folder / "trials" / f"trial-{trial.number:04d}"

    def report_epoch(record: RunRecord) -> None:
        epoch = record.epochs[-1]
        trial.report(epoch.eval_acc, epoch.epoch)
        if trial.should_prune():
            raise Pruned(f"pruned at epoch {epoch.epoch} (validation {epoch.eval_acc:.2f}%)")

    records = []
    recipe = study.recipe.with_overrides(params)
    run = {key: value for key, value in study.run_settings.items() if value is not None}
    run |= {"out": str(folder), "validation": True, "progress": False}
    if recipe.teacher:  # trained once for the study, in its own folder, whatever the trial varies
        run["teachers"] = str(study.folder / "teachers")
    for index, seed in enumerate(study.seeds):
        config = make_config(study.model, seed, recipe, run)
        if recipe.teacher and not finished_teacher(config):
            run_experiment(teacher_config(config), quiet=True, thread_share=thread_share)
        record = run_experiment(config, quiet=True, thread_share=thread_share, on_epoch=report_epoch if index == 0 else None)
        if record.status == "pruned":
            raise optuna.TrialPruned(record.reason)
        if record.status == "interrupted":
            raise KeyboardInterrupt
        if record.status != "completed":
            raise TrialFailed(f"seed {seed}: {record.reason}")
        records.append(record)
    return trial_score(records, study.score_window, study.score)


def counted_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials that count towards --trials: finished, pruned, or running now (failed ones are redone)."""
    return [t for t in study.get_trials(deepcopy=False) if t.state in COUNTED]


def params_text(params: dict[str, Any]) -> str:
    return " ".join(f"{name}={format_value(value)}" for name, value in params.items()) or "(every field fixed)"


def progress_line(study: Study, optuna_study: optuna.Study, trial: optuna.trial.FrozenTrial, jobs: int) -> str:
    done = [t for t in optuna_study.get_trials(deepcopy=False) if t.state.is_finished()
            and t.state != optuna.trial.TrialState.FAIL]
    if trial.state == optuna.trial.TrialState.COMPLETE:
        outcome = f"score {trial.value:.3f}"
    elif trial.state == optuna.trial.TrialState.PRUNED:
        outcome = f"pruned at epoch {trial.last_step}"
    else:
        outcome = f"failed ({trial.user_attrs.get('reason', 'see its records')})"
    complete = [t for t in done if t.state == optuna.trial.TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value, default=None)
    seconds = [(t.datetime_complete - t.datetime_start).total_seconds() for t in done]
    left = max(0, study.trials - len(done))
    eta = format_duration(statistics.mean(seconds) * left / jobs) if seconds else "?"
    return (f"trial {len(done)}/{study.trials} (#{trial.number}): {params_text(trial.params)} -> {outcome}; "
            + (f"best {best.value:.3f} (#{best.number})" if best else "no score yet") + f"; about {eta} left")


def fail_dead_trials(optuna_study: optuna.Study) -> None:
    """Trials left `running` by workers that died (kill -9, a crash, a lost machine) are failed, to be redone: one
    whose worker on this machine is gone, or one whose worker has not written its time into it for GRACE_SECONDS."""
    now = time.time()
    for trial in optuna_study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.RUNNING]):
        worker = trial.user_attrs.get("worker", {})
        gone = worker.get("host") == socket.gethostname() and not process_alive(worker.get("pid", -1))
        if gone or now - trial.user_attrs.get(ALIVE, now) > GRACE_SECONDS:
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):  # another worker was first
                optuna_study.tell(trial.number, state=optuna.trial.TrialState.FAIL)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    return True


@contextlib.contextmanager
def beating(trial: optuna.Trial) -> Iterator[None]:
    """While the trial runs, write the time into it every HEARTBEAT_SECONDS (a user attribute: Optuna's public API,
    on any storage), so that workers elsewhere can tell it from one whose worker died."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            trial.set_user_attr(ALIVE, time.time())

    trial.set_user_attr(ALIVE, time.time())
    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class Surplus(Exception):
    """The study already has its trials, counting those other workers are running."""


def work(study: Study, thread_share: Callable[[], int] | None = None, jobs: int = 1,
         pruner: optuna.pruners.BasePruner | None = None) -> None:
    """Run trials until the study has `study.trials` that count; any number of workers may do this at once."""
    optuna_study = study.load(pruner)
    ran: list[int] = []  # the number of each trial this worker started

    def objective(trial: optuna.Trial) -> float:
        ran.append(trial.number)
        trial.set_user_attr("worker", {"host": socket.gethostname(), "pid": os.getpid()})
        if sum(t.number < trial.number for t in counted_trials(optuna_study)) >= study.trials:
            trial.set_user_attr("reason", "surplus: another worker took the last trial")
            raise Surplus
        try:
            with beating(trial):
                return run_trial(study, trial, thread_share)
        except TrialFailed as error:
            trial.set_user_attr("reason", str(error))
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("reason", "interrupted")
            raise

    while True:
        fail_dead_trials(optuna_study)  # a worker that died since the last trial leaves its trial to be redone
        if len(counted_trials(optuna_study)) >= study.trials:
            break
        optuna_study.optimize(objective, n_trials=1, catch=(TrialFailed, Surplus))
        trial = optuna_study.trials[ran[-1]]
        if trial.user_attrs.get("reason", "").startswith("surplus"):
            break
        print(progress_line(study, optuna_study, trial, jobs), flush=True)


def _work_in_worker(study: Study, worker: Worker) -> bool:
    work(study, worker.thread_share, worker.jobs)
    return True


def tune(study: Study, jobs: int = 1) -> int:
    """Run the study to its trial count (`jobs` workers here), then print and write its summary."""
    atomic_write_bytes(study.folder / STUDY_FILE, (json.dumps(study.describe(), indent=2) + "\n").encode())
    optuna_study = study.load()
    fail_dead_trials(optuna_study)
    already = len(counted_trials(optuna_study))
    print(f"Study {study.name!r} in {study.where}: {already} of {study.trials} trials done or running; "
          f"{study.score_text}, on the validation split (the test set is never read); "
          f"pruning after epoch {study.prune_after}.", flush=True)
    changed = recipe_changes(study)
    if changed:
        print(f"Its trials start from the recipe it began with, not models/{study.model}.py's now: {changed}.",
              flush=True)
    try:
        if jobs > 1:
            run_in_workers(_work_in_worker, [study] * jobs, jobs, lambda done: None)
        else:
            work(study)
    except KeyboardInterrupt:
        print("\nInterrupted: the study keeps every finished trial; run the same command to continue.",
              file=sys.stderr)
        return 130
    print(summarize(study))
    return 0
