"""Property tests over every reader (issue 10, fuzzing): arbitrary bytes and
structured mutations of the real samples never raise out of the read loop,
records are numbered 0, 1, 2, ... (so counts add up) and every event can be
stored. Brief here (a few seconds); ``bench/fuzz_readers.py`` runs longer."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .fuzz_support import KINDS, TIGHT, TOKENS, fuzz_formats, mutate, problems, seed

FORMATS = fuzz_formats()
OPS = st.lists(
    st.tuples(st.sampled_from(KINDS), st.floats(0, 1), st.floats(0, 1), st.integers(0, len(TOKENS) - 1)), min_size=1, max_size=6
)
BRIEF = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


@pytest.mark.parametrize("fmt", FORMATS)
@BRIEF
@given(data=st.binary(max_size=1500))
def test_arbitrary_bytes(fmt: str, data: bytes) -> None:
    assert problems(fmt, data) == []


@pytest.mark.parametrize("fmt", FORMATS)
@BRIEF
@given(ops=OPS, tight=st.booleans(), compressed=st.booleans())
def test_mutated_samples(fmt: str, ops: list, tight: bool, compressed: bool) -> None:
    data = mutate(seed(fmt) or seed("jsonl"), ops)
    assert problems(fmt, data, TIGHT if tight else None, compressed) == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_seeds_read_clean(fmt: str) -> None:
    """The harness itself: an unmutated sample reads with no problem."""
    assert problems(fmt, seed(fmt) or seed("jsonl")) == []
