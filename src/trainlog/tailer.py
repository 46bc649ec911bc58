"""One reader per live run per server process, fanning new bytes out to every viewer.

However many viewers watch a run, the store is read once per wake-up (or poll interval) by
that run's tailer; each viewer gets the pages through a bounded queue. A viewer too slow to
keep up is dropped from the fan-out and catches up from the store at its own offset, so it
loses nothing and holds nobody up. The tailer also keeps the log's last megabyte in memory,
so viewers that join (or come back) near the live edge catch up without reading the store:
a crowd opening a run at once costs one read, not one each.
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

from trainlog import runs
from trainlog.db import Database
from trainlog.logread.follow import read_news
from trainlog.stream import log_frames, reconnect_delay

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
        return list(log_frames(self.start, self.data))


@dataclass(frozen=True)
class Ended:
    final_size: int
    exit_code: int | None
    # The run was deleted: its log is going away, so viewers stop where they are.
    deleted: bool = False


@dataclass(frozen=True)
class Stalled:
    """The store could not be read; the tailer keeps trying and goes on where it was."""


@dataclass(frozen=True)
class Quiet:
    """Nothing new for a heartbeat interval: viewers send a heartbeat, so that proxies and
    browsers keep an idle stream open. (One timer per run, not one per viewer and event.)"""


Item = Page | Ended | Stalled | Quiet

RECENT_BYTES = 1024 * 1024


@dataclass
class RecentBytes:
    """The last ``limit`` bytes (or a little more) a tailer has read: [start, end)."""

    limit: int
    start: int = 0
    data: bytearray = field(default_factory=bytearray)

    @property
    def end(self) -> int:
        return self.start + len(self.data)

    def extend(self, start: int, data: bytes) -> None:
        if start != self.end:
            # Not contiguous (the first read): begin afresh.
            self.start, self.data = start, bytearray()
        self.data += data
        # Trimmed only once twice over the limit, so a page costs no copy of the window.
        if len(self.data) > 2 * self.limit:
            excess = len(self.data) - self.limit
            del self.data[:excess]
            self.start += excess

    def get(self, start: int, end: int) -> bytes:
        """Bytes from ``start`` up to ``end`` (or as far as known); empty unless start is held."""
        if not self.start <= start < self.end:
            return b""
        return bytes(memoryview(self.data)[start - self.start : min(end, self.end) - self.start])


FAN_OUT_PAUSE_PER_VIEWER = 0.0001
MAX_FAN_OUT_PAUSE = 0.1


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
    recent: RecentBytes = field(default_factory=lambda: RecentBytes(RECENT_BYTES))
    # Where the next page will begin; None until the first look at the store.
    position: int | None = None

    async def follow(self) -> None:
        try:
            await self._follow()
        except Exception:
            # Viewers fall back to the store on their own; the next subscriber starts afresh.
            log.exception("tailer for run %s failed", self.run_id)
            for subscription in self.subscribers:
                subscription.dropped = True
                # Wake it, so it notices and rejoins (a queue that is full wakes it anyway).
                with contextlib.suppress(asyncio.QueueFull):
                    subscription.queue.put_nowait(Quiet())
        finally:
            self.hub.forget(self)

    async def _follow(self) -> None:
        db = self.hub.db
        loop = asyncio.get_running_loop()
        failures = 0
        last_news = loop.time()
        while self.subscribers:
            self.woken.clear()
            if loop.time() - last_news >= self.hub.heartbeat_interval:
                self._publish(Quiet())
                last_news = loop.time()
            try:
                snapshot, start, data = await to_thread.run_sync(
                    read_news, db, self.run_id, self.position, self.recent.limit
                )
            except SQLAlchemyError as exc:
                if failures == 0:
                    log.warning("tailer for run %s: store unreadable (%s)", self.run_id, exc)
                    self._publish(Stalled())
                await asyncio.sleep(reconnect_delay(failures))
                failures += 1
                continue
            failures = 0
            self.recent.extend(start, data)
            # The first look's page is the log's tail: viewers that joined before it read
            # only what comes before it from the store (a gap, to them).
            self.position = start + len(data)
            if data:
                self._publish(Page(start, data))
                last_news = loop.time()
                if self.position < snapshot.size:
                    continue  # more than one read's worth is waiting
                # With many viewers, let a few appends gather before the next fan-out: each
                # page costs one event per viewer, and a busy server falls behind on them all.
                await asyncio.sleep(fan_out_pause(len(self.subscribers)))
            if snapshot.deleted:
                self._publish(Ended(snapshot.size, snapshot.exit_code, deleted=True))
                return
            if snapshot.ended and self.position >= snapshot.size:
                self._publish(Ended(snapshot.size, snapshot.exit_code))
                return
            with contextlib.suppress(TimeoutError):
                # A timeout, not wait_for: no task to start and schedule on every wake-up.
                async with asyncio.timeout(self.hub.poll_interval):
                    await self.woken.wait()

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


def _check_run(db: Database, run_id: uuid.UUID) -> None:
    with db.read() as session:
        runs.get(session, run_id)


class LogHub:
    """The tailers of one server process, created on a run's first viewer and gone with its
    last one (or when the run has ended and everything was published)."""

    def __init__(
        self,
        db: Database,
        poll_interval: float,
        heartbeat_interval: float,
        queue_pages: int = 1024,
        queue_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.db = db
        self.poll_interval = poll_interval
        self.heartbeat_interval = heartbeat_interval
        # A viewer is dropped from the fan-out when this much waits for it; it then reads
        # from the store at its own pace.
        self.queue_pages = queue_pages
        self.queue_bytes = queue_bytes
        self._tailers: dict[uuid.UUID, RunTailer] = {}
        self._run_checks: dict[uuid.UUID, asyncio.Future[None]] = {}
        # Viewers dropped from a fan-out for falling behind (they catch up from the store).
        self.drops = 0

    def subscribe(self, run_id: uuid.UUID) -> Subscription:
        tailer = self._tailers.get(run_id)
        if tailer is None:
            tailer = self._tailers[run_id] = RunTailer(self, run_id)
            tailer.task = asyncio.create_task(tailer.follow(), name=f"tail-{run_id}")
        subscription = Subscription(run_id, asyncio.Queue(self.queue_pages))
        # No wake-up: a new tailer looks at once, and a viewer joining a running one catches up
        # from its memory or the store by itself; a look per joiner would let a crowd's
        # arrival cost as many looks as viewers.
        tailer.subscribers.add(subscription)
        return subscription

    async def ensure_run(self, run_id: uuid.UUID) -> None:
        """Raise RunNotFound unless the run exists.

        A crowd opening one run at once (a server restart: every browser reconnects) shares
        one look at the database, and a run this process follows needs none (a deleted one's
        tailer ends its viewers' streams).
        """
        if run_id in self._tailers:
            return
        check = self._run_checks.get(run_id)
        if check is None:
            check = asyncio.ensure_future(to_thread.run_sync(_check_run, self.db, run_id))
            self._run_checks[run_id] = check
            check.add_done_callback(lambda done: self._checked(run_id, done))
        # Shielded: one viewer leaving must not cancel the look the others wait on.
        await asyncio.shield(check)

    def _checked(self, run_id: uuid.UUID, check: asyncio.Future[None]) -> None:
        del self._run_checks[run_id]
        if not check.cancelled():
            check.exception()  # retrieved, even if every viewer waiting on it has left

    def next_page_start(self, run_id: uuid.UUID) -> int | None:
        """Where the run's next published page will begin (None: its tailer has not looked
        yet, and its first page will be the log's tail). A subscriber gets every byte from
        there through its queue."""
        tailer = self._tailers.get(run_id)
        return None if tailer is None else tailer.position

    def recent(self, run_id: uuid.UUID, start: int, end: int) -> bytes:
        """What the run's tailer holds of bytes [start, end), from start on (maybe empty)."""
        tailer = self._tailers.get(run_id)
        return b"" if tailer is None else tailer.recent.get(start, end)

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
