"""One thread per process that handles, as one batch, the work items waiting at each moment.

Shared by the registry read fast path (:mod:`dgov.registry.fastread`: one SELECT per batch of
reads) and the exchange log (:mod:`dgov.exchange.log`: one transaction per batch of entries —
group commit). Requests hand their item to the thread and sleep until its batch is done.
"""

from __future__ import annotations

import logging
import os
import queue
import threading

from django.db import DEFAULT_DB_ALIAS, connections

logger = logging.getLogger(__name__)

TIMED_OUT = object()
"""The result :meth:`BatchThread.submit` gives with ``ok`` False when the wait ran out (the batch may still run)."""


class _Slot:
    """One waiting item, its result, and the lock its request sleeps on until the batch is done.

    A plain lock, taken when the slot is made and released by the batch thread, is the cheapest
    one-shot wake-up there is (an ``Event`` is a condition variable and a lock).
    """

    __slots__ = ("item", "ok", "result", "_done")

    def __init__(self, item):
        self.item = item
        self.ok = False
        self.result = None
        self._done = threading.Lock()
        self._done.acquire()

    def wait(self, timeout: float) -> bool:
        """Sleep until :meth:`finish` (True) or until ``timeout`` seconds passed (False)."""
        return self._done.acquire(timeout=timeout)

    def finish(self, ok: bool, result) -> None:
        """Store the outcome and wake the request."""
        self.ok, self.result = ok, result
        self._done.release()


class BatchThread:
    """One thread per process that handles the items waiting at each moment together, for the requests that wait.

    A request calls :meth:`submit` and sleeps; the thread takes the first waiting item and every
    other one waiting at that moment (up to ``max_batch``), hands them to :meth:`handle` as one
    batch — one database statement — and wakes each request with its own result. When traffic is
    light a batch holds one item and nothing waits longer than one statement; under load a batch
    holds what arrived during the previous one. The thread keeps its own database connection and
    closes it after ``idle_close`` seconds without work.
    """

    name = "dgov-batch"

    def __init__(self, *, max_batch: int = 500, idle_close: float = 2.0):
        self.max_batch = max_batch
        self.idle_close = idle_close
        self._queue: queue.SimpleQueue[_Slot | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self.batches = 0
        self.items = 0

    def handle(self, items: list) -> list:
        """Handle one batch; return one result per item (raise to fail them all)."""
        raise NotImplementedError

    def submit(self, item, *, timeout: float = 10.0) -> tuple[bool, object]:
        """Hand ``item`` to the thread and wait: (True, its result), (False, None) if its batch failed,
        or (False, :data:`TIMED_OUT`) if it was not done within ``timeout`` seconds."""
        self._ensure_thread()
        slot = _Slot(item)
        self._queue.put(slot)
        if not slot.wait(timeout):
            return False, TIMED_OUT
        return slot.ok, slot.result

    def shutdown(self, timeout: float = 5.0) -> None:
        """Handle what is waiting, stop the thread and close its database connection (tests, process exit)."""
        with self._lock:
            thread = self._thread
            if thread is None or not thread.is_alive() or self._pid != os.getpid():
                self._thread = None
                return
            self._queue.put(None)
            self._thread = None
        thread.join(timeout)

    def _ensure_thread(self) -> None:
        """Start the thread in this process (again after a fork: threads do not survive one)."""
        thread = self._thread
        if thread is not None and self._pid == os.getpid() and thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
                return
            if self._pid != os.getpid():
                self._queue = queue.SimpleQueue()
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        """The loop: wait for an item, take all that wait, handle them, wake their requests."""
        try:
            while True:
                try:
                    first = self._queue.get(timeout=self.idle_close)
                except queue.Empty:
                    connections[DEFAULT_DB_ALIAS].close()  # idle: do not hold a database connection for nothing
                    continue
                if first is None:
                    break
                batch = [first]
                stop = False
                while len(batch) < self.max_batch:
                    try:
                        slot = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if slot is None:
                        stop = True
                        break
                    batch.append(slot)
                self._handle(batch)
                if stop:
                    break
        finally:
            connections[DEFAULT_DB_ALIAS].close()

    def _handle(self, batch: list[_Slot]) -> None:
        """Run one batch; mark every slot with the outcome and its result and wake its request."""
        ok, results = False, [None] * len(batch)
        try:
            results = self.handle([slot.item for slot in batch])
            ok = True
            self.batches += 1
            self.items += len(batch)
        except Exception:  # noqa: BLE001 - reported to every waiting request, which then passes to Django
            logger.exception("%s: batch of %d failed", self.name, len(batch))
            connections[DEFAULT_DB_ALIAS].close()
        for slot, result in zip(batch, results, strict=True):
            slot.finish(ok, result)
