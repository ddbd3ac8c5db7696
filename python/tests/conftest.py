# SPDX-License-Identifier: MIT
"""Fixtures: peer processes (subprocess, never fork) and the C build tree."""
import os
import select
import subprocess
import sys
import time

import pytest

import evshm
from evtest import unique_name

HERE = os.path.dirname(os.path.abspath(__file__))

# The peers import the same evshm as this process.
PEER_ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(
    [os.path.dirname(os.path.dirname(evshm.__file__)), HERE,
     os.environ.get("PYTHONPATH", "")]))


class Proc:
    """A child process and its stdout lines."""

    def __init__(self, argv, **kw):
        self.argv = argv
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("env", PEER_ENV)
        self.p = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, **kw)
        self.pid = self.p.pid

    def line(self, timeout=20):
        """The next line of its stdout; fails after timeout s."""
        r, _, _ = select.select([self.p.stdout], [], [], timeout)
        assert r, f"{self.argv[1:3]}: no output within {timeout} s"
        line = self.p.stdout.readline()
        assert line, f"{self.argv[1:3]} ended: {self.p.stderr.read()}"
        return line.strip()

    def wait_ready(self):
        assert self.line() == "ready"
        return self

    def wait(self, timeout=30):
        """Exit status; stderr is shown on failure."""
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise
        self.err = self.p.stderr.read()
        return rc

    def expect(self, rc=0, timeout=30):
        got = self.wait(timeout)
        assert got == rc, f"{self.argv[1:3]} exited {got}: {self.err}"

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        for f in (self.p.stdout, self.p.stderr):
            if f:
                f.close()


@pytest.fixture
def spawn():
    """spawn(argv...) -> Proc, killed at the end of the test if still there."""
    procs = []

    def start(*argv, **kw):
        p = Proc([str(a) for a in argv], **kw)
        procs.append(p)
        return p
    yield start
    for p in procs:
        p.kill()


@pytest.fixture
def peer(spawn):
    """peer(role, *args) -> Proc running tests/peer.py ROLE ARGS."""
    return lambda role, *args: spawn(sys.executable, os.path.join(HERE, "peer.py"),
                                     role, *args)


@pytest.fixture
def channel_to(peer):
    """channel_to(role, *args, ready=True, **listen_options) ->
    (channel, peer): listen at a new name, start the peer role there (it
    connects), accept; wait for its "ready" line.  Closed at the end."""
    chans = []

    def start(role, *args, ready=True, **opts):
        name = unique_name(role)
        with evshm.listen(name, **opts) as listener:
            p = peer(role, name, *args)
            ch = listener.accept(timeout=30)
        chans.append(ch)
        if ready:
            p.wait_ready()
        return ch, p
    yield start
    for ch in chans:
        ch.close()


def ending_well(channel_to, role, **opts):
    """For fixtures: a channel to a peer role that must exit 0 once the
    channel is closed."""
    ch, p = channel_to(role, **opts)
    yield ch
    ch.close()
    p.expect(0)


@pytest.fixture
def echo(channel_to):
    yield from ending_well(channel_to, "echo")


@pytest.fixture(scope="session")
def build_dir():
    """The CMake build tree with the evshm tool and the C examples:
    EVSHM_BUILD_DIR, or the tree this evshm module was built in."""
    d = os.environ.get("EVSHM_BUILD_DIR")
    if not d:
        d = os.path.dirname(os.path.dirname(os.path.dirname(evshm.__file__)))
    if not os.path.exists(os.path.join(d, "tools", "evshm")):
        pytest.skip("no evshm build tree (set EVSHM_BUILD_DIR)")
    return d


def fd_count():
    return len(os.listdir("/proc/self/fd"))


def fd_count_back_to(before, timeout=10.0):
    """Whether the descriptor count comes back to before within timeout:
    a peer's pipe or socket is closed by a short-lived thread (its close
    may wait for the peer), soon but not necessarily before a call returns."""
    deadline = time.monotonic() + timeout
    while fd_count() != before and time.monotonic() < deadline:
        time.sleep(0.01)
    return fd_count() == before


@pytest.fixture(autouse=True)
def no_fd_leak():
    """Every test ends with the descriptors it started with."""
    before = fd_count()
    yield
    import gc
    gc.collect()
    assert fd_count_back_to(before), "descriptors leaked"
