"""The plots of the results pages, drawn with matplotlib from records alone (PNG files written atomically)."""
import io
import statistics
import textwrap
from pathlib import Path

from core.files import atomic_write_bytes
from core.records import RunRecord
from report.tables import RecordedRun, by_group, split_name

def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "font.size": 9})
    return plt


def whole_epochs(axis) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.xaxis.set_major_locator(MaxNLocator(integer=True))


def save_figure(figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
    atomic_write_bytes(path, buffer.getvalue())
    pyplot().close(figure)


def draw_targets(axis, records: list[RunRecord]) -> None:
    """A dotted line at each target accuracy the runs were made under."""
    for accuracy in sorted({r.target.accuracy for r in records if r.target}):
        axis.axhline(accuracy, color="black", linewidth=0.8, linestyle=":", label=f"target {accuracy:.2f}%")


def plot_group(name: str, group: list[RecordedRun], path: Path) -> None:
    plt = pyplot()
    figure, (accuracy, loss) = plt.subplots(1, 2, figsize=(11, 3.8))
    for index, run in enumerate(group):
        r = run.record
        epochs = [e.epoch for e in r.epochs]
        color = f"C{index}"
        accuracy.plot(epochs, [e.train_acc for e in r.epochs], "--", color=color, label=f"train, seed {r.seed}")
        accuracy.plot(epochs, [e.eval_acc for e in r.epochs], "-o", markersize=3, color=color,
                      label=f"{r.split}, seed {r.seed}")
        loss.plot(epochs, [e.train_loss for e in r.epochs], "--", color=color, label=f"train, seed {r.seed}")
        loss.plot(epochs, [e.eval_loss for e in r.epochs], "-o", markersize=3, color=color, label=f"{r.split}, seed {r.seed}")
    draw_targets(accuracy, [run.record for run in group])
    # Past the first epoch is where runs differ; a short run shows all of its epochs.
    shown = [e for run in group for e in (run.record.epochs[1:] if len(run.record.epochs) > 3 else run.record.epochs)]
    low = min(min(e.eval_acc, e.train_acc) for e in shown)
    accuracy.set_ylim(max(low - 0.2, 90), 100)
    accuracy.set(title=f"{name}: accuracy", xlabel="epoch", ylabel="%")
    loss.set(title=f"{name}: NLL loss", xlabel="epoch", yscale="log")
    accuracy.legend(fontsize=7, ncol=2)
    loss.legend(fontsize=7, ncol=2)
    for axis in (accuracy, loss):
        axis.grid(alpha=0.3)
        whole_epochs(axis)
    save_figure(figure, path)


def plot_comparison(runs: list[RecordedRun], path: Path) -> None:
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(8, 4))
    for index, (name, group) in enumerate(by_group(runs).items()):
        for number, run in enumerate(group):
            r = run.record
            axis.plot([e.epoch for e in r.epochs], [e.eval_acc for e in r.epochs], "-o", markersize=3,
                      color=f"C{index}", alpha=1 if number == 0 else 0.45,
                      label=f"{name}, {r.parameters:,} params" if number == 0 else None)
    draw_targets(axis, [run.record for run in runs])
    split = split_name([run.record for run in runs])
    axis.set(title=f"{split.capitalize()} accuracy per epoch (every seed)", xlabel="epoch", ylabel=f"{split} accuracy %",
             ylim=(98, 99.8))
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    whole_epochs(axis)
    save_figure(figure, path)


LAST_EPOCHS = 5  # the parameters plot's accuracy: the end of training, not one lucky epoch


def column_label(name: str, records: list[RunRecord]) -> str:
    """A column's tick: the group's name a part to a line, its parameters, and how often it met its target."""
    met = [r.target_met() for r in records]
    parts = name.replace(" (", "\n(", 1).replace(", ", ",\n").splitlines()
    lines = [line.replace("=", "=\n", 1) if len(line) > 16 else line  # a long setting: its value on a line of its own
             for part in parts for line in textwrap.wrap(part, 16, break_on_hyphens=False, break_long_words=False)]
    if "parameters at" not in name:
        lines.append(f"{records[0].parameters:,} params")
    if records[0].target and None not in met:
        lines.append(f"target met {sum(met)}/{len(met)}")
    return "\n".join(lines)


def plot_parameters(runs: list[RecordedRun], path: Path) -> None:
    """The story in one picture: a column per group, largest network first, every run a point (spread a little
    sideways so that seeds stay apart) and the group's mean a bar; under each column its parameters and pass rate."""
    plt = pyplot()
    groups = sorted(by_group(runs).items(), key=lambda item: -item[1][0].record.parameters)
    figure, axis = plt.subplots(figsize=(max(6.0, 1.5 * len(groups)), 5))
    for column, (name, group) in enumerate(groups):
        accuracies = [statistics.mean(run.record.eval_accuracies[-LAST_EPOCHS:]) for run in group]
        spread = [column + ((number * 7) % 11 - 5) * 0.035 for number in range(len(group))]
        axis.scatter(spread, accuracies, s=14, color=f"C{column}", alpha=0.65)
        axis.plot([column - 0.25, column + 0.25], [statistics.mean(accuracies)] * 2, color=f"C{column}", linewidth=2)
    draw_targets(axis, [run.record for run in runs])
    split = split_name([run.record for run in runs])
    axis.set_xticks(range(len(groups)), [column_label(name, [run.record for run in group]) for name, group in groups],
                    fontsize=7)
    axis.set(xlim=(-0.6, len(groups) - 0.4), ylabel=f"{split} accuracy %, mean of the last {LAST_EPOCHS} epochs",
             title=f"Parameters against {split} accuracy (each point a run, each bar a mean)")
    axis.legend(fontsize=7)
    axis.grid(alpha=0.3, axis="y")
    save_figure(figure, path)


