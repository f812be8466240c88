"""`profiler explain`: where an item came from, in full; an unseen item in one line; an unknown name is exit 2."""

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from profiler.cli import main

REPOSITORY = Path(__file__).resolve().parents[2]
GIT = [
    str(REPOSITORY / "traces" / f"{name}.trace.json") for name in ("git-clone", "git-clone-bare", "git-clone-shallow")
]
CURL = str(REPOSITORY / "traces" / "curl-fetch.trace.json")
CARGO = str(REPOSITORY / "traces" / "cargo-build-debug.trace.json")
UNSHARE = str(REPOSITORY / "tests" / "fixtures" / "traces" / "unshare-user-net.trace.json")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_a_syscall_with_its_programs_counts_runs_and_first_use() -> None:
    result = invoke("explain", *GIT, "link")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "link: syscall, allowed by a generated policy"
    assert lines[1] == "  12× in 3/3 runs by /usr/bin/git, /usr/lib/git-core/git"
    assert lines[2] == "  first use: 0.035s after its run started"
    assert lines[4] == "runs:"
    assert lines[5].startswith(f"  1  {GIT[0]}: `git clone --quiet ")
    assert len(lines) == 8


def test_a_capability_with_each_path_its_class_syscall_kernel_path_and_asking_function() -> None:
    result = invoke("explain", *GIT, "cap_dac_override")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[:3] == [
        "CAP_DAC_OVERRIDE: capability, attempted and refused: left out, since granting it would change what the "
        "workload does",
        "  denied (attempted and refused): /usr/bin/git in link, asked by generic_permission, 10× in runs 1, 2",
        "    kernel path: __x64_sys_link → do_linkat → may_linkat → inode_permission → generic_permission → "
        "capable_wrt_inode_uidgid → security_capable → cap_capable",
    ]


def test_an_inferred_capability_says_why_instead_of_a_kernel_path() -> None:
    lines = invoke("explain", UNSHARE, "CAP_SETFCAP").stdout.splitlines()
    assert lines[1] == "  needed: /usr/bin/unshare in unshare, asked by create_user_ns, 1× in run 1"
    assert lines[2].startswith(
        "    inferred: root created a user namespace, and mapping root into it needs CAP_SETFCAP"
    )


def test_a_family_with_its_socket_types_and_programs() -> None:
    result = invoke("explain", CURL, "AF_INET")
    assert result.stdout.splitlines()[:4] == [
        "AF_INET (2): address family, allowed by a generated policy",
        "  1× in 1/1 runs by /usr/bin/curl",
        "  socket types: SOCK_STREAM",
        "  made by: socket",
    ]


def test_the_clone_fallback_is_explained_where_clone3_was_seen() -> None:
    thread = str(REPOSITORY / "tests" / "fixtures" / "traces" / "python-thread.trace.json")
    assert invoke("explain", thread, "clone").stdout == (
        "clone: syscall not called in the 1 run; a generated policy allows it where it answers clone3 with ENOSYS "
        "(a systemd drop-in with RestrictNamespaces=, an OCI profile with --args): the C library falls back to clone "
        "when clone3 answers ENOSYS\n"
    )


def test_a_family_made_only_by_socketpair_says_so() -> None:
    lines = invoke("explain", CARGO, "AF_UNIX").stdout.splitlines()
    assert lines[0] == (
        "AF_UNIX (1): address family, made only by socketpair(), which RestrictAddressFamilies= and socket() "
        "filters do not limit"
    )
    assert lines[3] == "  made by: socketpair"


@pytest.mark.parametrize(
    ("item", "line"),
    [
        ("clock_gettime", "clock_gettime: syscall not called in the 3 runs; a generated policy allows it anyway: "
                          "answered by the vDSO where the clocksource allows"),
        ("openat2", "openat2: syscall not called in the 3 runs; a generated policy refuses it with ENOSYS, so that a "
                    "C library that tries it falls back"),
        ("ptrace", "ptrace: syscall not called in the 3 runs; a generated policy refuses it"),
        ("restart_syscall", "restart_syscall: syscall not called in the 3 runs; a generated policy allows it anyway: a "
                            "process stopped and continued (SIGSTOP and SIGCONT, docker pause, a debugger) in a timed "
                            "sleep resumes it through restart_syscall"),
        ("fstatfs", "fstatfs: syscall not called in the 3 runs; a generated OCI or k8s profile allows it: the "
                    "runtime's, not the workload's: runc 1.1.5+ds1 (200/200 starts with no_new_privileges, 200/200 "
                    "without) calls it between loading the filter and the exec"),
        ("CAP_NET_ADMIN", "CAP_NET_ADMIN: capability never checked in the 3 runs; a generated policy leaves it out"),
        ("af_netlink", "AF_NETLINK: no socket of this family in the 3 runs; a generated policy refuses it"),
        ("CLONE_NEWUSER", "user: namespace type not created or joined in the 3 runs; a generated policy refuses it"),
    ],
)  # fmt: skip
def test_an_item_the_traces_never_used_is_one_line(item: str, line: str) -> None:
    result = invoke("explain", *GIT, item)
    assert (result.exit_code, result.stdout) == (0, line + "\n")


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("opneat", "opneat: not a syscall, capability (CAP_*), address family (AF_*) or namespace type"),
        ("CAP_FLY", "CAP_FLY: not a capability profiler knows"),
        ("AF_CARRIER_PIGEON", "AF_CARRIER_PIGEON: not an address family profiler knows"),
        ("99999", "99999: libseccomp 2.5.4 knows no syscall 99999 on x86_64, and no trace called it"),
    ],
)
def test_an_unknown_item_is_one_line_and_exit_2(item: str, message: str) -> None:
    result = invoke("explain", *GIT, item)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(f"profiler: error: {message}") and result.stderr.count("\n") == 1


def test_a_syscall_number_names_its_syscall() -> None:
    assert invoke("explain", *GIT, "86").stdout == invoke("explain", *GIT, "link").stdout
