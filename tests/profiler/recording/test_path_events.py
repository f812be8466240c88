"""The tracer decodes a path event while the run goes on only where its name needs the live process; the rest
wait, as bytes, until the run is over (Tracer.held_back), and decode to the same sights."""

import ctypes as ct

import pytest

from profiler.recording import tracer
from profiler.recording.tracer import CWD_MARK, FD_MARK, EventKind, KernelFileOp, PathSight

HASH = 0x1234_5678_9ABC_DEF0 & ~(CWD_MARK | FD_MARK)  # recorder.bpf.c: name_of clears the marks


def event(name: int, directory: int, text: bytes | None, fd: int = -1) -> ct.Array[ct.c_char]:
    header = tracer._Header(EventKind.PATH, 7, 99)
    length = len(text) + 1 if text is not None else 0
    fields = tracer._PathEvent(header, 3, KernelFileOp.READ, -2, fd, name, directory, length, 0)
    return ct.create_string_buffer(bytes(fields) + (text or b"") + b"\0" * (text is not None))


def fed(*events: ct.Array[ct.c_char]) -> tracer.Tracer:
    """A Tracer with nothing loaded, given the events as the ring buffer's callback gets them."""
    fake = tracer.Tracer.__new__(tracer.Tracer)
    fake._pending, fake._held = [], []
    for raw in events:
        fake._on_event(None, ct.addressof(raw), ct.sizeof(raw) - 1)
    return fake


@pytest.mark.parametrize(
    ("name", "directory", "text", "fd"),
    [
        (HASH, 0, b"/etc/passwd", -1),  # absolute
        (HASH, HASH + 1, b"inner", -1),  # relative to a directory the kernel side named
        (HASH, 0, None, 4),  # by a descriptor whose path the kernel side saw opened
    ],
)
def test_a_name_the_trace_itself_resolves_waits(name: int, directory: int, text: bytes | None, fd: int) -> None:
    fake = fed(event(name, directory, text, fd))
    assert fake._pending == []
    assert fake.held_back() == [
        PathSight(7, 3, KernelFileOp.READ, -2, name, directory, text.decode() if text else None, fd, 99)
    ]
    assert fake.held_back() == []


@pytest.mark.parametrize(
    ("name", "directory", "text", "fd"),
    [
        (HASH, CWD_MARK | 7, b"relative", -1),  # relative to a working directory only /proc tells
        (FD_MARK | 7 << 20 | 200, 0, None, 200),  # a descriptor the kernel side did not see opened
        (HASH, FD_MARK | 7 << 20 | 200, b"inner", -1),  # relative to such a descriptor
    ],
)
def test_a_name_only_the_live_process_tells_is_decoded_at_once(
    name: int, directory: int, text: bytes | None, fd: int
) -> None:
    fake = fed(event(name, directory, text, fd))
    assert fake.held_back() == []
    assert fake._pending == [
        PathSight(7, 3, KernelFileOp.READ, -2, name, directory, text.decode() if text else None, fd, 99)
    ]


def test_the_layout_read_from_bytes_is_the_kernel_sides() -> None:
    assert tracer._PATH_EVENT.size == ct.sizeof(tracer._PathEvent)
