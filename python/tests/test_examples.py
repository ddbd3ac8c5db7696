# SPDX-License-Identifier: MIT
"""The examples run as written: the README's, and examples/frames.py."""
import os
import re
import subprocess
import sys

from conftest import PEER_ENV
from evtest import scale

PYDIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_example():
    """The first python code block of python/README.md."""
    with open(os.path.join(PYDIR, "README.md")) as f:
        return re.search(r"```python\n(.*?)```", f.read(), re.S).group(1)


def run(argv, **kw):
    return subprocess.run(argv, env=PEER_ENV, capture_output=True, text=True,
                          timeout=120, **kw)


def test_readme_example(tmp_path):
    code = readme_example()
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
