import asyncio

import pytest

from maas_runtime.batcher import MicroBatcher
from maas_runtime.errors import Overloaded


def make(process_delay=0.0, **kw):
    batches = []

    async def process(items):
        batches.append(list(items))
        await asyncio.sleep(process_delay)
        if "boom" in items:
            raise ValueError("model failed")
        return [x * 10 for x in items]

    return MicroBatcher("test", process, **kw), batches


async def test_concurrent_requests_share_one_batch_and_get_their_own_results():
    b, batches = make(max_batch_size=64, max_delay_s=0.05)
    results = await asyncio.gather(*(b.submit([i, i + 100]) for i in range(10)))
    assert results == [[i * 10, (i + 100) * 10] for i in range(10)]
    assert len(batches) == 1 and len(batches[0]) == 20
    await b.close()


async def test_batches_never_exceed_max_batch_size():
    b, batches = make(max_batch_size=4, max_delay_s=0.01)
    out = await b.submit(list(range(10)))
    assert out == [x * 10 for x in range(10)]
    assert max(len(x) for x in batches) <= 4 and sum(len(x) for x in batches) == 10
    await b.close()


async def test_full_queue_is_refused_with_a_retry_hint_and_later_requests_pass():
    b, _ = make(process_delay=0.2, max_batch_size=2, max_delay_s=0, max_queue_size=4, max_concurrent_batches=1)
    first = asyncio.create_task(b.submit([1, 2]))
    await asyncio.sleep(0.01)  # first batch is running; the queue is empty again
    second = asyncio.create_task(b.submit([3, 4, 5, 6]))
    await asyncio.sleep(0.01)
    with pytest.raises(Overloaded) as err:
        await b.submit([7])
    assert "retry after" in err.value.message and err.value.retry_after_s > 0
    assert await first == [10, 20] and await second == [30, 40, 50, 60]
    assert await b.submit([8]) == [80]
    await b.close()


async def test_a_request_larger_than_the_queue_is_invalid_without_a_retry_hint():
    """It could never be queued: no retry helps, so it is not RESOURCE_EXHAUSTED with a hint."""
    from maas_runtime.errors import InvalidArgument

    b, _ = make(max_queue_size=4)
    with pytest.raises(InvalidArgument) as err:
        await b.submit([1, 2, 3, 4, 5])
    assert "at most 4" in err.value.message
    assert await b.submit([1, 2, 3, 4]) == [10, 20, 30, 40]
    await b.close()


async def test_admission_by_expected_wait():
    """Batches of 2 taking ~0.2 s, one at a time: with 0.5 s of wait allowed, a request is refused at once (with a
    retry hint) when the batches ahead of it would take longer, though the queue has room."""
    b, _ = make(process_delay=0.2, max_batch_size=2, max_delay_s=0, max_queue_size=100, max_concurrent_batches=1,
                max_queue_wait_s=0.5)
    assert await b.submit([1, 2]) == [10, 20]  # learns what a batch takes
    running = [asyncio.ensure_future(b.submit([i])) for i in range(3)]  # a batch of 2 runs, 1 item waits
    await asyncio.sleep(0.01)
    with pytest.raises(Overloaded) as err:
        await b.submit([7, 8, 9, 10])  # 3 batches to its last item: ~0.6 s
    assert "would wait" in err.value.message and err.value.retry_after_s > 0
    assert len(await asyncio.gather(*running)) == 3
    assert await b.submit([5]) == [50]
    await b.close()


async def test_a_failed_batch_fails_every_waiter_and_the_batcher_keeps_going():
    b, _ = make(max_batch_size=8, max_delay_s=0.05)
    results = await asyncio.gather(b.submit(["boom"]), b.submit(["a"]), return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)
    assert await b.submit(["ok"]) == ["okokokokokokokokokok"]
    await b.close()


async def test_cancelled_requests_are_not_computed():
    b, batches = make(process_delay=0.1, max_batch_size=1, max_delay_s=0, max_concurrent_batches=1)
    running = asyncio.create_task(b.submit([1]))
    await asyncio.sleep(0.01)
    dropped = asyncio.create_task(b.submit([2]))
    await asyncio.sleep(0.01)
    dropped.cancel()
    assert await running == [10]
    await asyncio.sleep(0.15)
    assert [2] not in batches
    await b.close()
