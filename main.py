"""Train and compare the MNIST-8k models.

    python main.py                                   # every model, its own recipe
    python main.py --models model3 --epochs 15
    python main.py --models model3 --epochs 1 --limit-train 2048 --limit-test 1000   # smoke run
    python main.py --models model3 --seeds 1 2 3 --jobs 2
"""
import argparse
import os
import signal
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import models
from data.loaders import LOADERS
from data.mnist import DATA_DIR_ENV, DataError, ensure_mnist
from report import results_table
from run_experiments import ConfigError, config_for, run_experiments
from utils import atomic_write_bytes

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


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="main.py", description="Train and compare the MNIST-8k models. Every "
                                "setting not given comes from the model's recipe in models/<name>.py.",
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 2)[2])
    parser.add_argument("--models", nargs="+", metavar="NAME", default=None,
                        help="models to run, e.g. model3 (or Model3, 3); default: every model in models/, in order")
    parser.add_argument("--seeds", nargs="+", type=int, metavar="N", default=[1],
                        help="random seeds; each model runs once per seed (default: 1)")
    parser.add_argument("--epochs", type=int, help="training epochs (default: the recipe's, 15)")
    parser.add_argument("--batch-size", type=int, help="training batch size (default: the recipe's)")
    parser.add_argument("--lr", type=float, help="SGD learning rate (default: the recipe's)")
    parser.add_argument("--momentum", type=float, help="SGD momentum (default: the recipe's)")
    parser.add_argument("--weight-decay", type=float, help="SGD weight decay (default: the recipe's)")
    parser.add_argument("--step-size", type=int, help="StepLR: epochs between learning-rate drops (default: the recipe's)")
    parser.add_argument("--gamma", type=float, help="StepLR: factor applied at each drop (default: the recipe's)")
    parser.add_argument("--no-augment", dest="augment", action="store_const", const=False, default=None,
                        help="train without the ColorJitter + rotation augmentation, whatever the recipe says")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
                        help="where to train; auto picks CUDA, then MPS, then the CPU (default: auto)")
    parser.add_argument("--data-dir", default=None,
                        help=f"folder holding MNIST/raw; fetched and verified if missing (default: ${DATA_DIR_ENV} or ./data)")
    parser.add_argument("--out", default="runs", help="folder for run records, one sub-folder per run (default: runs/)")
    parser.add_argument("--limit-train", type=positive_int, metavar="N", help="train on the first N training images only")
    parser.add_argument("--limit-test", type=positive_int, metavar="N", help="test on the first N test images only")
    parser.add_argument("--loader", default="tensor", choices=LOADERS,
                        help="tensor: data kept on the device, batch augmentation (fast, default); "
                             "torchvision: the published per-image PIL pipeline")
    parser.add_argument("--workers", type=int, default=0,
                        help="DataLoader worker processes for --loader torchvision (default: 0)")
    parser.add_argument("--report", nargs="*", metavar="RUN_DIR", default=None,
                        help="train nothing: from run records alone write the results table, plots and report.md "
                             "into the records' parent folder (default records: results/*/); for results/ "
                             "itself this also regenerates README.md's Results section")
    parser.add_argument("--torch-dropout", dest="fast_dropout", action="store_false",
                        help="on the CPU, use nn.Dropout's own Bernoulli mask instead of the faster, "
                             "equally exact one from training/dropout.py")
    parser.add_argument("--jobs", type=positive_int, default=1,
                        help="run the experiments N at a time in worker processes sharing the CPU cores (default: 1)")
    return parser


def check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ConfigError(f"cannot write run records to {folder}: {error.strerror or error}") from None


def report(folders: list[str], data_dir: str | None) -> int:
    from report import ReportError, write_report

    results = ROOT / "results"
    paths = [Path(f) for f in folders] or sorted(p.parent for p in results.glob("*/metrics.json"))
    if not paths:
        print("main.py: error: no run records to report on (give run folders, or fill results/)", file=sys.stderr)
        return 2
    out = Path(os.path.commonpath([p.resolve().parent for p in paths]))
    readme = ROOT / "README.md" if out == results.resolve() else None
    try:
        write_report(paths, out, readme, data_dir)
    except (ReportError, DataError) as error:
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.report is not None:
        return report(args.report, args.data_dir)
    try:
        names = [models.canonical_name(n) for n in args.models] if args.models else models.available()
        configs = [config_for(name, seed=seed, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                              momentum=args.momentum, weight_decay=args.weight_decay, step_size=args.step_size, gamma=args.gamma,
                              augment=args.augment, device=args.device, data_dir=args.data_dir, out=args.out,
                              loader=args.loader, workers=args.workers, limit_train=args.limit_train,
                              limit_test=args.limit_test, fast_dropout=args.fast_dropout,
                              progress=args.jobs == 1)
                   for name in names for seed in args.seeds]
        for config in configs:
            config.validate()
        check_writable(Path(args.out))
    except ValueError as error:
        print(f"main.py: error: {error}", file=sys.stderr)
        return 2
    try:
        ensure_mnist(args.data_dir)
    except DataError as error:
        print(error, file=sys.stderr)
        return 1

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
