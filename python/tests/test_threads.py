"""Two Python threads running two sessions at once: the GIL is released while the network
runs, the results are those of the sessions run one after the other, and a session used
from a second thread while it runs refuses instead of racing."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import mnv3


def test_two_threads_two_sessions(small):
    large = mnv3.Model.builtin(arch="large", width=0.75)
    inputs = {
        "small": np.random.default_rng(20).standard_normal((1, 3, 224, 224)).astype(np.float32),
        "large": np.random.default_rng(21).standard_normal((1, 3, 192, 192)).astype(np.float32),
    }
    sessions = {"small": mnv3.Session(small), "large": mnv3.Session(large, height=192,
                                                                      width=192)}
    want = {k: sessions[k].run(inputs[k]) for k in sessions}
    runs = 12
    spans = {k: [] for k in sessions}
    results = {k: [] for k in sessions}
    errors = []
    barrier = threading.Barrier(2)

    def work(name):
        try:
            s, x = sessions[name], inputs[name]
            barrier.wait()
            for _ in range(runs):
                t0 = time.perf_counter()
                y = s.run(x)
                spans[name].append((t0, time.perf_counter()))
                results[name].append(y)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors
    for k in sessions:
        assert len(results[k]) == runs
        assert all(np.array_equal(y, want[k]) for y in results[k]), k
    # With the GIL held during a run, a run of one thread could never start while one of
    # the other is under way; released, the runs overlap in time.
    overlap = sum(max(0.0, min(a1, b1) - max(a0, b0))
                  for a0, a1 in spans["small"] for b0, b1 in spans["large"])
    assert overlap > 0, "the runs of the two threads never overlapped: the GIL is held"
    for s in sessions.values():
        s.close()


def test_python_thread_progresses_during_a_run(small):
    """A pure-Python thread keeps running while the main thread is inside Session.run."""
    with mnv3.Session(small, height=640, width=640) as s:
        x = np.zeros(s.input_shape, np.float32)
        s.run(x)
        stop = threading.Event()
        ticks = []

        def spin():
            while not stop.is_set():
                ticks.append(time.perf_counter())

        t = threading.Thread(target=spin)
        t.start()
        time.sleep(0.01)
        t0 = time.perf_counter()
        s.run(x)
        t1 = time.perf_counter()
        stop.set()
        t.join()
    during = [v for v in ticks if t0 < v < t1]
    assert len(during) > 10, "no Python bytecode ran while the session ran: the GIL is held"


def test_one_session_from_two_threads_is_refused(small):
    with mnv3.Session(small, height=1024, width=1024) as s:
        x = np.zeros(s.input_shape, np.float32)
        done = []
        t = threading.Thread(target=lambda: done.append(s.run(x)))
        t.start()
        deadline = time.monotonic() + 60
        while not s._lock.locked() and t.is_alive() and time.monotonic() < deadline:
            time.sleep(0)
        if not s._lock.locked():
            t.join()
            pytest.skip("the other thread's run ended before this one could try")
        with pytest.raises(mnv3.SessionInUseError, match="one session per thread"):
            s.run(x)  # while the other thread's run holds the session
        t.join()
        assert len(done) == 1 and np.array_equal(done[0], s.run(x))


def test_shared_model_many_sessions(small_int8):
    """Sessions on one model in four threads: int8 results are identical everywhere."""
    x = np.random.default_rng(22).integers(-128, 128, (1, 3, 224, 224), dtype=np.int8)
    with mnv3.Session(small_int8) as s:
        want = s.predict_quantized(x).quantized_logits
    out = [None] * 4

    def work(i):
        with mnv3.Session(small_int8, threads=1 + i % 2) as s:
            out[i] = s.predict_quantized(x).quantized_logits

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert all(o is not None and np.array_equal(o, want) for o in out)
