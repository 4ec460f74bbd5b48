"""Reading and writing overlapped with the network (fastnst.runtime.pipeline): order, errors per item, overlap."""

from __future__ import annotations

import threading
import time

import pytest

from fastnst.errors import InputError
from fastnst.runtime.pipeline import overlapped


def test_results_come_back_in_order_with_each_items_error():
    def read(i):
        if i == 2:
            raise InputError("item 2 cannot be read")
        return i * 10

    def run(x):
        if x == 30:
            raise ValueError("the network failed on item 3")
        time.sleep(0.002 * (x % 3))  # uneven work: writes finish out of order unless kept in order
        return x + 1

    def write(i, y):
        if i == 4:
            raise InputError("item 4 cannot be written")
        return (i, y)

    got = list(overlapped(range(7), read, run, write))
    assert [g[0] for g in got] == list(range(7))
    assert [g[2] for g in got] == [True, True, False, False, False, True, True]
    assert got[0][1] == (0, 1) and got[6][1] == (6, 61)
    assert isinstance(got[2][1], InputError) and isinstance(got[3][1], ValueError) and "written" in str(got[4][1])


def test_reading_and_writing_run_beside_the_network():
    """While the calling thread runs item i, the next item is read and the previous one written on other threads."""
    events = []
    lock = threading.Lock()
    running = threading.Event()

    def log(what, i):
        with lock:
            events.append((what, i, threading.current_thread().name))

    def read(i):
        if i == 1:
            assert running.wait(5)  # read of item 1 happens while item 0 is in the network
        log("read", i)
        return i

    def run(i):
        running.set()
        time.sleep(0.05)
        log("run", i)
        return i

    def write(i, y):
        log("write", i)
        return y

    main = threading.current_thread().name
    assert [r for _, r, _ in overlapped(range(3), read, run, write)] == [0, 1, 2]
    threads = {what: {t for w, _, t in events if w == what} for what in ("read", "run", "write")}
    assert threads["run"] == {main} and main not in threads["read"] | threads["write"]
    assert events.index(("read", 1, next(iter(threads["read"])))) < events.index(("run", 0, main))


def test_a_single_item_runs_without_threads():
    names = []
    out = list(overlapped([5], lambda i: names.append(threading.current_thread().name) or i, lambda x: x * 2,
                          lambda i, y: names.append(threading.current_thread().name) or y))
    assert out == [(5, 10, True)] and set(names) == {threading.current_thread().name}


def test_a_consumer_that_stops_early_leaves_no_thread_behind():
    before = threading.active_count()
    gen = overlapped(range(10), lambda i: i, lambda x: x, lambda i, y: y)
    assert next(gen) == (0, 0, True)
    gen.close()
    time.sleep(0.05)
    assert threading.active_count() <= before


@pytest.mark.parametrize("ahead,behind", [(1, 1), (2, 3)])
def test_memory_stays_bounded(ahead, behind):
    """No more than ``ahead`` items are read before the network takes them."""
    read_count, run_count, worst = [0], [0], [0]

    def read(i):
        read_count[0] += 1
        worst[0] = max(worst[0], read_count[0] - run_count[0])
        return i

    def run(i):
        time.sleep(0.005)
        run_count[0] += 1
        return i

    list(overlapped(range(12), read, run, lambda i, y: y, ahead=ahead, behind=behind))
    assert worst[0] <= ahead + 1
