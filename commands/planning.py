"""Many runs: the plan (each run's time estimated on this machine, the quickest first where asked) and the driver that
runs them one after another or `--jobs` at a time in worker processes; the teachers they lack are trained first.

    from commands.planning import run_experiments
    records = run_experiments([config_for("model3", seed) for seed in (1, 2, 3)], jobs=2)
"""
import sys
from dataclasses import replace
from typing import Callable

import torch

import models
from experiment.configs import teacher_config
from commands.parallel import Worker, run_in_workers
from core.records import RunRecord, format_duration, plural
from run_experiments import (build_model, finished_teacher, graphed_step, new_teacher, run_experiment, timed_estimate,
                             training_method, training_step)
from core.settings import ExperimentConfig
from training.precision import Precision
from utils import parameter_count


def estimate_seconds(config: ExperimentConfig) -> float:
    """The run's time from a fresh model with the run's own method and step (timed_estimate), for a plan made before
    any run starts; every random generator is left as it was."""
    device = torch.device(config.execution.device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        probe = build_model(config)
        method = training_method(config, probe, config.execution.train_batches)
        precision = Precision(config.execution.precision, device)
        teacher = (new_teacher(config, models.get_model(teacher_config(config).model).to(device).eval())
                   if config.recipe.teacher else None)  # its weights do not change its time
        step = training_step(probe, config, method, precision, teacher)
        if config.execution.graphed:
            step, _ = graphed_step(step, method, config, lambda line: None)
        return timed_estimate(config, step, probe, method, precision)


def warn_over_budget(configs: list[ExperimentConfig]) -> None:
    """One line on stderr for each model and epochs that are over its target's budget: exploring over it is allowed,
    so the runs go on, but none of them can meet the target."""
    for model, epochs in dict.fromkeys((config.model, config.recipe.epochs) for config in configs):
        target = models.get_target(model)
        breach = target and target.over_budget(parameter_count(models.get_model(model)), epochs)
        if breach:
            print(f"main.py: warning: {model} is over its target's budget ({breach}): its runs go on, and none "
                  "can meet the target", file=sys.stderr, flush=True)


def plan(configs: list[ExperimentConfig], jobs: int,
         cheapest_first: bool = False) -> tuple[list[ExperimentConfig], list[float]]:
    """Estimate every run (once per distinct config: seeds time alike), print the plan, and return the runs in the
    order they will go, with their estimates: as given, or the quickest first."""
    by_setup: dict[ExperimentConfig, float] = {}
    for config in configs:
        setup = replace(config, seed=1)
        if setup not in by_setup:
            by_setup[setup] = estimate_seconds(config)
    planned = [(config, by_setup[replace(config, seed=1)]) for config in configs]
    if cheapest_first:
        planned.sort(key=lambda item: item[1])
    print(f"Plan: {len(configs)} runs" + (f", {jobs} at a time" if jobs > 1 else "")
          + (", quickest first" if cheapest_first else "") + ", estimated from a few timed batches each on this machine:")
    taught = 0.0
    for number, (config, seconds) in enumerate(planned, start=1):
        teacher = finished_teacher(config) if config.recipe.teacher else None
        taught += teacher[1].total_seconds if teacher else 0.0
        print(f"  {number}. {config.model} seed {config.seed}, {plural(config.recipe.epochs, 'epoch')}: "
              f"{format_duration(seconds)}" + (f", and its teacher's {format_duration(teacher[1].total_seconds)} "
                                               f"({teacher[0]})" if teacher else ""))
    total = sum(seconds for _, seconds in planned)
    side_by_side = (f" {jobs} at a time share the device: on a CPU, whose cores one run already uses, that saves "
                    "little; on a GPU, see benchmarks/README.md." if jobs > 1 else "")
    teachers = f" (and {format_duration(taught)} of their teachers', trained before)" if taught else ""
    print(f"  total: {format_duration(total)} of training{teachers}, one run after another.{side_by_side} Fewer: "
          "--models NAME, --seeds N, --epochs N; Ctrl-C stops cleanly and keeps every record.", flush=True)
    return [config for config, _ in planned], [seconds for _, seconds in planned]


def teachers_to_train(configs: list[ExperimentConfig]) -> list[ExperimentConfig]:
    """The teachers' runs (configs.teacher_config) that no finished run stands for yet, each once."""
    missing = [teacher_config(config) for config in configs if config.recipe.teacher and not finished_teacher(config)]
    return list(dict.fromkeys(missing))


def _run_in_worker(item: tuple[ExperimentConfig, float], worker: Worker) -> RunRecord:
    config, estimate = item
    return run_experiment(config, position=worker.slot, quiet=True, thread_share=worker.thread_share,
                          estimate=estimate)


def run_experiments(configs: list[ExperimentConfig], jobs: int = 1, cheapest_first: bool = False,
                    on_result: Callable[[RunRecord], None] = lambda record: None) -> list[RunRecord]:
    """Run every config, `jobs` at a time in worker processes; with more than one, print the plan first (and,
    with `cheapest_first`, run them in the order of its estimates).

    Ctrl-C stops them all; the records of what finished are returned in the order they ran.
    """
    records: list[RunRecord] = []

    def finished(record: RunRecord) -> None:
        records.append(record)
        on_result(record)

    warn_over_budget(configs)
    try:
        teachers = teachers_to_train(configs)
        if teachers:
            print(f"Teachers first: {plural(len(teachers), 'run')} of a teacher these runs lack, each a run of its "
                  "own with its own record.", flush=True)
            for record in run_experiments(teachers, jobs):
                finished(record)
            if any(record.status == "interrupted" for record in records):
                return records
        configs, estimates = plan(configs, jobs, cheapest_first) if len(configs) > 1 else (configs, [None])
        if jobs > 1 and len(configs) > 1:
            run_in_workers(_run_in_worker, list(zip(configs, estimates)), jobs, finished)
        else:
            for config, estimate in zip(configs, estimates):
                finished(run_experiment(config, estimate=estimate))
                if records[-1].status == "interrupted":
                    break
    except KeyboardInterrupt:
        print("\nInterrupted: stopping.", file=sys.stderr)
    order = {(c.model, c.seed): i for i, c in enumerate(configs)}
    return sorted(records, key=lambda r: order.get((r.model, r.seed), len(order)))
