"""Byte strings (paths, arguments) in a trace: any bytes round-trip, in one written form, which is UTF-8 text."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from profiler import byte_strings
from profiler.byte_strings import ByteStringError

LIMIT = 4096
without_nul = st.binary(max_size=64).map(lambda raw: raw.replace(b"\0", b""))


def held(raw: bytes) -> str:
    """Bytes as profiler holds them: what os.fsdecode gives on a UTF-8 system."""
    return raw.decode("utf-8", "surrogateescape")


@given(without_nul)
def test_any_bytes_come_back_from_their_written_form(raw: bytes) -> None:
    written = byte_strings.encode(held(raw))
    assert byte_strings.decode(written, LIMIT).encode("utf-8", "surrogateescape") == raw


@given(without_nul)
def test_the_written_form_is_text_every_json_reader_takes(raw: bytes) -> None:
    written = byte_strings.encode(held(raw))
    written.encode("utf-8")  # no lone surrogate: strict UTF-8 takes it
    assert json.loads(json.dumps(written, ensure_ascii=False)) == written


@given(st.text(max_size=40))
def test_utf_8_text_without_a_backslash_is_written_as_itself(text: str) -> None:
    if "\\" not in text:
        assert byte_strings.encode(text) == text


@pytest.mark.parametrize(
    ("raw", "written"),
    [
        (b"caf\xe9", "caf\\xe9"),
        ("café".encode(), "café"),
        (b"a\\b", "a\\\\b"),
        (b"\\xe9", "\\\\xe9"),
        (b"/tmp/\xff\xfe", "/tmp/\\xff\\xfe"),
        (b"line\nbreak", "line\nbreak"),
    ],
)
def test_the_documented_form(raw: bytes, written: str) -> None:
    assert byte_strings.encode(held(raw)) == written
    assert byte_strings.decode(written, LIMIT) == held(raw)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a\\b", "a backslash that is not"),
        ("a\\", "a backslash that is not"),
        ("\\xE9", "a backslash that is not"),
        ("\\x4", "a backslash that is not"),
        ("\\x41", "write it as itself"),
        ("\\xc3\\xa9", "write it as itself"),
        ("a\0b", "a NUL byte"),
        ("x" * (LIMIT + 1), "longer than 4096 bytes"),
        ("\udce9", "a lone surrogate"),
    ],
)
def test_anything_else_is_refused_with_the_reason(text: str, problem: str) -> None:
    with pytest.raises(ByteStringError, match=problem):
        byte_strings.decode(text, LIMIT)


def test_a_surrogate_no_bytes_made_is_still_written() -> None:
    written = byte_strings.encode("\ud800")
    assert written == "\\xed\\xa0\\x80"
    assert byte_strings.decode(written, LIMIT) == held(b"\xed\xa0\x80")
