# SPDX-License-Identifier: MIT
"""Ctrl-C (SIGINT) ends a blocking recv or accept with KeyboardInterrupt;
a signal whose handler does not raise leaves the wait alone."""
import os
import signal
import threading
import time

import pytest

import evshm
from evtest import unique_name


def interrupt(p):
    time.sleep(0.3)  # let it go to sleep in the call
    t0 = time.monotonic()
    os.kill(p.pid, signal.SIGINT)
    p.expect(3, timeout=10)  # exit 3: KeyboardInterrupt caught in the call
    assert "interrupted" in p.line()
    return time.monotonic() - t0


def test_ctrl_c_ends_recv(channel_to):
    ch, p = channel_to("block-recv")
    assert interrupt(p) < 5  # not at some timeout: there is none


def test_ctrl_c_ends_accept(peer):
    p = peer("block-accept", unique_name("sigint-accept")).wait_ready()
    assert interrupt(p) < 5


def test_quiet_signal_does_not_end_the_wait(echo):
    """A handler that returns: recv goes on and gets its message."""
    got = []
    old = signal.signal(signal.SIGUSR1, lambda *a: got.append("signal"))
    try:
        ch = echo
        main = threading.get_ident()

        def later():
            time.sleep(0.2)
            signal.pthread_kill(main, signal.SIGUSR1)
            time.sleep(0.2)
            ch.send(b"after the signal")
        # A second thread sends while the main thread waits in recv: it may,
        # the two sides are independent.
        t = threading.Thread(target=later)
        t.start()
        assert ch.recv(timeout=30) == b"after the signal"
        t.join()
        assert got == ["signal"]
    finally:
        signal.signal(signal.SIGUSR1, old)


def test_handler_exception_ends_the_wait(channel_to):
    """Any exception raised by a signal handler ends the call."""
    class Stop(Exception):
        pass

    def handler(*a):
        raise Stop()
    old = signal.signal(signal.SIGALRM, handler)
    try:
        ch, _ = channel_to("hold")
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        t0 = time.monotonic()
        with pytest.raises(Stop):
            ch.recv(timeout=30)
        assert time.monotonic() - t0 < 15  # by the signal, not the timeout
        # The channel is fine afterwards.
        with pytest.raises(BlockingIOError):
            ch.recv(timeout=0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_ctrl_c_ends_subscriber_recv(peer):
    with evshm.publish(unique_name("sigint-sub")) as pub:
        p = peer("block-sub-recv", pub.name)
        pub.wait_subscribers(1, timeout=30)
        p.wait_ready()
        assert interrupt(p) < 5


def test_ctrl_c_ends_wait_subscribers(peer):
    p = peer("block-wait-subscribers", unique_name("sigint-pub")).wait_ready()
    assert interrupt(p) < 5
