"""Train and compare the MNIST-8k models.

    python main.py                                   # every model, its own recipe
    python main.py --models model3 --epochs 15
    python main.py --models model3 --epochs 1 --limit-train 2048 --limit-test 1000   # smoke run
    python main.py --models model3 --seeds 1 2 3 --jobs 2
    python main.py --models model3 --set momentum=0.8   # any field of the model's recipe
"""
import argparse
import os
import signal
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import models
from data.mnist import DataError, ensure_mnist
from files import atomic_write_bytes
from report import results_table
from settings import (ConfigError, ExperimentConfig, SGDRecipe, add_setting_flags, config_for, config_from_record,
                      declared, recipe_overrides, run_settings)

ROOT = Path(__file__).resolve().parent


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr and exit code 2, not the usage text."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def model_specific_settings() -> str:
    """--help's list of the recipe fields that only some models have (set with --set NAME=VALUE)."""
    common = {f.name for f in declared(SGDRecipe)}
    lines = [f"  {f.name} ({name}): {f.metadata['help']}" for name in models.available()
             for f in declared(models.get_recipe(name)) if f.name not in common]
    return ("settings only some recipes have (--set NAME=VALUE):\n" + "\n".join(lines) + "\n\n") if lines else ""


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="main.py", description="Train and compare the MNIST-8k models. Every "
                                "recipe setting not given comes from the model's file, models/<name>.py.",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=model_specific_settings() + "examples:\n" + __doc__.split("\n", 2)[2])
    parser.add_argument("--models", nargs="+", metavar="NAME", default=None,
                        help="models to run, e.g. model3 (or Model3, 3); default: every model in models/, in order")
    parser.add_argument("--seeds", nargs="+", type=int, metavar="N", default=[1],
                        help="random seeds; each model runs once per seed (default: 1)")
    recipe = parser.add_argument_group("recipe", "override the model's recipe (SGD with momentum and StepLR, "
                                       "unless the model file names its own training method)")
    add_setting_flags(recipe, SGDRecipe, recipe=True)
    recipe.add_argument("--set", action="append", metavar="NAME=VALUE",
                        help="set any field of the model's recipe, e.g. --set momentum=0.8 (repeatable)")
    run = parser.add_argument_group("run", "where and how the runs go")
    add_setting_flags(run, ExperimentConfig, recipe=False, skip=("seed",))
    run.add_argument("--jobs", type=positive_int, default=1,
                     help="run the experiments N at a time in worker processes sharing the CPU cores (default: 1)")
    search = parser.add_argument_group("recipe search", "--tune: an Optuna study on the validation split "
                                       "(see the README's Tuning section)")
    search.add_argument("--tune", action="store_true",
                        help="search the model's recipe instead of training it once; the recipe flags above fix "
                             "fields, the model file's search_space (or the default) varies the rest")
    search.add_argument("--trials", type=int, default=20, help="trials the study should have in all (default: 20)")
    search.add_argument("--study", metavar="NAME", help="study name, and its folder under --out "
                        "(default: <model>-tune); the same name continues a study")
    search.add_argument("--storage", metavar="URL", help="Optuna storage shared by workers: postgresql://..., "
                        "mysql://..., sqlite:///..., or a journal file path (default: <out>/<study>/study.log)")
    search.add_argument("--prune-after", type=int, metavar="EPOCHS",
                        help="epochs every trial runs before the median pruner may stop it (default: half the "
                             "epochs + 1, past the first learning-rate drop)")
    parser.add_argument("--resume", nargs="+", metavar="RUN_DIR", default=None,
                        help="continue stopped runs from their last saved epoch, with their recorded config "
                             "(only --data-dir may change)")
    parser.add_argument("--report", nargs="*", metavar="RUN_DIR", default=None,
                        help="train nothing: from run records alone write the results table, plots and report.md "
                             "into the records' parent folder (default records: results/*/); for results/ "
                             "itself this also regenerates README.md's Results section")
    return parser


def check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ConfigError(f"cannot write run records to {folder}: {error.strerror or error}") from None


def report(folders: list[str], data_dir: str | None) -> int:
    from records import RecordError
    from report import ReportError, write_report

    from tune import STUDY_FILE, load_study, summarize

    studies = [Path(f) for f in folders if (Path(f) / STUDY_FILE).exists()]
    for folder in studies:
        print(summarize(load_study(folder)))
    folders = [f for f in folders if Path(f) not in studies]
    if studies and not folders:
        return 0
    results = ROOT / "results"
    paths = [Path(f) for f in folders] or sorted(p.parent for p in results.glob("*/metrics.json"))
    if not paths:
        print("main.py: error: no run records to report on (give run folders, or fill results/)", file=sys.stderr)
        return 2
    out = Path(os.path.commonpath([p.resolve().parent for p in paths]))
    readme = ROOT / "README.md" if out == results.resolve() else None
    try:
        write_report(paths, out, readme, data_dir)
    except (ReportError, RecordError, DataError) as error:
        print(f"main.py: error: {error}", file=sys.stderr)
        return 2
    print(f"Report written to {out / 'report.md'}" + (f"; {readme} regenerated" if readme else ""))
    return 0


