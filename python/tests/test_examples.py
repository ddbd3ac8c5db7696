# SPDX-License-Identifier: MIT
"""The examples run as written: the README's, and examples/frames.py
(channel and topic)."""
import os
import re
import subprocess
import sys

from conftest import PEER_ENV
from evtest import scale

PYDIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_examples():
    """The python code blocks of python/README.md, in order."""
    with open(os.path.join(PYDIR, "README.md")) as f:
        return re.findall(r"```python\n(.*?)```", f.read(), re.S)


def run(argv, **kw):
    return subprocess.run(argv, env=PEER_ENV, capture_output=True, text=True,
                          timeout=120, **kw)


def test_readme_ten_lines(tmp_path):
    """The "Ten lines" example: three subscribers print the four words."""
    code = readme_examples()[0]
    assert len(code.strip().splitlines()) <= 10
    r = run([sys.executable, "-"], input=code, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "b'one' b'copy,' b'three' b'readers'\n" * 3


def test_readme_channel_example(tmp_path):
    code = readme_examples()[1]
    assert len(code.strip().splitlines()) <= 10
    r = run([sys.executable, "-"], input=code, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "b'HELLO, EVSHM'\n"


def test_frames(tmp_path):
    n = scale(60)
    r = run([sys.executable, os.path.join(PYDIR, "examples", "frames.py"),
             "--frames", str(n)], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"{n} frames checked, {n} of them numpy views of shared memory" in r.stdout


def test_frames_to_subscribers(tmp_path):
    n = scale(30)
    r = run([sys.executable, os.path.join(PYDIR, "examples", "frames.py"),
             "--frames", str(n), "--subscribers", "2"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(f"{n} frames checked, {n} of them numpy views of "
                          "shared memory") == 2
