"""`--compare A B`: is B better than A, or was that luck? A verdict from seeds, reusing the runs already made.

Each side is a model, or a model and one of its named recipes (`model3:step`); recipe flags and `--set` change B
only. A record counts for a side's seed when it is a completed run of the side's experiment
(experiment/definition.py: the model file's code, the recipe's values and the way it ran) and that seed. Only the
seeds a side lacks are trained, on the validation split unless `--test-set` says otherwise; settings under which the
target's statistic cannot be computed are refused before anything trains.

    python main.py --compare model3:step model3 --seeds 1-10 --records results/tuning
"""
import statistics
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import models
from experiment.configs import config_for, parse_model_recipe
from experiment.definition import changed_fields, is_seed_of, runs_of
from core.files import atomic_write_bytes
from commands.planning import run_experiments
from core.records import RunRecord, Target, format_duration, records_in
from core.sequential import Look, SequentialDesign
from core.settings import ConfigError, ExperimentConfig, format_value, recipe_text
from core.stats import Difference, difference, seeds_to_resolve, wilson_interval
from report.tables import markdown_table

FEWEST_SEEDS = 5  # below this a permutation test cannot reach p < 0.05 however the seeds fall
DESIGN = SequentialDesign()  # without --seeds: the seeds it needs, up to the last look's
SIGNIFICANCE = 0.05  # the permutation test's p below which the verdict names a side
SMALLEST_DIFFERENCE = 0.01  # points: one test image in 10,000; the size of difference a verdict's seed count aims at


@dataclass
class Side:
    """One side of a comparison: what it trains, and for each seed its record (reused or trained)."""
    letter: str
    model: str
    recipe_name: str
    changes: str  # B's recipe flags and --set, as name=value words ('' for none)
    configs: dict[int, ExperimentConfig]
    records: dict[int, RunRecord] = field(default_factory=dict)
    matched_by: dict[int, str] = field(default_factory=dict)  # seed -> "hash", "network" (before hashes), "trained"

    @property
    def name(self) -> str:
        recipe = "" if self.recipe_name == models.DEFAULT_RECIPE else f" · {self.recipe_name}"
        return f"{self.model}{recipe}" + (f" ({self.changes})" if self.changes else "")


def make_sides(texts: list[str], seeds: list[int], overrides: dict[str, Any], run: dict[str, Any]) -> list[Side]:
    if len(seeds) < FEWEST_SEEDS:
        raise ConfigError(f"--compare needs at least {FEWEST_SEEDS} seeds a side, got {len(seeds)}: a seed's accuracy "
                          "spreads by about as much as the differences worth finding (default --seeds 1-10)")
    sides = []
    for letter, text, changes in zip("AB", texts, ({}, overrides)):
        model, recipe = parse_model_recipe(text)
        configs = {seed: config_for(model, seed, changes, **(run | {"recipe_name": recipe})) for seed in seeds}
        words = changed_fields(asdict(configs[seeds[0]].recipe), models.get_recipe(model, recipe))
        sides.append(Side(letter, model, recipe, words, configs))
    a, b = sides
    if a.model == b.model and changed_fields(asdict(b.configs[seeds[0]].recipe), a.configs[seeds[0]].recipe) == "":
        same = "the same recipe values" if a.name != b.name else "its recipe"
        raise ConfigError(f"A and B are the same: {a.name} with {same}; change B with a recipe flag or --set, or name "
                          "another model or recipe")
    check_scorable(sides, models.get_target(a.model))
    return sides


def check_scorable(sides: list[Side], target: Target | None) -> None:
    """Each seed is scored over the target's last epochs: a side with fewer epochs would train for no verdict."""
    if target is None:
        return
    words, _ = statistic(target)
    for side in sides:
        epochs = next(iter(side.configs.values())).recipe.epochs
        if epochs < target.window:
            fix = (f"give --epochs {target.window} or more" if side.letter == "B" else
                   f"name for A a recipe of {target.window} or more epochs")
            raise ConfigError(f"--compare scores each seed by {words} ({sides[0].model}'s target), but {side.letter} = "
                              f"{side.name} trains {epochs} epoch{'s' * (epochs != 1)}: {fix} (recipe flags change B "
                              "only)")


def plan_lines(sides: list[Side]) -> list[str]:
    """What each side trains: A its recipe; B, what the recipe flags and --set changed."""
    lines = []
    for side in sides:
        recipe = next(iter(side.configs.values())).recipe
        named = f"{side.model}'s {side.recipe_name} recipe"
        change = f" with {side.changes} (recipe flags and --set change B only)" if side.changes else ""
        lines.append(f"  {side.letter}: {named}{change}: {recipe_text(recipe)}")
    return lines


def reuse(sides: list[Side], records: list[RunRecord]) -> None:
    """Give each side's seeds the latest record of its experiment (experiment/definition.py) and seed."""
    for side in sides:
        for seed, config in side.configs.items():
            found = runs_of(config, records)
            if found:
                side.records[seed], side.matched_by[seed] = found[0], "hash" if found[0].model_hash else "network"


