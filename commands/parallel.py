"""`--jobs N`: run tasks N at a time in worker processes that share the CPU cores between them."""
import multiprocessing
import os
import signal
import sys
import threading
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
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
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_stop_arrived = False  # in a worker: a stop signal came while no task was running


def _note_stop(*_) -> None:
    global _stop_arrived
    _stop_arrived = True


def _interrupt_task(number: int, frame) -> None:
    """A stop during a task ends it (KeyboardInterrupt, which the task answers with what it has) and every task
    queued behind it in this worker: those the pool had already handed over cannot be cancelled."""
    _note_stop()
    signal.default_int_handler(number, frame)


def _mask_stop_signals(how: int) -> None:
    """Block or unblock SIGINT and SIGTERM in this thread; a blocked signal waits, it is not lost. Where there are
    no signal masks (Windows), nothing."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(how, STOP_SIGNALS)


def _init_worker(slots, unfinished, jobs: int) -> None:
    global _worker
    # A worker starts with the stop signals blocked (run_in_workers spawns it so): one that came while it was still
    # importing is noted here, not fatal, so the pool never breaks under the tasks it has queued.
    _note_stop_signals()
    _mask_stop_signals(signal.SIG_UNBLOCK)
    with slots.get_lock():
        _worker = Worker(slots.value, jobs, unfinished)
        slots.value += 1
    torch.set_num_threads(_worker.thread_share())


def _run_task(task: Callable[[Any, Worker], Any], item: Any) -> Any:
    try:
        if _stop_arrived:  # a stop that came between tasks: the parent hears it as the task's outcome, and stops all
            raise KeyboardInterrupt
        for number in STOP_SIGNALS:  # only a running task is interrupted: it stops and returns what it has
            signal.signal(number, _interrupt_task)
        try:
            return task(item, _worker)
        except KeyboardInterrupt:  # arrived before the task could end on its own terms
            return None
    finally:
        _note_stop_signals()
        with _worker.unfinished.get_lock():
            _worker.unfinished.value -= 1


def _note_stop_signals() -> None:
    """Between tasks a stop signal is only noted: the next task does not start."""
    for number in STOP_SIGNALS:
        signal.signal(number, _note_stop)


def run_in_workers(task: Callable[[Any, Worker], Any], items: list, jobs: int,
                   on_result: Callable[[Any], None]) -> None:
    """Call `task(item, worker)` for every item, `jobs` at a time, and `on_result` with each non-None result.

    `task` must be a module-level function (it is pickled into spawned workers). Ctrl-C or SIGTERM stops them
    all: the tasks not started are cancelled, the running ones are told to stop (and return what they have),
    and KeyboardInterrupt is raised once they have.
    """
    context = multiprocessing.get_context("spawn")
    slots, unfinished = context.Value("i", 0), context.Value("i", len(items))
    # While waiting, a signal only sets a flag: an exception raised inside the pool's locks breaks them.
    stop = threading.Event()
    previous = {number: signal.signal(number, lambda *_: stop.set()) for number in STOP_SIGNALS}
    try:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_init_worker,
                                 initargs=(slots, unfinished, jobs)) as pool:
            # The workers (spawned by submit) and the pool's thread inherit the blocked signals; here they wait
            # until the submits are done.
            _mask_stop_signals(signal.SIG_BLOCK)
            try:
                pending = {pool.submit(_run_task, task, item) for item in items}
            finally:
                _mask_stop_signals(signal.SIG_UNBLOCK)
            stopping = False
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for future in done:
                    try:
                        result = None if future.cancelled() else future.result()
                    except KeyboardInterrupt:  # a stop reached a worker between tasks
                        stop.set()
                        continue
                    except BrokenProcessPool:  # a worker stopped between tasks: what it ran has returned
                        if not stopping:
                            raise
                        continue
                    if result is not None:
                        on_result(result)
                if stop.is_set() and not stopping:
                    stopping = True
                    print("\nInterrupted: stopping the workers.", file=sys.stderr, flush=True)
                    for future in pending:
                        future.cancel()
                    for child in multiprocessing.active_children():  # a `kill` reaches this process alone
                        os.kill(child.pid, signal.SIGTERM)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if stop.is_set():
        raise KeyboardInterrupt
