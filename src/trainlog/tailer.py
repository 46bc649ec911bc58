"""One reader per live run per server process, fanning new bytes out to every viewer.

However many viewers watch a run, the store is read once per wake-up (or poll interval) by
that run's tailer; each viewer gets the pages through a bounded queue. A viewer too slow to
keep up is dropped from the fan-out and catches up from the store at its own offset, so it
loses nothing and holds nobody up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from functools import cached_property

from anyio import to_thread
from sqlalchemy.exc import SQLAlchemyError

from trainlog.db import Database
from trainlog.stream import log_frames, read_news

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Page:
    """New bytes of a run's log, [start, start + len(data))."""

    start: int
    data: bytes

    @property
    def end(self) -> int:
        return self.start + len(self.data)

    @cached_property
    def frames(self) -> list[bytes]:
        """The page's SSE events, encoded once for every viewer that is exactly here."""
        return log_frames(self.start, self.data)


@dataclass(frozen=True)
class Ended:
    final_size: int
    exit_code: int | None


@dataclass(frozen=True)
class Stalled:
    """The store could not be read; the tailer keeps trying and goes on where it was."""


Item = Page | Ended | Stalled

FAN_OUT_PAUSE_PER_VIEWER = 0.0001
MAX_FAN_OUT_PAUSE = 0.1

# Backoff between tries while the store cannot be read.
RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0)


@dataclass(eq=False)
class Subscription:
    run_id: uuid.UUID
    queue: asyncio.Queue[Item]
    dropped: bool = False
    # Bytes of the pages waiting in the queue (pages are shared, but a slow viewer's queue
    # keeps them alive).
    queued_bytes: int = 0

    def take(self, item: Item) -> Item:
        if isinstance(item, Page):
            self.queued_bytes -= len(item.data)
        return item


def fan_out_pause(viewers: int) -> float:
    """Seconds between fan-outs of one run: none for a few viewers, growing with their number
    (about 10,000 events a second at most, 0.1 s at 1,000 viewers)."""
    return min(MAX_FAN_OUT_PAUSE, viewers * FAN_OUT_PAUSE_PER_VIEWER)


@dataclass(eq=False)
class RunTailer:
    hub: LogHub
    run_id: uuid.UUID
    subscribers: set[Subscription] = field(default_factory=set)
    woken: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def follow(self) -> None:
        try:
            await self._follow()
        except Exception:
            # Viewers fall back to the store on their own; the next subscriber starts afresh.
            log.exception("tailer for run %s failed", self.run_id)
            for subscription in self.subscribers:
                subscription.dropped = True
        finally:
            self.hub.forget(self)

    async def _follow(self) -> None:
        db = self.hub.db
        position: int | None = None
        failures = 0
        while self.subscribers:
            self.woken.clear()
            try:
                snapshot, data = await to_thread.run_sync(read_news, db, self.run_id, position)
            except SQLAlchemyError as exc:
                if failures == 0:
                    log.warning("tailer for run %s: store unreadable (%s)", self.run_id, exc)
                    self._publish(Stalled())
                await asyncio.sleep(RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)])
                failures += 1
                continue
            failures = 0
            if position is None:
                # Viewers read what came before from the store themselves.
                position = snapshot.size
            if data:
                self._publish(Page(position, data))
                position += len(data)
                if position < snapshot.size:
                    continue  # more than one read's worth is waiting
                # With many viewers, let a few appends gather before the next fan-out: each
                # page costs one event per viewer, and a busy server falls behind on them all.
                await asyncio.sleep(fan_out_pause(len(self.subscribers)))
            if snapshot.ended and position >= snapshot.size:
                self._publish(Ended(snapshot.size, snapshot.exit_code))
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.woken.wait(), self.hub.poll_interval)

    def _publish(self, item: Item) -> None:
        size = len(item.data) if isinstance(item, Page) else 0
        for subscription in list(self.subscribers):
            if subscription.queued_bytes + size > self.hub.queue_bytes:
                self._drop(subscription)
                continue
            try:
                subscription.queue.put_nowait(item)
            except asyncio.QueueFull:
                self._drop(subscription)
                continue
            subscription.queued_bytes += size

    def _drop(self, subscription: Subscription) -> None:
        subscription.dropped = True
        self.subscribers.discard(subscription)
        self.hub.drops += 1


class LogHub:
    """The tailers of one server process, created on a run's first viewer and gone with its
    last one (or when the run has ended and everything was published)."""

    def __init__(
        self,
        db: Database,
        poll_interval: float,
        queue_pages: int = 1024,
        queue_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.db = db
        self.poll_interval = poll_interval
        # A viewer is dropped from the fan-out when this much waits for it; it then reads
        # from the store at its own pace.
        self.queue_pages = queue_pages
        self.queue_bytes = queue_bytes
        self._tailers: dict[uuid.UUID, RunTailer] = {}
        # Viewers dropped from a fan-out for falling behind (they catch up from the store).
        self.drops = 0

    def subscribe(self, run_id: uuid.UUID) -> Subscription:
        tailer = self._tailers.get(run_id)
        if tailer is None:
            tailer = self._tailers[run_id] = RunTailer(self, run_id)
            tailer.task = asyncio.create_task(tailer.follow(), name=f"tail-{run_id}")
        subscription = Subscription(run_id, asyncio.Queue(self.queue_pages))
        tailer.subscribers.add(subscription)
        tailer.woken.set()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        tailer = self._tailers.get(subscription.run_id)
        if tailer is not None:
            tailer.subscribers.discard(subscription)

    def forget(self, tailer: RunTailer) -> None:
        # Runs in the same loop step as the tailer's last publish, so no viewer can subscribe
        # to a tailer that will never publish again.
        if self._tailers.get(tailer.run_id) is tailer:
            del self._tailers[tailer.run_id]

    def wake(self, run_id: uuid.UUID | None = None) -> None:
        """New bytes (or the end) for run_id, or for some run when the signal cannot tell."""
        woken = self._tailers.values() if run_id is None else [self._tailers.get(run_id)]
        for tailer in woken:
            if tailer is not None:
                tailer.woken.set()

    @property
    def active_runs(self) -> int:
        return len(self._tailers)

    async def close(self) -> None:
        tasks = [t.task for t in self._tailers.values() if t.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