def statistic(target: Target | None) -> tuple[str, Any]:
    """What a seed scores, in words, and how: for "k of the last n" the k-th best of the last n epochs (the accuracy
    the target needed to be met), for no target the last epoch's."""
    if target is None:
        return "the last epoch's accuracy", lambda accuracies: accuracies[-1]
    rank = {1: "best", 2: "second-best", 3: "third-best"}.get(target.hits, f"{target.hits}th-best")
    return f"the {rank} of the last {target.window} epochs", target.statistic


def points(value: float) -> str:
    return f"{value:+.3f}".replace("-", "−")


def p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def verdict(diff: Difference, a: list[float], b: list[float], level: float = SIGNIFICANCE) -> str:
    """A fixed design's verdict: a side ahead where p is below `level`, else a tie with the seeds it would take."""
    if diff.p < level:
        ahead, (low, high) = ("B", (diff.low, diff.high)) if diff.mean > 0 else ("A", (-diff.high, -diff.low))
        return (f"{ahead} is ahead by {abs(diff.mean):.3f} points (95% interval {low:.3f} to {high:.3f}, "
                f"{p_text(diff.p)})")
    aim = max(round(abs(diff.mean), 2), SMALLEST_DIFFERENCE)
    return (f"no difference these {len(a)} seeds can see: the interval spans {points(diff.low)} to "
            f"{points(diff.high)} ({p_text(diff.p)}); about {seeds_to_resolve(a, b, aim)} seeds each would resolve a "
            f"difference of {aim:.2f} at the spread seen")


@dataclass
class Comparison:
    lines: list[str]  # printed
    table: str  # the Markdown file's body


def scores_of(side: Side, seeds: list[int], target: Target | None) -> list[float]:
    _, score = statistic(target)
    return [score(side.records[seed].eval_accuracies) for seed in seeds]


def sequential_verdict(look: Look, design: SequentialDesign, a: list[float], b: list[float]) -> str:
    """The verdict of the look the comparison stopped at, in the design's words."""
    diff, at = look.difference, f"look {look.number} of {len(design.looks)}, {look.seeds} seeds a side"
    if look.decided:
        return f"{verdict(diff, a, b, look.level).removesuffix(')')} < {look.level:.4f}, the level of {at})"
    if look.stop == "futile":
        low, high = look.futile_interval
        return (f"no difference of {design.smallest_difference:g} points or more is likely: the "
                f"{design.futility_confidence:.0%} interval of B − A is {points(low)} to {points(high)} ({at}; "
                f"{p_text(diff.p)})")
    return f"{verdict(diff, a, b, look.level)} at the last look ({at}; its level {look.level:.4f})"


def differences_table(sides: list[Side], seeds: list[int]) -> str:
    """What differs between A and B, side by side: the model, its recipe, its code, each recipe field that differs;
    then what each side's seeds cost to train."""
    a, b = (side.configs[seeds[0]] for side in sides)
    rows = [["model and recipe", sides[0].name, sides[1].name],
            ["code hash", *(models.entry(side.model).code_hash for side in sides)]]
    values = [asdict(config.recipe) for config in (a, b)]
    rows += [[name, format_value(values[0].get(name, "-")), format_value(values[1].get(name, "-"))]
             for name in dict.fromkeys([*values[0], *values[1]]) if values[0].get(name) != values[1].get(name)]
    for label, total in (("training time, all seeds", sum), ("training time, a seed (mean)", statistics.mean)):
        rows.append([label, *(format_duration(total([side.records[seed].total_seconds for seed in seeds]))
                              for side in sides)])
    return markdown_table(["", "A", "B"], rows)


