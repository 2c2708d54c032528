"""Train and compare the MNIST-8k models.

    python main.py                                   # every model, its own recipe
    python main.py --models model3 --epochs 15
    python main.py --models model3 --epochs 1 --limit-train 2048 --limit-test 1000   # smoke run
    python main.py --models model3 --seeds 1-20 --jobs 2   # twenty seeds, two at a time
    python main.py --models model3 --set momentum=0.8   # any field of the model's recipe
    python main.py --compare model3 model3 --set lr=0.5   # did the change help? 5 to 20 validation seeds a side
"""
import argparse
import signal
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Callable

import models
from core.commandline import add_setting_flags, parse_seeds, recipe_overrides, run_settings
from data.mnist import DataError, ensure_mnist
from core.files import atomic_write_bytes
from report.tables import results_table
from core.settings import AT_MOST_CORES, ConfigError, ExperimentConfig, SGDRecipe, declared
from core.stats import SCORES

SEEDS = ["1"]  # --seeds when not given (--compare's: the seeds its sequential design needs)


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr and exit code 2, not the usage text."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def jobs(text: str) -> int:
    value = int(text)
    if not AT_MOST_CORES.passes(value) or value == 0:
        raise argparse.ArgumentTypeError(f"must be {AT_MOST_CORES.requirement} and at least 1, got {text}")
    return value


def model_specific_settings() -> str:
    """--help's list of the recipe fields that only some models have (set with --set NAME=VALUE)."""
    common = {f.name for f in declared(SGDRecipe)}
    lines, broken = [], []
    for name in models.available():
        try:
            recipe = models.get_recipe(name)
        except ConfigError as error:  # a file mid-edit: --help still works, and says which file it skipped
            broken.append(f"  {error}")
            continue
        lines += [f"  {f.name} ({name}): {f.metadata['help']}" for f in declared(recipe) if f.name not in common]
    text = ("settings only some recipes have (--set NAME=VALUE):\n" + "\n".join(lines) + "\n\n") if lines else ""
    return text + ("model files that cannot be used now:\n" + "\n".join(broken) + "\n\n" if broken else "")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="main.py", description="Train and compare the MNIST-8k models. Every "
                                "recipe setting not given comes from the model's file, models/<name>.py.",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=model_specific_settings() + "examples:\n" + __doc__.split("\n", 2)[2])
    parser.add_argument("--models", nargs="+", metavar="NAME", default=None,
                        help="models to run, e.g. model3 (or Model3, 3); default: every model in models/, in order")
    parser.add_argument("--seeds", nargs="+", metavar="N|A-B", default=None,
                        help="random seeds and ranges of them (1-20 is 1, 2, ..., 20); each model runs once per "
                             "seed (default: 1; with --compare, the seeds its sequential design needs, 5 to 20 a side; "
                             "given, a fixed design on exactly those)")
    recipe = parser.add_argument_group("recipe", "pick one of the model's named recipes and override its fields (SGD "
                                       "with momentum on a StepLR or one-cycle schedule, unless the model file names "
                                       "its own training method)")
    add_setting_flags(recipe, ExperimentConfig, recipe=False, names=("recipe_name",))
    add_setting_flags(recipe, SGDRecipe, recipe=True)
    recipe.add_argument("--set", action="append", metavar="NAME=VALUE",
                        help="set any field of the model's recipe, e.g. --set momentum=0.8 (repeatable)")
    run = parser.add_argument_group("run", "where and how the runs go")
    add_setting_flags(run, ExperimentConfig, recipe=False, skip=("seed", "recipe_name"))
    run.add_argument("--jobs", type=jobs, default=1,
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
    search.add_argument("--score", choices=sorted(SCORES), default=None,
                        help="how a trial's seeds become its score: their mean, the worst seed, or the mean minus one "
                             "sd (default: worst for targets like '3 of the last 5', else mean)")
    search.add_argument("--prune-after", type=int, metavar="EPOCHS",
                        help="epochs every trial runs before the median pruner may stop it (default: half the "
                             "epochs + 1, past the first learning-rate drop)")
    comparison = parser.add_argument_group("comparison", "--compare: did B do better than A, over seeds? "
                                           "(see the README's Running experiments)")
    comparison.add_argument("--compare", nargs=2, metavar=("A", "B"),
                            help="compare two models, or two recipes of one (MODEL or MODEL:RECIPE; the recipe flags "
                                 "and --set change B), on the validation split: trains only the seeds a side has no "
                                 "record of, then prints each side, B - A with its interval and a permutation test, "
                                 "and a verdict")
    comparison.add_argument("--records", nargs="+", metavar="DIR", default=[],
                            help="more folders to reuse runs from (searched at any depth), beside --out")
    comparison.add_argument("--test-set", action="store_true",
                            help="compare on the test set instead: to publish a choice already made on validation")
    parser.add_argument("--resume", nargs="+", metavar="RUN_DIR", default=None,
                        help="continue stopped runs from their last saved epoch, with their recorded config "
                             "(only --data-dir may change)")
    parser.add_argument("--traceback", action="store_true",
                        help="when a model file raises an error, print Python's whole traceback after the one line")
    parser.add_argument("--report", nargs="*", metavar="RUN_DIR", default=None,
                        help="train nothing: from run records alone write the results page (README.md) and its "
                             "plots into the records' parent folder; with no RUN_DIR, the records in results/, "
                             "which also regenerates the Results summary of the top README.md")
    return parser


def check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ConfigError(f"cannot write run records to {folder}: {error.strerror or error}") from None


def check_data(data_dir: str | None) -> None:
    """MNIST fetched and verified before anything trains."""
    try:
        ensure_mnist(data_dir)
    except OSError as error:
        raise ConfigError(f"cannot use --data-dir {data_dir}: {error.strerror or error}") from None


def stop_on_signals() -> None:
    """Ctrl-C and `kill` (SIGTERM: schedulers, notebooks) both end runs cleanly as `interrupted`.

    SIGINT is set explicitly because a shell starting a job in the background has it ignored.
    """
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)


