"""A first-come, first-served limit on how many queries a process works on at once.

Retrieval and answer composition are Python: in one process they take turns on one
interpreter lock, so running 32 of them side by side makes none faster and every one slower,
and which finishes first is left to the thread scheduler, so under load some wait many times
longer than others. Through the gate they run one (or `limit`) at a time in the order they
arrived; the question's embedding is computed before it, so the model still batches every
question that is waiting.
"""

import threading
from collections import deque


class FifoGate:
    """At most `limit` threads inside at once (None: no limit); the others enter in the order
    they arrived.

    A semaphore lets a newly arrived thread take a free slot before one that has been waiting
    (CPython wakes a waiter, but whoever runs first wins); under load that reorders requests
    and stretches the tail. Here a leaving thread hands its slot straight to the longest waiter.
    Not re-entrant: code inside must not pass the same gate again.
    """

    def __init__(self, limit: int | None) -> None:
        if limit is not None and limit < 1:
            raise ValueError("a gate needs at least one slot")
        self._unlimited = limit is None
        self._free = limit or 0
        self._waiting: deque[threading.Event] = deque()
        self._lock = threading.Lock()

    @property
    def waiting(self) -> int:
        """Threads waiting for their turn."""
        return len(self._waiting)

    def __enter__(self) -> None:
        if self._unlimited:
            return
        with self._lock:
            if self._free and not self._waiting:
                self._free -= 1
                return
            turn = threading.Event()
            self._waiting.append(turn)
        turn.wait()  # the slot was handed over: `_free` already counts it as taken

    def __exit__(self, *exc: object) -> None:
        if self._unlimited:
            return
        with self._lock:
            if self._waiting:
                self._waiting.popleft().set()
            else:
                self._free += 1
