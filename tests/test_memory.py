"""Freed large arrays are reused from the heap inside reuse_freed_memory (no new page faults), on glibc Linux."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from brainsr.base import memory

#: Run in a fresh interpreter: a long-lived process (the test session) has moved glibc's thresholds already.
_PROBE = """
import json, resource
import numpy as np
from brainsr.base.memory import reuse_freed_memory


def faults(repeats, n_bytes=64 * 2**20):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(repeats):
        a = np.ones(n_bytes // 8)
        del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


outside = faults(4)
with reuse_freed_memory():
    faults(1)  # the heap grows once
    inside = faults(4)
print(json.dumps({"outside": outside, "inside": inside, "after": faults(4)}))
"""


@pytest.mark.skipif(memory._glibc() is None, reason="glibc's mallopt only")
def test_inside_the_block_freed_arrays_are_reused_without_page_faults() -> None:
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True).stdout
    faults = json.loads(out)
    # every fresh mmap is faulted in (and zero-filled) again by the kernel: hundreds of faults per 64 MB array even
    # with transparent huge pages; inside the block the freed heap memory is reused
    assert faults["outside"] > 4 * 100
    assert faults["inside"] < faults["outside"] // 10
    assert faults["after"] > 4 * 100  # the defaults are back after the block


def test_nested_blocks_keep_the_settings_until_the_outermost_ends() -> None:
    with memory.reuse_freed_memory():
        with memory.reuse_freed_memory():
            assert memory._depth >= 1
        assert memory._depth >= 1  # the inner block did not restore the defaults
        values = np.arange(10.0) * 2
    assert memory._depth == 0
    assert values.sum() == 90.0
