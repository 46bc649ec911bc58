"""One viewer's SSE stream: catch up from the store, then follow the run's tailer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from starlette.concurrency import iterate_in_threadpool

from trainlog import sse, store
from trainlog.offsets import news_in_page
from trainlog.stream import (
    deleted_event,
    done_event,
    heartbeat_event,
    log_frames,
    reconnecting_event,
)
from trainlog.tailer import Ended, Item, LogHub, Page, Quiet, Stalled, Subscription

# Read per step when catching up: what a viewer that stops reading can hold, at most.
CATCH_UP_BYTES = 1024 * 1024


class _Viewer:
    def __init__(self, hub: LogHub, run_id: uuid.UUID, offset: int) -> None:
        self.hub = hub
        self.run_id = run_id
        self.offset = offset

    async def catch_up(self, end: int) -> AsyncIterator[bytes]:
        """Events for [offset, end): what the run's tailer holds in memory, then the store."""
        remembered = self.hub.recent(self.run_id, self.offset, end)
        if remembered:
            for frame in log_frames(self.offset, remembered):
                yield frame
            self.offset += len(remembered)
        if self.offset >= end:
            return
        pages = store.iter_bytes(self.hub.db, self.run_id, self.offset, end, CATCH_UP_BYTES)
        async for data in iterate_in_threadpool(pages):
            for frame in log_frames(self.offset, data):
                yield frame
            self.offset += len(data)

    async def from_page(self, page: Page) -> AsyncIterator[bytes]:
        gap_end, news = news_in_page(self.offset, page.start, page.data)
        if gap_end is not None:
            async for frame in self.catch_up(gap_end):
                yield frame
            if self.offset != page.start:
                return
        if not news:
            return
        # Viewers in step with the tailer share the page's frames, encoded once.
        frames = page.frames if len(news) == len(page.data) else log_frames(self.offset, news)
        for frame in frames:
            yield frame
        self.offset += len(news)


def _pending(
    subscription: Subscription, first: Page
) -> tuple[list[Page], Ended | Stalled | Quiet | None]:
    """``first`` and the pages already queued behind it, then what came after them."""
    pages = [first]
    while not subscription.queue.empty():
        item = subscription.take(subscription.queue.get_nowait())
        if not isinstance(item, Page):
            return pages, item
        pages.append(item)
    return pages, None


def _joined(pages: list[Page]) -> Page:
    # A subscription's pages are consecutive: the tailer publishes each byte once, in order.
    if len(pages) == 1:
        return pages[0]
    return Page(pages[0].start, b"".join(page.data for page in pages))


async def log_events(hub: LogHub, run_id: uuid.UUID, offset: int) -> AsyncIterator[bytes]:
    """The SSE body for one viewer, from ``offset`` until the run ends and all is sent."""
    viewer = _Viewer(hub, run_id, offset)
    yield sse.comment("trainlog")
    subscription = hub.subscribe(run_id)
    try:
        # What was stored before this viewer came (the tailer publishes only what is new);
        # a crowd arriving at once waits for the tailer's first look instead of each reading.
        end = hub.next_page_start(run_id)
        if end is not None:
            async for frame in viewer.catch_up(end):
                yield frame
        while True:
            if subscription.dropped and subscription.queue.empty():
                # Too slow for the fan-out: rejoin; the gap is read from the store.
                subscription = hub.subscribe(run_id)
            item: Item | None = subscription.take(await subscription.queue.get())
            if isinstance(item, Page):
                # A viewer that fell behind sends what piled up as one batch of events.
                pages, item = _pending(subscription, item)
                async for frame in viewer.from_page(_joined(pages)):
                    yield frame
            if item is None:
                continue
            if isinstance(item, Quiet):
                yield heartbeat_event()
                continue
            if isinstance(item, Stalled):
                yield reconnecting_event(viewer.offset)
                continue
            async for frame in viewer.catch_up(item.final_size):
                yield frame
            if item.deleted or viewer.offset < item.final_size:  # its bytes went meanwhile
                yield deleted_event()
                return
            yield done_event(item.exit_code, item.final_size)
            return
    finally:
        hub.unsubscribe(subscription)