def summarize(sides: list[Side], target: Target | None, seeds: list[int], said: str, design: str,
              diff: Difference) -> Comparison:
    """Each side's seeds, B - A (`diff`) and the verdict `said` under `design`, as printed lines and as the Markdown
    file."""
    words, score = statistic(target)
    scores = [scores_of(side, seeds, target) for side in sides]
    split = "validation" if sides[0].configs[seeds[0]].validation else "test"
    rows, lines = [], []
    for side, values in zip(sides, scores):
        met = [side.records[seed].target_met() for seed in seeds]
        rate = str(wilson_interval(sum(bool(m) for m in met), len(met))) if target else "-"
        worst = min(seeds, key=lambda seed: score(side.records[seed].eval_accuracies))
        used = [side.matched_by[seed] for seed in seeds]  # a side may hold records of more seeds than the look uses
        reused, old = sum(how != "trained" for how in used), sum(how == "network" for how in used)
        origin = f"{reused} reused" + (f" ({old} from before source hashes, matched by network)" if old else "") + \
                 f", {len(seeds) - reused} trained"
        mean_sd = f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"
        rows.append([side.letter, side.name, str(len(seeds)), rate, mean_sd,
                     f"{min(values):.2f} (seed {worst})", origin])
        lines.append(f"  {side.letter}: {side.name}: target met {rate}; {words} {mean_sd}; worst {min(values):.2f} "
                     f"(seed {worst}); {origin}")
    a, b = scores
    ahead = [seed for seed, x, y in zip(seeds, a, b) if y > x]
    behind = [seed for seed, x, y in zip(seeds, a, b) if y < x]
    lines += [f"  B − A: {points(diff.mean)} points (95% interval {points(diff.low)} to {points(diff.high)}, "
              f"Welch's t); {diff.test}: {p_text(diff.p)}",
              f"  B ahead on {len(ahead)} of {len(seeds)} seeds ({', '.join(map(str, ahead)) or 'none'}), behind on "
              f"{len(behind)} ({', '.join(map(str, behind)) or 'none'})",
              f"Verdict: {said}."]
    header = ["side", "model and recipe", "seeds", "target met (95% interval)", f"{words} (mean ± sd)", "worst seed",
              "records"]
    table = "\n".join([
        f"# {sides[1].name} against {sides[0].name}", "",
        f"{split.capitalize()} split, seeds {', '.join(map(str, seeds))}; each seed scores {words}"
        + (f" (target {target})" if target else "") + ".", "",
        f"Design: {design}.", "",
        markdown_table(header, rows), "",
        "What differs, and what each side cost:", "",
        differences_table(sides, seeds), "",
        f"B − A: {points(diff.mean)} points, 95% interval {points(diff.low)} to {points(diff.high)} (Welch's t); "
        f"{diff.test}: {p_text(diff.p)}. B ahead on seeds {', '.join(map(str, ahead)) or 'none'}.", "",
        f"**Verdict:** {said}.", "",
        "Records used:", "",
        *[f"- {side.letter} seed {seed}: {side.records[seed].run_id} ({side.matched_by[seed]})"
          for side in sides for seed in seeds], ""])
    return Comparison(lines, table)


def train_missing(sides: list[Side], seeds: list[int], jobs: int) -> int:
    """Train the seeds the sides lack among `seeds`; 0, or the runs' exit status where one did not complete."""
    from run_experiments import exit_code

    missing = [side.configs[seed] for side in sides for seed in seeds if seed not in side.records]
    if not missing:
        return 0
    trained = run_experiments(missing, jobs=jobs)
    for record, side in ((record, side) for record in trained for side in sides):
        if (side.model == record.model and record.seed not in side.records
                and is_seed_of(record, side.configs[record.seed])):
            side.records[record.seed], side.matched_by[record.seed] = record, "trained"
    if any(seed not in side.records for side in sides for seed in seeds):
        print("Not every seed completed: no verdict.", flush=True)
        return exit_code(trained) or 1
    return 0


def compare(sides: list[Side], jobs: int, record_folders: list[Path], design: SequentialDesign | None) -> int:
    """Train what the sides lack, look by look where `design` is given (else every seed at once), then print the
    comparison and write it to <out>/compare-<time>.md; main.py's exit status (the runs' if any did not complete)."""
    seeds = list(sides[0].configs)
    out = Path(sides[0].configs[seeds[0]].out)
    target = models.get_target(sides[0].model)
    reuse(sides, records_in([out, *record_folders]))
    have = [sum(seed in side.records for seed in seeds) for side in sides]
    todo = 2 * len(seeds) - sum(have)
    split = "validation split" if sides[0].configs[seeds[0]].validation else "test set"
    print(f"Compare: A = {sides[0].name}, B = {sides[1].name}; {'up to ' if design else ''}{len(seeds)} seeds a side "
          f"on the {split}: "
          + ", ".join(f"{side.letter} has {count}" for side, count in zip(sides, have))
          + (" already: nothing to train." if not todo else " already; each look trains only the seeds it lacks."
             if design else f" already, {todo} runs to train."))
    print("\n".join(plan_lines(sides)))
    design_text = design.describe() if design else f"fixed: {len(seeds)} seeds a side, p below {SIGNIFICANCE:g}"
    print(f"Design: {design_text}.", flush=True)
    for size in design.looks if design else (len(seeds),):
        status = train_missing(sides, seeds[:size], jobs)
        if status:
            return status
        if design is None:
            a, b = (scores_of(side, seeds, target) for side in sides)
            diff = difference(a, b)
            said = verdict(diff, a, b)
            break
        a, b = (scores_of(side, seeds[:size], target) for side in sides)
        look = design.decide(a, b)
        print(f"Look {look.number} of {len(design.looks)} ({size} seeds a side): B − A "
              f"{points(look.difference.mean)}, {p_text(look.difference.p)} against {look.level:.4f}"
              + {"decided": ": decided.", "futile": ": futile, stop.", "last": ": the last look.", "": ": go on."}
              [look.stop], flush=True)
        if look.stop:
            diff, said = look.difference, sequential_verdict(look, design, a, b)
            if look.number < len(design.looks):
                print(f"Stopped at look {look.number} of {len(design.looks)}: {2 * (len(seeds) - size)} of the "
                      f"design's {2 * len(seeds)} runs not needed.")
            break
    comparison = summarize(sides, target, seeds[:size], said, design_text, diff)
    print("\n".join(comparison.lines))
    path = out / f"compare-{datetime.now().strftime('%Y%m%d-%H%M%S')}.md"
    atomic_write_bytes(path, comparison.table.encode())
    print(f"Table written to {path}")
    return 0
