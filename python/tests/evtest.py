# SPDX-License-Identifier: MIT
"""What the tests and their peer programs share: names, payloads, meeting."""
import itertools
import os
import time

import evshm

_names = itertools.count()


def unique_name(tag):
    """An abstract name no other test or run uses."""
    return f"@evshm-py-{os.getpid()}-{next(_names)}-{tag}"


def scale(n):
    """A count divided by EVSHM_TEST_SCALE (sanitizer/valgrind runs)."""
    return max(1, n // int(os.environ.get("EVSHM_TEST_SCALE", "1")))


def payload(i, size):
    """Message number i of size bytes: its number, repeated."""
    word = (i & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")
    return (word * (size // 8 + 1))[:size]


def connect_retry(name, timeout=10.0, **opts):
    """connect(), waiting up to timeout s for somebody to listen."""
    end = time.monotonic() + timeout
    while True:
        try:
            return evshm.connect(name, timeout=timeout, **opts)
        except (FileNotFoundError, ConnectionRefusedError):
            if time.monotonic() > end:
                raise
            time.sleep(0.01)
