"""What `profiler run` reports: the calls an enforced run refused, or what an audited run would have had refused,
for people (one line each) and as JSON (--report)."""

import dataclasses
import json
import signal
from collections.abc import Sequence
from dataclasses import dataclass

from profiler import byte_strings, syscalls
from profiler.enforcement.refusals import CapabilityRefusal, ConnectRefusal, PathRefusal
from profiler.enforcement.supervisor import Refusal


def refusal_lines(refusals: Sequence[Refusal]) -> list[str]:
    """refused: openat by /usr/bin/tar, 1x, EPERM from SystemCallFilter="""
    return [
        f"refused: {each.syscall} by {each.program}, {each.count}x, "
        f"{each.answer.errno or 'killed'} from {each.answer.setting}"
        + (f" ({each.abi} ABI)" if each.abi != syscalls.native_abi() else "")
        + (" (ENOSYS: a program takes it for an older kernel and falls back)" if each.answer.errno == "ENOSYS" else "")
        for each in refusals
    ]


def capability_lines(refusals: Sequence[CapabilityRefusal]) -> list[str]:
    """refused: CAP_NET_RAW by /usr/bin/ping, 1x, from CapabilityBoundingSet= (asked by inet_create)"""
    return [
        f"refused: {each.capability} by {each.program}, {each.count}x, from {each.setting}"
        + (f" (asked by {each.asked_by})" if each.asked_by else "")
        for each in refusals
    ]


def path_lines(refusals: Sequence[PathRefusal]) -> list[str]:
    """refused: write to /etc/x by /usr/bin/tee, 1x, EROFS from ProtectSystem=strict"""
    return [
        f"refused: {each.operation} {each.path} by {each.program}, {each.count}x, {each.errno} from {each.setting}"
        for each in refusals
    ]


def connect_lines(refusals: Sequence[ConnectRefusal]) -> list[str]:
    """refused: connect to 192.0.2.1:80 by /usr/bin/curl, 1x, ENETUNREACH from PrivateNetwork=yes"""
    return [
        f"refused: connect to {each.address} by {each.program}, {each.count}x, ENETUNREACH from {each.setting}"
        for each in refusals
    ]


@dataclass(frozen=True, slots=True)
class WouldRefuse:
    """What enforcement would have refused in an audited run, and the line that lets it."""

    kind: str  # syscall, capability, address family, ...
    name: str
    programs: tuple[str, ...]
    count: int
    refused: str  # how the policy refuses it
    paths: tuple[str, ...]  # kernel paths of a capability check


@dataclass(frozen=True, slots=True)
class RunReport:
    exit_status: int  # the command's
    audit: bool
    policy: str
    refusals: tuple[Refusal, ...] = ()  # enforced: what the filter refused
    capability_refusals: tuple[CapabilityRefusal, ...] = ()  # enforced: what the confinement refused besides
    path_refusals: tuple[PathRefusal, ...] = ()
    connect_refusals: tuple[ConnectRefusal, ...] = ()
    unwatched: str | None = None  # why capability (enforced) and path refusals were not watched
    uncounted: int = 0  # refusals the watch saw and could not keep
    would_refuse: tuple[WouldRefuse, ...] = ()  # audited: what enforcement would have refused
    fix: str | None = None  # audited: the lines to add, in the policy's format
    not_applied: tuple[str, ...] = ()  # settings of the policy that run does not apply
    startup_s: float | None = None

    def lines(self) -> list[str]:
        """The report for people, one line per item."""
        out = []
        if self.audit:
            for each in self.would_refuse:
                paths = f" via {', '.join(each.paths)}" if each.paths else ""
                out.append(
                    f"would refuse: {each.kind} {each.name} by {', '.join(each.programs)}, {each.count}x{paths}: "
                    f"{each.refused}"
                )
            if self.fix:
                out += ["fix:", *("  " + line for line in self.fix.splitlines())]
            if not self.would_refuse:
                out.append(f"audit: {self.policy} would refuse nothing this run did")
        else:
            out += _bounded(refusal_lines(self.refusals), "syscall")
            out += _bounded(capability_lines(self.capability_refusals), "capability")
            out += _bounded(path_lines(self.path_refusals), "path")
            out += _bounded(connect_lines(self.connect_refusals), "connection")
            if self.exit_status == 128 + signal.SIGSYS and not any(each.answer.errno is None for each in self.refusals):
                out.append("the command was killed by SIGSYS, not by profiler's filter: by a filter of its own?")
        if self.unwatched:
            out.append(f"profiler: not watched for refusals: {self.unwatched}")
        if self.uncounted:
            out.append(f"profiler: {self.uncounted} more refusals were seen and not named: the watch's table was full")
        return out

    def json(self) -> str:
        """The report as JSON. A program or a path is a byte string, written as a trace writes one
        (profiler.byte_strings: UTF-8, \\xNN for a byte that is not, \\\\ for a backslash)."""
        document = {
            "policy": self.policy,
            "mode": "audit" if self.audit else "enforce",
            "exit_status": self.exit_status,
            "refused": [
                *(
                    {
                        "kind": "syscall",
                        "syscall": each.syscall,
                        "program": byte_strings.encode(each.program),
                        "count": each.count,
                        "errno": each.answer.errno,
                        "setting": each.answer.setting,
                        "abi": each.abi,
                    }
                    for each in self.refusals
                ),
                *({"kind": "capability", **_bytes_written(each)} for each in self.capability_refusals),
                *({"kind": "path", **_bytes_written(each)} for each in self.path_refusals),
                *(
                    {"kind": "connect", "errno": "ENETUNREACH", **_bytes_written(each)}
                    for each in self.connect_refusals
                ),
            ],
            "unwatched": self.unwatched,
            "uncounted": self.uncounted,
            "would_refuse": [_bytes_written(each) for each in self.would_refuse],
            "fix": self.fix,
            "not_applied": list(self.not_applied),
        }
        return json.dumps(_text(document), indent=2, ensure_ascii=True) + "\n"


SHOWN_PER_KIND = 40  # lines of refusals of one kind for people; --report lists them all


def _bounded(lines: list[str], kind: str) -> list[str]:
    """The most frequent refusals of a kind (the lines come most frequent first), and how many more there are."""
    if len(lines) <= SHOWN_PER_KIND:
        return lines
    more = len(lines) - SHOWN_PER_KIND
    return [*lines[:SHOWN_PER_KIND], f"refused: {more} more {kind} refusals (--report FILE lists every one)"]


_BYTE_STRINGS = ("program", "path")


def _bytes_written(item: "CapabilityRefusal | PathRefusal | ConnectRefusal | WouldRefuse") -> dict[str, object]:
    """A refusal's fields, its program and path (and a path's name, the programs of a would-be refusal) in the
    written form of byte strings."""
    fields = dataclasses.asdict(item)
    for key in _BYTE_STRINGS:
        if isinstance(fields.get(key), str):
            fields[key] = byte_strings.encode(fields[key])
    if isinstance(item, WouldRefuse):
        fields["programs"] = [byte_strings.encode(each) for each in item.programs]
        if item.kind == "path":
            fields["name"] = byte_strings.encode(item.name)
    return dict(fields)


def _text(value: object) -> object:
    """The rest as text any JSON parser takes: a byte that is not UTF-8 (a lone surrogate) becomes U+FFFD."""
    if isinstance(value, str):
        return "".join("\ufffd" if 0xD800 <= ord(char) <= 0xDFFF else char for char in value)
    if isinstance(value, list):
        return [_text(each) for each in value]
    if isinstance(value, dict):
        return {key: _text(each) for key, each in value.items()}
    return value
