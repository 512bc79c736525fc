"""Contenders that take turns, one training batch each, so they train under the same load.

On this shared 2-core machine the CPU time of an epoch moves by +-30% from one second to the
next (other processes share the cores' caches and hyperthreads), so contenders timed one after
another differ by more than the few percent bench/overhead.py looks for. Here each contender
trains in its own thread and they run strictly one at a time, handing over at every training
batch: in each cycle every contender trains one step, in a fresh random order (a fixed order
lets the scheduler's ~4 ms time slices line up with one contender's turn). So every contender's
epochs sample the same seconds of machine load. Time is each thread's own CPU time (charging
each contender the process CPU time of its turns was noisier: the threads overlap for a moment
at every hand-over), so a contender's background threads, TensorBoard's writer, are not
counted; bench/overhead.py measures their share when contenders run one after another.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

from torch.utils.data import DataLoader, default_collate


class Turns:
    """Whose turn it is; a cycle gives every live contender one turn, in a random order."""

    def __init__(self, names: list[str], seed: int = 0):
        self.live, self.random = list(names), random.Random(seed)
        self.cycle: list[str] = []
        self.current: str | None = None
        self.condition = threading.Condition()

    def _advance(self) -> None:
        if not self.cycle:
            self.cycle = self.random.sample(self.live, len(self.live))
        self.current = self.cycle.pop()
        self.condition.notify_all()

    def wait(self, name: str) -> None:
        with self.condition:
            self.condition.wait_for(lambda: self.current == name)

    def hand_over(self, name: str) -> None:
        """`name` has trained one step: the next contender runs, `name` waits for its turn."""
        with self.condition:
            self._advance()
            self.condition.wait_for(lambda: self.current == name)

    def leave(self, name: str) -> None:
        with self.condition:
            self.live.remove(name)
            self.cycle = [n for n in self.cycle if n != name]
            if self.live:
                self._advance()

    def start(self) -> None:
        with self.condition:
            self._advance()


class HandOver:
    """A collate function that hands the turn over before each training batch: the DataLoader
    calls it once per batch in the training thread. Sample replays
    (train/position.py) iterate the sampler, not the collate function, so they take no turn."""

    def __init__(self, turns: Turns, name: str, collate: Callable[[Any], Any] = default_collate):
        self.turns, self.name, self.collate = turns, name, collate

    def __call__(self, samples: Any) -> Any:
        self.turns.hand_over(self.name)
        return self.collate(samples)


def run_in_turns(jobs: dict[str, Callable[[Callable[[Any], Any]], None]], seed: int) -> None:
    """Run every job (given its collate function) in its own thread, taking turns."""
    turns = Turns(list(jobs), seed)
    errors: list[BaseException] = []

    def work(name: str) -> None:
        turns.wait(name)
        try:
            jobs[name](HandOver(turns, name))
        except BaseException as exc:  # re-raised in the caller: a bench error must not hang
            errors.append(exc)
        finally:
            turns.leave(name)

    threads = [threading.Thread(target=work, args=(name,)) for name in jobs]
    for thread in threads:
        thread.start()
    turns.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def loader_like(loader: DataLoader, collate: Callable[[Any], Any]) -> DataLoader:
    """The same data in the same order (a generator seeded like the original's), batches
    collated by `collate`."""
    import torch

    generator = torch.Generator().manual_seed(loader.generator.initial_seed()) \
        if loader.generator is not None else None
    return DataLoader(loader.dataset, loader.batch_size, shuffle=generator is not None,
                      generator=generator, collate_fn=collate)
