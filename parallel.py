"""`--jobs N`: run tasks N at a time in worker processes that share the CPU cores between them."""
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Callable

import torch


@dataclass
class Worker:
    """What a task learns about the worker process it runs in."""
    slot: int  # 0..jobs-1: where its progress bar goes
    jobs: int
    unfinished: Any  # multiprocessing.Value: tasks of this invocation not yet finished

    def thread_share(self) -> int:
        """The cores split between the tasks still going: when fewer tasks than workers remain, they get more."""
        return max(1, (os.cpu_count() or 1) // max(1, min(self.jobs, self.unfinished.value)))


_worker: Worker | None = None


def _init_worker(slots, unfinished, jobs: int) -> None:
    global _worker
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with slots.get_lock():
        _worker = Worker(slots.value, jobs, unfinished)
        slots.value += 1
    torch.set_num_threads(_worker.thread_share())


def _run_task(task: Callable[[Any, Worker], Any], item: Any) -> Any:
    try:
        return task(item, _worker)
    except KeyboardInterrupt:  # arrived before the task could end on its own terms
        return None
    finally:
        with _worker.unfinished.get_lock():
            _worker.unfinished.value -= 1


def run_in_workers(task: Callable[[Any, Worker], Any], items: list, jobs: int,
                   on_result: Callable[[Any], None]) -> None:
    """Call `task(item, worker)` for every item, `jobs` at a time, and `on_result` with each non-None result.

    `task` must be a module-level function (it is pickled into spawned workers). Ctrl-C stops them all.
    """
    context = multiprocessing.get_context("spawn")
    slots, unfinished = context.Value("i", 0), context.Value("i", len(items))
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_init_worker,
                             initargs=(slots, unfinished, jobs)) as pool:
        futures = [pool.submit(_run_task, task, item) for item in items]
        try:
            for future in as_completed(futures):
                result = future.result()
                if result is not None:
                    on_result(result)
        except KeyboardInterrupt:
            print("\nInterrupted: stopping the workers.", file=sys.stderr)
            for future in futures:
                future.cancel()
