"""Traces as an attacker writes them, for tests: real traces whose every string the model allows is hostile.

Each string is drawn from what has broken outputs: line breaks of every kind (systemd ends lines at LF, CR
and NUL; YAML at NEL and U+2028 too), terminal escapes, bytes that were not UTF-8 (lone surrogates), shell
and YAML syntax, Markdown table and link syntax, spreadsheet formulas, and setting lines to inject. Names
(syscalls, capabilities, families) stay real unless a test asks for one hostile name: those the renderers must
refuse.
"""

import dataclasses
import functools
import posixpath

from hypothesis import strategies as st

from generators.profile import Profile, build_profile
from profiler import trace
from profiler.trace import FileOp, KernelUse, SyscallUse, Trace
from tests.generators.conftest import REPOSITORY
from tests.generators.sandbox_builders import recorded

INJECTIONS = (
    "\n",
    "\r",
    "\x00",
    "\r\n",
    "\x85",
    "\u2028",
    "\u2029",
    "\x0b\x0c",
    "\x1b[31m",
    "\x1b]0;owned\x07",
    "\x9b2J",
    "\x7f",
    "\u202e",
    "\udce9",
    "\udcff\udc80",
    "\\",
    "\\\n",
    "$(touch pwned)",
    "`touch pwned`",
    "'; touch pwned; '",
    '"',
    "\nExecStartPre=/bin/sh -c 'touch /tmp/pwned'\n",
    "\nSystemCallFilter=\n",
    "\x00CapabilityBoundingSet=~\x00",
    "\n    - action: SCMP_ACT_ALLOW\n      names: [bpf, ptrace]\n",
    "- bpf",
    ": x",
    "# c",
    "&anchor *alias",
    "{{ }}",
    "| cell |",
    "`code`",
    "```",
    "[link](http://example.invalid) ![img](http://example.invalid/x.png)",
    "<img src=x>",
    "%n%s",
    "~@privileged",
    '=HYPERLINK("http://example.invalid")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)",
)
HOSTILE = st.lists(st.one_of(st.sampled_from(INJECTIONS), st.text(max_size=6)), min_size=1, max_size=4).map("".join)
# Without lone surrogates: what a trace file holds until its format keeps bytes that are not UTF-8.
HOSTILE_FILE_TEXT = HOSTILE.map(lambda text: "".join(char for char in text if not "\ud800" <= char <= "\udfff"))
BASES = ("chown", "python-sockets-nobody", "unshare-user-net", "explore-tree")


@functools.cache
def base_trace(name: str) -> Trace:
    return trace.load(REPOSITORY / "tests" / "fixtures" / "traces" / f"{name}.trace.json")


@st.composite
def hostile_traces(draw: st.DrawFn, text: st.SearchStrategy[str] = HOSTILE, paths: bool = False) -> Trace:
    """A real trace with every free-text string replaced by a hostile one, and an unresolved syscall whose
    reason is hostile too; with paths, sometimes recorded with files and kernel interfaces at hostile paths."""
    base = base_trace(draw(st.sampled_from(BASES)))
    run = dataclasses.replace(
        base.run,
        component=draw(text),
        hostname=draw(text),
        user=draw(text),
        command=tuple(draw(st.lists(text, min_size=1, max_size=3))),
        kernel_release=draw(text),
    )
    processes = tuple(
        process._replace(images=tuple(image._replace(path=draw(text), argv0=draw(text)) for image in process.images))
        for process in base.processes
    )
    # Every other frame hostile: the asking function is found among the frames the kernel really has.
    stacks = tuple(
        stack._replace(frames=tuple(draw(text) if index % 2 else frame for index, frame in enumerate(stack.frames)))
        for stack in base.kernel_stacks
    )
    first = base.processes[0]
    unresolved = SyscallUse(first.id, 0, 999, None, draw(text), 1, 0.5)
    hostile = dataclasses.replace(
        base, run=run, processes=processes, kernel_stacks=stacks, syscalls=(*base.syscalls, unresolved)
    )
    if not paths or not draw(st.booleans()):
        return hostile
    # Files and kernel interfaces recorded, at hostile paths (under directories the sandbox settings decide on,
    # normalised as a trace file holds them) and with hostile details.
    directory = st.sampled_from(
        ["/", "/tmp/", "/var/cache/", "/var/lib/", "/run/", "/root/", "/dev/", "/proc/sys/", "/srv/", "/usr/bin/"]
    )
    path = st.builds(
        lambda where, names: posixpath.normpath(where + "/".join(names)).replace("//", "/"),
        directory,
        st.lists(text, min_size=1, max_size=2),
    )
    accesses = [
        (draw(path), draw(st.sampled_from(FileOp)), draw(st.none() | st.just("ENOENT")))
        for _ in range(draw(st.integers(1, 6)))
    ]
    kernel = [(draw(st.sampled_from(KernelUse)), draw(text)) for _ in range(draw(st.integers(0, 2)))]
    files = recorded(hostile, accesses, kernel)
    # Device numbers at the /dev paths, up to the largest the kernel's 32-bit dev_t parts hold.
    numbers = st.none() | st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
    assert files.file_accesses is not None
    rows = tuple(
        row._replace(device=draw(numbers)) if row.path.startswith("/dev/") else row for row in files.file_accesses
    )
    return dataclasses.replace(files, file_accesses=rows)


@st.composite
def hostile_profiles(draw: st.DrawFn, text: st.SearchStrategy[str] = HOSTILE, paths: bool = False) -> Profile:
    """The profile of one or two hostile traces, under hostile source names; with paths, sometimes recorded with
    files and kernel interfaces at hostile paths (a profile has a sandbox only where every trace recorded them)."""
    traces = draw(st.lists(hostile_traces(text, paths=paths), min_size=1, max_size=2))
    component = traces[0].run.component
    traces = [dataclasses.replace(each, run=dataclasses.replace(each.run, component=component)) for each in traces]
    return build_profile([(draw(text) + f".{index}", each) for index, each in enumerate(traces)])


@st.composite
def hostile_names(draw: st.DrawFn) -> Profile:
    """A hostile profile in which one syscall, capability or family name is not a name."""
    profile = draw(hostile_profiles())
    bad = draw(st.sampled_from(INJECTIONS[:25]).map(lambda injection: f"read{injection}"))
    kind = draw(st.sampled_from(["syscall", "capability", "family"]))
    if kind == "syscall" or not (profile.capabilities if kind == "capability" else profile.families):
        needs = profile.syscalls
        return dataclasses.replace(profile, syscalls=(dataclasses.replace(needs[0], name=bad), *needs[1:]))
    if kind == "capability":
        uses = profile.capabilities
        return dataclasses.replace(profile, capabilities=(dataclasses.replace(uses[0], name=f"CAP_{bad}"), *uses[1:]))
    families = profile.families
    return dataclasses.replace(profile, families=(dataclasses.replace(families[0], name=f"AF_{bad}"), *families[1:]))
