"""Large CSV bodies (past ``FAST_CHARS``, read by NumPy's C reader) are decoded exactly as
the exact parser decodes a small one: same rows, or the same refusal."""

from __future__ import annotations

import numpy as np
import pytest

from neurocloud.serve import codecs, large_bodies
from neurocloud.serve.errors import ServeError
from neurocloud.serve.signature import Signature

SIGNATURE = Signature("x", 3, "y", 1, np.dtype("float32"))


def _decode(body: bytes):
    try:
        rows, _ = codecs.decode_request(body, "text/csv", SIGNATURE)
    except ServeError as exc:
        return exc.status
    return rows.tolist()


@pytest.mark.parametrize(
    "tail",
    [b"1,2,3#4\n", b"#a comment line\n", b"1,2,3 # note\n", b"1,2,3\n"],
    ids=["hash-in-value", "comment-line", "trailing-comment", "plain"],
)
def test_a_hash_in_a_large_csv_body_is_not_a_comment(tail):
    small = b"1,2,3\n" + tail
    large = b"1,2,3\n" * (large_bodies.FAST_CHARS // 6 + 1) + tail
    assert len(large) > large_bodies.FAST_CHARS
    expected = _decode(small)
    got = _decode(large)
    if isinstance(expected, int):
        assert got == expected  # the same refusal
    else:
        assert got[-1] == expected[-1] and len(got) == large.count(b"\n")
