"""Freed large arrays are reused from the heap inside reuse_freed_memory (no new page faults), on glibc Linux."""

from __future__ import annotations

import resource

import numpy as np
import pytest

from brainsr.base import memory


def _page_faults(repeats: int, n_bytes: int = 64 * 2**20) -> int:
    """Minor page faults of allocating, filling and freeing an array of ``n_bytes`` ``repeats`` times."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(repeats):
        a = np.ones(n_bytes // 8)
        del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(memory._glibc() is None, reason="glibc's mallopt only")
def test_inside_the_block_freed_arrays_are_reused_without_page_faults() -> None:
    # every fresh mmap is faulted in (and zero-filled) again by the kernel: hundreds of faults per array even with
    # transparent huge pages
    outside = _page_faults(4)
    assert outside > 4 * 100
    with memory.reuse_freed_memory():
        _page_faults(1)  # the heap grows once
        inside = _page_faults(4)
    assert inside < outside // 10
    assert _page_faults(4) > 4 * 100  # the defaults are back after the block


def test_nested_blocks_keep_the_settings_until_the_outermost_ends() -> None:
    with memory.reuse_freed_memory():
        with memory.reuse_freed_memory():
            assert memory._depth >= 1
        assert memory._depth >= 1  # the inner block did not restore the defaults
        values = np.arange(10.0) * 2
    assert memory._depth == 0
    assert values.sum() == 90.0
