"""The errors profiler raises, one branch per concern; the CLI prints any of them as one line and exits 2.

    ProfilerError            anything the user can act on; str() is the whole line: what, where, what to do
    ├── TracingError         recording cannot start: not root, no BPF, a missing tracepoint, no kernel headers
    ├── WorkloadError        the workload cannot be started: command not found, unknown user, bad PID or cgroup
    ├── TraceFormatError     a trace file is unreadable, truncated, foreign, or from a newer profiler
    ├── PolicyError          a deployed policy file cannot be read (generators.interface.PolicyParseError)
    ├── OutputError          an output cannot be written, or would overwrite a file without --force
    └── EnforcementError     `run` cannot confine the command as the policy says: it is not started

Expected gaps inside a trace (an unresolved syscall number, an unreadable kernel stack) are not errors:
they are values in the model, with their reason.
"""


class ProfilerError(Exception):
    """Base of every error the CLI turns into one line and exit status 2."""


class TracingError(ProfilerError):
    """The kernel side of recording cannot be set up on this machine."""


class WorkloadError(ProfilerError):
    """The command, user, PID or cgroup to record cannot be used."""


class TraceFormatError(ProfilerError):
    """A file is not a trace this version of profiler can read."""


class PolicyError(ProfilerError):
    """A policy file cannot be read."""


class OutputError(ProfilerError):
    """An output file cannot be written."""


class EnforcementError(ProfilerError):
    """A command cannot be confined as the policy says; it is not started."""