def stop_on_signals() -> None:
    """Ctrl-C and `kill` (SIGTERM: schedulers, notebooks) both end runs cleanly as `interrupted`.

    SIGINT is set explicitly because a shell starting a job in the background has it ignored.
    """
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)


def experiment_configs(args: argparse.Namespace) -> list[ExperimentConfig]:
    """One validated config per model and seed; ConfigError (a ValueError) for the first bad setting."""
    names = [models.canonical_name(n) for n in args.models] if args.models else models.available()
    overrides, run = recipe_overrides(args), run_settings(args)
    configs = [config_for(name, seed, overrides, progress=args.jobs == 1, **run)
               for name in names for seed in args.seeds]
    check_writable(Path(args.out))
    ensure_mnist(args.data_dir)
    return configs


def tune(args: argparse.Namespace) -> int:
    import tune as search

    try:
        if not args.models or len(args.models) != 1:
            raise ConfigError("--tune searches one model's recipe: give --models NAME")
        check_writable(Path(args.out))
        ensure_mnist(args.data_dir)
        study = search.make_study(args.models[0], args.trials, args.seeds, args.out, args.study, args.storage,
                                  args.prune_after, recipe_overrides(args), run_settings(args))
    except ValueError as error:
        print(f"main.py: error: {error}", file=sys.stderr)
        return 2
    stop_on_signals()
    return search.tune(study, args.jobs)


RESUME_MAY_CHANGE = ("resume", "data_dir")


def resumable(folders: list[str], args: argparse.Namespace) -> list[tuple[Path, ExperimentConfig]]:
    """The run folders --resume can continue, with their recorded configs; a one-line ConfigError otherwise.

    Completed runs are reported and left alone.
    """
    from records import RecordError, load_record
    from training.checkpoint import load_state

    parser = build_parser()
    for action in parser._actions:
        if action.dest not in RESUME_MAY_CHANGE + ("help",) and getattr(args, action.dest) != action.default:
            raise ConfigError(f"--resume continues a run with its recorded config: {action.option_strings[0]} "
                              "cannot change it (start a new run instead)")
    runs = []
    for folder in map(Path, folders):
        try:
            record = load_record(folder)
        except RecordError as error:
            raise ConfigError(str(error)) from None
        if record.status == "completed":
            print(f"{folder}: completed ({len(record.epochs)} of {record.planned_epochs} epochs); left alone")
            continue
        if record.status == "running" and not record.stopped_unexpectedly():
            raise ConfigError(f"{folder}: still running (process {record.process}); stop it first")
        if record.reason == "diverged":
            raise ConfigError(f"{folder}: diverged; resuming would diverge again (start a run with a lower --lr)")
        load_state(folder)  # a missing or unloadable state is one line, before any training
        try:
            runs.append((folder, config_from_record(record.config | {"model": record.model, "seed": record.seed},
                                                    args.data_dir)))
        except ConfigError as error:
            raise ConfigError(f"{folder}: {error}") from None
    return runs


def resume(args: argparse.Namespace) -> int:
    from run_experiments import run_experiment
    from training.checkpoint import StateError

    try:
        runs = resumable(args.resume, args)
    except (ConfigError, StateError) as error:
        print(f"main.py: error: {error}", file=sys.stderr)
        return 2
    stop_on_signals()
    records = []
    for folder, config in runs:
        records.append(run_experiment(config, resume=folder))
        if records[-1].status == "interrupted":
            return 130
    if records:
        print(f"\n{results_table(records)}")
    return 1 if any(r.status == "failed" for r in records) else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.report is not None:
        return report(args.report, args.data_dir)
    if args.resume is not None:
        return resume(args)
    if args.tune:
        return tune(args)
    try:
        configs = experiment_configs(args)
    except ValueError as error:
        print(f"main.py: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"main.py: error: cannot use --data-dir {args.data_dir}: {error.strerror or error}", file=sys.stderr)
        return 2
    except DataError as error:
        print(error, file=sys.stderr)
        return 1

    from run_experiments import run_experiments

    def announce(record) -> None:
        if args.jobs > 1:
            print(f"finished {record.model} seed {record.seed}: {record.status}, best test "
                  f"{record.best_test_acc}% (epoch {record.best_epoch}) -> {Path(args.out) / record.run_id}", flush=True)

    stop_on_signals()
    records = run_experiments(configs, jobs=args.jobs, on_result=announce)
    if not records:
        print("No experiment finished.", file=sys.stderr)
        return 130
    table = results_table(records)
    summary = Path(args.out) / f"summary-{datetime.now().strftime('%Y%m%d-%H%M%S')}.md"
    atomic_write_bytes(summary, (table + "\n").encode())
    print(f"\n{table}\n\nTable written to {summary}")
    if len(records) < len(configs) or any(r.status == "interrupted" for r in records):
        return 130
    return 1 if any(r.status == "failed" for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
