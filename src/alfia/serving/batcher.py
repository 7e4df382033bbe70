"""Micro-batching: concurrent requests share forward passes.

Each request's texts wait in one queue. A single worker takes what is queued, waits at most ``max_wait_s``
for more (up to ``max_batch`` texts), and scores them all in one call on the model thread; each request then
gets its own slice back, in its own order. While a batch runs, the next one gathers, so under load batches
grow by themselves and an idle service answers a lone request after at most ``max_wait_s``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


class Overloaded(Exception):
    """More texts wait than the queue holds: the client should retry later (HTTP 503)."""


class ShuttingDown(Exception):
    """The service is stopping and takes no new work (HTTP 503)."""


@dataclass
class _Job:
    texts: Sequence[str]
    future: asyncio.Future


class MicroBatcher:
    """``await submit(texts)`` -> what ``score(all texts of the batch)`` returned, sliced to these texts.

    ``score`` maps a list of texts to a tuple of arrays, one entry per text (probabilities, decisions); it
    runs on one dedicated thread, so the model is never called concurrently.
    """

    def __init__(self, score: Callable[[list[str]], tuple[np.ndarray, ...]], *, max_wait_s: float = 0.005,
                 max_batch: int = 64, max_queue: int = 4096) -> None:
        self.score = score
        self.max_wait_s = max(0.0, float(max_wait_s))
        self.max_batch = max(1, int(max_batch))
        self.max_queue = max(1, int(max_queue))
        self.pending = 0  # texts submitted and not yet answered
        self.batches = 0  # forward calls made
        self.texts = 0  # texts scored
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._closing = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._closing = False
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="alfia-model")
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="alfia-micro-batcher")

    async def stop(self) -> None:
        """Take no new work, finish what is queued, then stop the model thread."""
        if self._task is None:
            return
        self._closing = True
        self._queue.put_nowait(None)  # after every queued job: they are answered first
        try:
            await self._task
        finally:
            self._task = None
            self._executor.shutdown(wait=True)

    async def submit(self, texts: Sequence[str]) -> tuple[np.ndarray, ...]:
        if self._closing or not self.running:
            raise ShuttingDown("the service is shutting down")
        if self.pending + len(texts) > self.max_queue:
            raise Overloaded(f"{self.pending} texts are waiting (the queue holds {self.max_queue})")
        job = _Job(list(texts), asyncio.get_running_loop().create_future())
        self.pending += len(job.texts)
        self._queue.put_nowait(job)
        try:
            return await job.future
        finally:
            self.pending -= len(job.texts)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        carry: _Job | None = None
        stopping = False
        while not stopping:
            first = carry if carry is not None else await self._queue.get()
            carry = None
            if first is None:
                break
            jobs, n = [first], len(first.texts)
            deadline = loop.time() + self.max_wait_s
            while n < self.max_batch:
                try:
                    job = self._queue.get_nowait()  # what queued while the last batch ran joins at once
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        job = await asyncio.wait_for(self._queue.get(), remaining)
                    except asyncio.TimeoutError:
                        break
                if job is None:
                    stopping = True
                    break
                if n + len(job.texts) > self.max_batch:
                    carry = job  # it starts the next batch
                    break
                jobs.append(job)
                n += len(job.texts)
            await self._run(jobs)
            if stopping and carry is not None:
                await self._run([carry])
                carry = None

    async def _run(self, jobs: list[_Job]) -> None:
        jobs = [job for job in jobs if not job.future.done()]  # a client that went away is not scored
        if not jobs:
            return
        texts = [text for job in jobs for text in job.texts]
        try:
            results = await asyncio.get_running_loop().run_in_executor(self._executor, self.score, texts)
        except Exception as e:  # every request of the batch gets the failure; the service stays up
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(e)
            return
        self.batches += 1
        self.texts += len(texts)
        start = 0
        for job in jobs:
            end = start + len(job.texts)
            if not job.future.done():
                job.future.set_result(tuple(np.asarray(r)[start:end] for r in results))
            start = end
