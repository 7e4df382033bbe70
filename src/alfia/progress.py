"""What a long step shows while it runs, the same way in every command.

In a terminal a step is a rich progress bar (spinner, count, elapsed and remaining time) that disappears when
the step ends; in a log (``nohup``, a batch job, ``2> log``) a live bar shows nothing, so the step prints plain
lines instead: one when it starts, one every ``LOG_EVERY_S`` seconds with the count and the time left, one when
it ends. Every step that can take longer than ~10 s goes through :func:`step` or :func:`track`::

    with step("caching encoder states", total=len(rows), unit="rows", console=console) as s:
        for batch in batches:
            ...
            s.advance(len(batch))

Consoles come from :func:`make_console`: outside a terminal it writes whole lines (rich would cut tables
and wrap messages at 80 columns), and it never turns ``:x:`` in a path into an emoji. A console made with
``quiet=True`` shows nothing, bars included.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterable, Iterator
from typing import IO, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn,
    TimeRemainingColumn,
)

LOG_EVERY_S = 30.0  # a plain progress line this often when the output is not a terminal
LOG_WIDTH = 1000  # columns of a console that is not a terminal: whole table rows and messages, never cut

T = TypeVar("T")


def make_console(*, stderr: bool = False, file: IO[str] | None = None, quiet: bool = False,
                 soft_wrap: bool = False) -> Console:
    """The toolkit's console: rich in a terminal, whole lines in a file or a pipe."""
    probe = Console(stderr=stderr, file=file)
    width = None if probe.is_terminal else LOG_WIDTH
    return Console(emoji=False, stderr=stderr, file=file, quiet=quiet, width=width, soft_wrap=soft_wrap)


def section(console: Console, title: str) -> None:
    """A heading between the parts of a long command: a rule in a terminal, one line in a log."""
    if console.is_terminal:
        console.rule(title)
    else:
        console.print(f"== {title} ==")


def quiet_library_bars(console: Console | None = None) -> None:
    """Hugging Face's own bars ("Loading weights ...") are noise in a log: switch them off there."""
    console = console or Console(stderr=True)
    if console.is_terminal:
        return
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # transformers is a dependency; this only guards a broken install
        return
    hf_logging.disable_progress_bar()  # also huggingface_hub's


def duration(seconds: float) -> str:
    """``1:05`` (m:ss) or ``2:03:10`` (h:mm:ss); ``?`` when not known."""
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


# A terminal holds one live display at a time: a step inside another adds its row to the bar already shown.
_live: Progress | None = None


class Step:
    """A running step: ``advance(n)``, ``update(...)``, ``print(message)``. See :func:`step`."""

    def __init__(self, description: str, total: int | None, console: Console, unit: str, log_every_s: float,
                 announce: bool = True):
        self.description, self.total, self.console, self.unit = description, total, console, unit
        self.log_every_s = float(log_every_s)
        self.completed = 0
        self.started = self._last_log = time.monotonic()
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._owns_live = False
        self.quiet_end = False  # True: no "done" line (the caller prints its own summary)
        self.announce = announce  # False: no start line in a log (the caller said what starts)

    # -- lifecycle --------------------------------------------------------------------------------
    def _start(self) -> None:
        global _live
        if self.console.quiet:
            return
        if self.console.is_terminal:
            if _live is None:
                _live = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                                 console=self.console, transient=True)
                _live.start()
                self._owns_live = True
            self._progress = _live
            self._task = _live.add_task(self.description, total=self.total)
        elif self.announce:
            self.console.print(f"{self.description} ..." if self.total is None else
                               f"{self.description}: {self.total:,} {self.unit}".rstrip(), highlight=False)

    def _finish(self, failed: bool) -> None:
        global _live
        if self._progress is not None:
            self._progress.remove_task(self._task)
            if self._owns_live:
                self._progress.stop()
                _live = None
            self._progress = None
        if not failed and not self.quiet_end and not self.console.quiet:
            count = f"{self.completed:,} {self.unit} " if self.unit and self.completed else ""
            self.console.print(f"{self.description}: done, {count}in {duration(self.elapsed)}", highlight=False)

    # -- what a step's code calls -----------------------------------------------------------------
    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def advance(self, n: int = 1) -> None:
        self.update(completed=self.completed + n)

    def update(self, *, completed: int | None = None, total: int | None = None,
               description: str | None = None) -> None:
        if completed is not None:
            self.completed = int(completed)
        if total is not None:
            self.total = int(total) or None
        if description is not None:
            self.description = description
        if self._progress is not None:
            self._progress.update(self._task, completed=self.completed, total=self.total,
                                  description=self.description)
        elif not self.console.quiet:
            self._log_line()

    def print(self, message: str) -> None:
        """A line above the bar (in a log: a line between the progress lines)."""
        self.console.print(message, highlight=False)

    def _log_line(self) -> None:
        now = time.monotonic()
        if now - self._last_log < self.log_every_s:
            return
        self._last_log = now
        if self.total:
            left = self.elapsed / self.completed * (self.total - self.completed) if self.completed else math.inf
            self.console.print(f"{self.description}: {self.completed:,}/{self.total:,} {self.unit} "
                               f"({self.completed / self.total:.0%}), {duration(self.elapsed)} elapsed, "
                               f"~{duration(left)} left", highlight=False)
        else:
            self.console.print(f"{self.description}: {self.completed:,} {self.unit}, {duration(self.elapsed)} "
                               "elapsed", highlight=False)


@contextlib.contextmanager
def step(description: str, total: int | None = None, *, console: Console | None = None, unit: str = "",
         log_every_s: float = LOG_EVERY_S, announce: bool = True) -> Iterator[Step]:
    """Show one long step while the block runs (see the module's docstring). ``total`` None: a count with
    no end known (a spinner in a terminal). The bar goes away when the block ends or fails."""
    running = Step(description, total, console or make_console(stderr=True), unit, log_every_s, announce)
    running._start()
    failed = True
    try:
        yield running
        failed = False
    finally:
        running._finish(failed)


def track(items: Iterable[T], description: str, *, total: int | None = None, console: Console | None = None,
          unit: str = "", log_every_s: float = LOG_EVERY_S) -> Iterator[T]:
    """Iterate ``items`` inside a :func:`step`, one ``advance`` per item."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with step(description, total, console=console, unit=unit, log_every_s=log_every_s) as running:
        for item in items:
            yield item
            running.advance()
