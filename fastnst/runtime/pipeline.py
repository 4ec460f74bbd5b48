"""Many images through one model, with reading and writing overlapped on two threads. Torch-free.

:func:`overlapped` runs ``read`` (decoding) one item ahead on a reader thread and ``write`` (encoding, saving)
on a writer thread, while the calling thread runs the network on the current item. Decoding and encoding
(Pillow), like onnxruntime's run, release the GIL, so on a 2-core CPU they fill the core that onnxruntime
leaves idle during its single-threaded operators (instance norm, padding, layout changes). Results come back
in the order of the items; an exception of one item is handed back for that item (the caller decides whether
it ends the batch), the others go on. At most ``ahead`` items are decoded ahead and ``behind`` results wait to
be written, so memory stays bounded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, or the exception it raised (returned, not raised)."""
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - handed back to the caller, per item
        return _Failed(exc)


class _Failed:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc


def overlapped(items: Iterable[T], read: Callable[[T], Any], run: Callable[[Any], Any],
               write: Callable[[T, Any], Any], ahead: int = 1, behind: int = 2) -> Iterator[tuple[T, Any, bool]]:
    """``write(item, run(read(item)))`` for every item, in order, with ``read`` and ``write`` on worker threads.

    Yields ``(item, result, ok)``: ``result`` is what ``write`` returned (``ok`` True) or the exception one of
    the three stages raised for this item (``ok`` False). ``run`` happens on the calling thread, one item at a
    time, in order.
    """
    items = list(items)
    if len(items) <= 1:  # nothing to overlap: no threads
        for item in items:
            value = _call(read, item)
            if not isinstance(value, _Failed):
                value = _call(run, value)
            if not isinstance(value, _Failed):
                value = _call(write, item, value)
            yield (item, value.exc, False) if isinstance(value, _Failed) else (item, value, True)
        return
    with ThreadPoolExecutor(1, thread_name_prefix="fastnst-read") as reader, \
            ThreadPoolExecutor(1, thread_name_prefix="fastnst-write") as writer:
        reads: deque[Future] = deque(reader.submit(_call, read, item) for item in items[:ahead])
        writes: deque[tuple[T, Future]] = deque()
        for i, item in enumerate(items):
            if i + ahead < len(items):
                reads.append(reader.submit(_call, read, items[i + ahead]))
            value = reads.popleft().result()
            if not isinstance(value, _Failed):
                value = _call(run, value)
            if isinstance(value, _Failed):
                done: Future = Future()
                done.set_result(value)
                writes.append((item, done))
            else:
                writes.append((item, writer.submit(_call, write, item, value)))
            del value
            while len(writes) > behind or (writes and writes[0][1].done()):
                yield _result(*writes.popleft())
        while writes:
            yield _result(*writes.popleft())


def _result(item: Any, future: Future) -> tuple[Any, Any, bool]:
    value = future.result()
    return (item, value.exc, False) if isinstance(value, _Failed) else (item, value, True)


__all__ = ["overlapped"]
