"""The one batching queue: requests first in, first out by shape; streams in turns; the two
together in one queue (the server's), each lane served in turn."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from slowfast_deploy.engine.batching import BatcherClosed, BatchQueue, Clips, QueueFull


def rows(count: int, width: int = 2) -> Clips:
    return Clips.of(np.zeros((count, 1, width), np.float32))


def test_requests_batch_by_shape_in_order_and_split_at_max_batch() -> None:
    queue: BatchQueue[str, str] = BatchQueue(max_batch=4, max_wait_s=0.0, max_queue=100)
    queue.submit(rows(1))
    queue.submit(rows(2, width=3))  # another shape: never in the same batch
    queue.submit(rows(2))
    queue.submit(rows(9))  # larger than max_batch: chunks of 4, 4, 1
    sizes = []
    while queue.queued:
        take = queue.take(0.0)
        sizes.append([(r.clips.count, r.clips.row_shape[-1]) for r in take.requests])
    assert sizes == [[(1, 2), (2, 2)], [(2, 3)], [(4, 2)], [(4, 2)], [(1, 2)]]


def test_requests_wait_for_a_full_batch_at_most_max_wait() -> None:
    queue: BatchQueue[str, str] = BatchQueue(max_batch=4, max_wait_s=0.2, max_queue=100)
    queue.submit(rows(1))
    t0 = time.monotonic()
    assert [r.clips.count for r in queue.take(5.0).requests] == [1]
    assert 0.15 <= time.monotonic() - t0 < 1.0
    queue.submit(rows(2))
    queue.submit(rows(2))  # a full batch is due at once
    t0 = time.monotonic()
    assert [r.clips.count for r in queue.take(5.0).requests] == [2, 2]
    assert time.monotonic() - t0 < 0.15


def test_the_request_queue_is_bounded_and_closes() -> None:
    queue: BatchQueue[str, str] = BatchQueue(max_batch=64, max_wait_s=1.0, max_queue=2)
    queue.submit(rows(5))  # an empty queue takes any request
    with pytest.raises(QueueFull, match="5 clips are waiting for the model"):
        queue.submit(rows(1))
    queue.close()
    with pytest.raises(BatcherClosed):
        queue.submit(rows(1))
    assert [r.clips.count for r in queue.take(None).requests] == [5]  # due at once when closed
    assert not queue.take(None)  # closed and empty: an empty take, no wait


def test_requests_and_streams_take_turns() -> None:
    queue: BatchQueue[str, str] = BatchQueue(
        max_batch=2, max_wait_s=0.0, max_latency_s=100, depth=10, max_queue=100
    )
    queue.observe(0.001, 1)  # a fast model
    queue.add_stream("cam")
    now = time.monotonic()
    for k in range(4):
        queue.put("cam", f"w{k}", now - 10 + k)  # older than any request
        queue.submit(rows(2))
    kinds = []
    for _ in range(6):
        take = queue.take(0.0)
        kinds.append("stream" if take.batch else "requests")
    # the stream's windows are older: it goes first; then the lane served least recently
    assert kinds == ["stream", "requests", "stream", "requests", "requests", "requests"]


def test_a_flushed_stream_is_due_at_once_and_drops_nothing() -> None:
    queue: BatchQueue[str, str] = BatchQueue(max_batch=8, max_wait_s=60, max_latency_s=0.5)
    queue.observe(0.001, 1)
    queue.add_stream("cam")
    old = time.monotonic() - 5  # past the latency budget
    for k in range(3):
        queue.put("cam", f"w{k}", old)
    queue.put_notice("cam", "ended")
    queue.flush("cam")
    taken, after = [], []
    while queue.pending():
        take = queue.take(0.0)  # past the budget: one window per model call, at once
        taken.append(take.batch)
        after += take.after
    assert (taken, after, queue.dropped("cam")) == ([["w0"], ["w1"], ["w2"]], ["ended"], 0)


def test_a_removed_stream_lets_a_waiting_lossless_put_return() -> None:
    queue: BatchQueue[str, str] = BatchQueue(max_batch=1, max_wait_s=10, depth=1)
    queue.add_stream("file", lossless=True)
    queue.put("file", "w0", time.monotonic())
    done = threading.Event()

    def put() -> None:
        queue.put("file", "w1", time.monotonic())  # waits for room
        done.set()

    threading.Thread(target=put, daemon=True).start()
    assert not done.wait(0.3)
    queue.remove_stream("file")
    assert done.wait(5)
    assert queue.pending() == 0
