"""The errors profiler raises, one branch per concern; the CLI prints any of them as one line and exits 2.

    ProfilerError                   anything the user can act on; str() is the whole line: what, where, what to do
    ├── TracingError                recording cannot start: not root, no BPF, a missing tracepoint, no kernel headers
    ├── WorkloadError               the workload cannot be started: command not found, unknown user, bad PID or cgroup
    ├── TraceFormatError            a trace file is unreadable, truncated, foreign, or from a newer profiler
    ├── SyscallTableError           syscall names cannot be looked up on this machine
    │   ├── LibseccompMissingError  the libseccomp Python module is not installed
    │   ├── UnknownAbiError         libseccomp does not know an ABI
    │   └── UnsupportedArchitectureError  profiler knows no ABI for this machine's architecture
    ├── ProfileError                the traces or profiles given cannot make the profile asked for
    │   ├── NoTraceError            no trace given at all
    │   ├── ComponentError          the component is not in them, is another one, or must be chosen among several
    │   └── MixedAbiError           the traces come from machines of different ABIs
    ├── RenderError                 no policy can be written for this profile with these options
    │   ├── NotANameError           the profile holds, where a policy writes a name, text that is not one
    │   └── RenderOptionError       an option's value cannot go into the policy (a namespace, a file name)
    ├── OptionError                 an option does not apply to the others given (a format, a policy): usage
    ├── UnknownItemError            the item to explain is no syscall, capability, family or namespace type
    ├── PolicyError                 a deployed policy cannot be used
    │   └── PolicyParseError        a policy file cannot be read: one line, with file and line where known
    ├── OutputError                 an output cannot be written, or would overwrite a file without --force
    └── EnforcementError            `run` cannot confine the command as the policy says: it is not started

Every raise raises a leaf; the branches are there to be caught. Expected gaps inside a trace (an unresolved
syscall number, an unreadable kernel stack) are not errors: they are values in the model, with their reason.
"""


class ProfilerError(Exception):
    """Base of every error the CLI turns into one line and exit status 2."""


class TracingError(ProfilerError):
    """The kernel side of recording cannot be set up on this machine."""


class WorkloadError(ProfilerError):
    """The command, user, PID or cgroup to record cannot be used."""


class TraceFormatError(ProfilerError):
    """A file is not a trace this version of profiler can read."""


class SyscallTableError(ProfilerError):
    """Syscall names and numbers cannot be looked up: libseccomp or this machine cannot answer."""


class LibseccompMissingError(SyscallTableError):
    """The libseccomp Python module (Debian's python3-seccomp) cannot be imported."""


class UnknownAbiError(SyscallTableError):
    """This libseccomp build does not know an ABI."""


class UnsupportedArchitectureError(SyscallTableError):
    """profiler knows no syscall ABI for this machine's architecture."""


class ProfileError(ProfilerError):
    """The traces or profiles given cannot make the profile asked for."""


class NoTraceError(ProfileError):
    """No trace was given."""


class ComponentError(ProfileError):
    """The component asked for is not in the inputs, an input is of another one, or one must be chosen."""


class MixedAbiError(ProfileError):
    """The traces of one component come from machines of different ABIs."""


class RenderError(ProfilerError):
    """No policy can be written for this profile with these options."""


class NotANameError(RenderError):
    """A profile holds, where a policy writes a name, text that is not one."""


class RenderOptionError(RenderError):
    """An option's value cannot go into the policy: a Kubernetes name, a file name."""


class OptionError(ProfilerError):
    """An option that does not apply to the others given (a format, a policy); the CLI reports it as usage."""


class UnknownItemError(ProfilerError):
    """The item to explain is not a syscall, capability, address family or namespace type."""


class PolicyError(ProfilerError):
    """A deployed policy cannot be used."""


class PolicyParseError(PolicyError):
    """A policy file cannot be read; the message names the file (and line) and what to do."""


class OutputError(ProfilerError):
    """An output file cannot be written."""


class EnforcementError(ProfilerError):
    """A command cannot be confined as the policy says; it is not started."""
