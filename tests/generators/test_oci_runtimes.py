"""The runtimes' calls learned into generators/data/oci-runtime-calls.txt, as the generators read them."""

from generators.oci_runtimes import (
    GO_RUNTIME_CALLS,
    OCI_RUNTIMES,
    RuntimeCall,
    runtime_calls,
    runtime_reason,
    runtime_versions,
)
from profiler import syscalls


def test_every_runtime_has_its_versions_and_calls_that_name_syscalls() -> None:
    assert set(runtime_versions()) == set(OCI_RUNTIMES)
    calls = runtime_calls(OCI_RUNTIMES)
    assert {call.runtime for call in calls} == set(OCI_RUNTIMES)
    assert all(syscalls.syscall_number(syscalls.native_abi(), call.syscall) is not None for call in calls)
    assert all("execve" in {call.syscall for call in calls if call.runtime == name} for name in OCI_RUNTIMES)
    assert runtime_calls(()) == ()


def test_runc_is_written_in_go_and_gets_the_go_runtimes_calls_whether_recorded_or_not() -> None:
    runc = {call.syscall: call for call in runtime_calls(("runc",))}
    assert set(GO_RUNTIME_CALLS) <= set(runc)
    assert runc["sched_yield"].by_go_runtime and runc["sched_yield"].with_nnp is None
    assert not any(call.by_go_runtime for call in runtime_calls(("crun",)))


def test_the_reason_says_whose_call_it_is_and_with_which_setting() -> None:
    call = RuntimeCall("crun", "1.8.1", "setresuid", None, "200/200")
    assert runtime_reason([call]) == (
        "the runtime's, not the workload's: crun 1.8.1 (without no_new_privileges: 200/200 starts) calls it between "
        "loading the filter and the exec"
    )
    both = RuntimeCall("runc", "1.1.5", "futex", "25/200", "28/200", by_go_runtime=True)
    assert runtime_reason([both, call]).startswith(
        "the runtime's, not the workload's: runc 1.1.5 (25/200 starts with no_new_privileges, 28/200 without; its "
        "Go runtime can at any time) and crun 1.8.1"
    )