def print_table(records: list, out: Path | None = None) -> None:
    """The end-of-run table; also written to <out>/summary-<time>.md when `out` is given."""
    table = results_table(records)
    if out is None:
        print(f"\n{table}")
        return
    summary = out / f"summary-{datetime.now().strftime('%Y%m%d-%H%M%S')}.md"
    atomic_write_bytes(summary, (table + "\n").encode())
    print(f"\n{table}\n\nTable written to {summary}")


def train(args: argparse.Namespace) -> int:
    from experiment.configs import config_for
    from commands.planning import run_experiments
    from run_experiments import exit_code

    names = [models.canonical_name(n) for n in args.models] if args.models else models.available()
    overrides, run = recipe_overrides(args), run_settings(args)
    configs = [config_for(name, seed, overrides, progress=args.jobs == 1, **run)
               for name in names for seed in parse_seeds(args.seeds or SEEDS)]
    check_writable(Path(args.out))
    check_data(args.data_dir)

    def announce(record) -> None:
        if args.jobs > 1:
            print(f"finished {record.model} seed {record.seed}: {record.status}, best {record.split} "
                  f"{record.best_eval_acc}% (epoch {record.best_epoch}) -> {Path(args.out) / record.run_id}", flush=True)

    stop_on_signals()
    records = run_experiments(configs, jobs=args.jobs, cheapest_first=not args.models, on_result=announce)
    if not records:
        print("No experiment finished.", file=sys.stderr)
        return 130
    print_table(records, Path(args.out))
    return 130 if len(records) < len(configs) else exit_code(records)


def resume_runs(args: argparse.Namespace) -> int:
    from commands.resuming import resumable_runs
    from run_experiments import exit_code, run_experiment

    defaults = vars(build_parser().parse_args([]))
    runs = resumable_runs(args.resume, args.data_dir,
                          changed=[name for name, value in vars(args).items() if value != defaults[name]])
    stop_on_signals()
    records = []
    for folder, config in runs:
        records.append(run_experiment(config, resume=folder))
        if records[-1].status == "interrupted":
            break
    if records:
        print_table(records)
    return exit_code(records)


def run_tuning(args: argparse.Namespace) -> int:
    from commands import tune

    if not args.models or len(args.models) != 1:
        raise ConfigError("--tune searches one model's recipe: give --models NAME")
    check_writable(Path(args.out))
    check_data(args.data_dir)
    study = tune.make_study(args.models[0], args.trials, parse_seeds(args.seeds or SEEDS), args.out, args.study,
                            args.storage, args.prune_after, recipe_overrides(args), run_settings(args), args.score)
    stop_on_signals()
    return tune.tune(study, args.jobs)


def run_comparison(args: argparse.Namespace) -> int:
    from commands.comparing import DESIGN, compare, make_sides

    given = [flag for flag, value in (("--models", args.models), ("--tune", args.tune), ("--recipe", args.recipe_name))
             if value and value != models.DEFAULT_RECIPE]
    if given:
        raise ConfigError(f"--compare names its two sides itself (MODEL or MODEL:RECIPE): drop {given[0]}")
    folders = [Path(folder) for folder in args.records]
    missing = next((folder for folder in folders if not folder.is_dir()), None)
    if missing:
        raise ConfigError(f"--records {missing}: no such folder")
    run = run_settings(args) | {"validation": not args.test_set, "progress": args.jobs == 1}
    design = None if args.seeds else DESIGN  # --seeds: a fixed design on exactly those seeds
    seeds = parse_seeds(args.seeds) if args.seeds else list(range(1, DESIGN.looks[-1] + 1))
    sides = make_sides(args.compare, seeds, recipe_overrides(args), run)
    check_writable(Path(args.out))
    check_data(args.data_dir)
    stop_on_signals()
    return compare(sides, args.jobs, folders, design)


def regenerate_pages(args: argparse.Namespace) -> int:
    from report.pages import write_results

    return write_results([Path(folder) for folder in args.report], args.data_dir)


def command(args: argparse.Namespace) -> Callable[[argparse.Namespace], int]:
    if args.report is not None:
        return regenerate_pages
    if args.resume is not None:
        return resume_runs
    if args.compare:
        return run_comparison
    return run_tuning if args.tune else train


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return command(args)(args)
    except (ConfigError, DataError) as error:  # bad input, or MNIST not to be had: one line, no traceback
        print(f"main.py: error: {error}", file=sys.stderr)
        if args.traceback and isinstance(error, models.ModelFileError) and error.details:
            print(error.details, file=sys.stderr, end="")
        return 1 if isinstance(error, DataError) else 2


if __name__ == "__main__":
    sys.exit(main())