def plot_distribution(runs: list[RecordedRun], path: Path) -> None:
    """Each group's seeds as points: the accuracy over the target's epochs, the target drawn, how many met it."""
    plt = pyplot()
    groups = {name: [run.record for run in group if run.record.window_accuracy() is not None]
              for name, group in by_group(runs).items()}
    groups = {name: records for name, records in groups.items() if records}
    figure, axis = plt.subplots(figsize=(8, 0.9 + 0.45 * max(1, len(groups))))
    for row, (name, records) in enumerate(reversed(list(groups.items()))):
        met = [r.target_met() for r in records]
        label = f"{name}: {sum(met)}/{len(met)}" if None not in met else name
        # a fixed spread of rows within the band, so seeds with equal accuracy stay visible
        offsets = [((index * 7) % 11 - 5) * 0.03 for index in range(len(records))]
        axis.scatter([r.window_accuracy() for r in records], [row + o for o in offsets], s=14, alpha=0.75,
                     color=["C2" if m else "C3" for m in met])
        axis.text(1.01, row, label, transform=axis.get_yaxis_transform(), va="center", fontsize=8)
    for accuracy in sorted({r.target.accuracy for records in groups.values() for r in records}):
        axis.axvline(accuracy, color="black", linewidth=0.8, linestyle=":")
    split = split_name([r for records in groups.values() for r in records])
    axis.set(yticks=[], ylim=(-0.6, len(groups) - 0.4), xlabel=f"{split} accuracy %, mean over the target's epochs",
             title="Every seed against its target (green: met, red: missed; dotted: the target)")
    axis.grid(alpha=0.3, axis="x")
    save_figure(figure, path)


def seed_score(record: RunRecord) -> float:
    """A seed's point on the frontier: its target's statistic (met where it reaches the target's line), or, for a model
    without a target, its last epoch's accuracy."""
    return record.target.statistic(record.eval_accuracies) if record.target else record.eval_accuracies[-1]


def plot_frontier(runs: list[RecordedRun], path: Path) -> None:
    """The frontier at a glance: parameters (log scale) against each seed's score, one colour per model, its target's
    line and budget, and how often it met the target."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(8, 4.8))
    for colour, (name, group) in enumerate(sorted(by_group(runs).items(), key=lambda item: item[1][0].record.parameters)):
        records = [run.record for run in group if run.record.status == "completed"]
        if not records:
            continue
        parameters, scores = records[0].parameters, [seed_score(record) for record in records]
        spread = [parameters * 1.06 ** (((number * 7) % 11 - 5) / 5) for number in range(len(records))]
        met = [record.target_met() for record in records]
        label = f"{name}: {sum(bool(m) for m in met)}/{len(met)} met" if records[0].target else name
        axis.scatter(spread, scores, s=16, alpha=0.7, color=f"C{colour}", label=label)
        target = records[0].target
        if target:
            axis.plot([parameters / 1.25, parameters * 1.25], [target.accuracy] * 2, color=f"C{colour}", linewidth=1.5)
            if target.max_parameters:
                axis.axvline(target.max_parameters, color=f"C{colour}", linewidth=0.8, linestyle=":")
    axis.set_xscale("log")
    axis.set(xlabel="parameters (log scale; dotted: a target's budget)",
             ylabel="test accuracy %: each seed's target statistic",
             title="Parameters against test accuracy: each point a seed, each short line its model's target")
    if axis.get_legend_handles_labels()[0]:  # no model with a completed run as its file stands: nothing to name
        axis.legend(fontsize=7, loc="upper right")
    axis.grid(alpha=0.3, which="both")
    save_figure(figure, path)


def plot_augmentation(originals, augmented, path: Path) -> None:
    """Training digits as they are (top row of each pair) and as the default augmentation makes them (below)."""
    plt = pyplot()
    columns = len(originals)
    figure, axes = plt.subplots(2, columns, figsize=(columns * 0.9, 2.2))
    for column in range(columns):
        for row, images in enumerate((originals, augmented)):
            axes[row, column].imshow(images[column, 0].numpy(), cmap="gray_r", vmin=0, vmax=1)
            axes[row, column].axis("off")
    axes[0, 0].set_title("as they are", fontsize=8, loc="left")
    axes[1, 0].set_title("augmented", fontsize=8, loc="left")
    figure.suptitle("Training digits, and as the default recipe's augmentation makes them", fontsize=10)
    save_figure(figure, path)


def plot_misclassified(images, wrong: list[dict], title: str, path: Path) -> None:
    """A grid of the test `images` listed in `wrong` ({index, label, predicted}), each titled true -> predicted."""
    plt = pyplot()
    columns = 10
    rows = max(1, -(-len(wrong) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.3))
    for axis in axes.flat:
        axis.axis("off")
    for axis, item in zip(axes.flat, wrong):
        axis.imshow(images[item["index"]].numpy(), cmap="gray_r")
        axis.set_title(f"{item['label']} → {item['predicted']}", fontsize=8, color="firebrick")
    figure.suptitle(title, fontsize=10)
    save_figure(figure, path)
