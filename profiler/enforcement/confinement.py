"""What `profiler run` applies to a command: a frozen description, by name, that the launcher enforces.

    Confinement      everything below, for one command
    Account          the user and group the command runs as (supplementary groups are always cleared)
    SeccompRules     the syscall list, the settings that refuse syscalls whatever it says, the ABIs, socket()
                     by family and clone/unshare/setns by namespace type; answer() says what refuses a call
    Capabilities     the bounding, ambient and inheritable sets; refused_by() says which setting keeps one out
    FileSystem       PrivateTmp=, PrivateDevices=, ProtectSystem=, ProtectHome=, ReadWritePaths=
    Answer           how a refusal is answered (an errno, or killing the process) and which setting gave it

Names are the kernel's (CAP_*, AF_*, CLONE_NEW*, libseccomp's syscall and ABI names), so that the model says what
a policy means without any policy format; profiler.pipeline builds it from a Policy.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from profiler import abi

SYS_SOCKET = 1  # socketcall's call number for socket() (include/uapi/linux/net.h)


@dataclass(frozen=True, slots=True)
class Answer:
    """How a refused call is answered, and the setting that refuses it (as the report names it)."""

    errno: str | None  # EPERM, ENOSYS...; None: the process is killed (SIGSYS)
    setting: str  # SystemCallFilter=, RestrictAddressFamilies=, ProtectClock=yes (unit.service:12)


@dataclass(frozen=True, slots=True)
class SyscallList:
    """An allow-list (every other syscall refused with `answer`) or a deny-list (only these refused)."""

    allow_list: bool
    names: frozenset[str]  # allowed ones in an allow-list, refused ones in a deny-list
    answer: Answer
    answers: tuple[tuple[str, Answer], ...] = ()  # refused with an answer of their own (clone3:ENOSYS)

    def refusal(self, name: str) -> Answer | None:
        own = dict(self.answers).get(name)
        if own is not None:
            return own
        return None if (name in self.names) == self.allow_list else self.answer


@dataclass(frozen=True, slots=True)
class SeccompRules:
    """The seccomp side of a policy. Each restriction refuses on its own; where several refuse one call, the
    last in the order below answers, as the last-loaded filter does under systemd (it loads SystemCallFilter=
    after the others: src/core/execute.c)."""

    # Answered ENOSYS or an errno whatever the list says, in the order their settings load (ProtectClock=...).
    overrides: tuple[tuple[str, Answer], ...] = ()
    families: frozenset[str] | None = None  # socket() only for these AF_* names; None: any
    family_answer: Answer = Answer("EAFNOSUPPORT", "RestrictAddressFamilies=")
    namespaces: frozenset[str] | None = None  # CLONE_NEW* allowed in clone, unshare and setns; None: any
    namespace_answer: Answer = Answer("EPERM", "RestrictNamespaces=")
    syscalls: SyscallList | None = None
    abis: frozenset[str] | None = None  # the ABIs whose syscalls may run (libseccomp names); None: every one
    abi_answer: Answer = Answer(None, "SystemCallArchitectures=")  # a call of another ABI kills, as systemd's

    @property
    def filters(self) -> bool:
        return bool(self.overrides) or any(
            each is not None for each in (self.families, self.namespaces, self.syscalls, self.abis)
        )

    def answer(self, name: str, arguments: Sequence[int], multiplexed: bool = False) -> Answer | None:
        """What refuses a call with these arguments, or None when everything allows it. multiplexed: made in an
        ABI that also multiplexes socket() through socketcall(), where no family can be tested
        (seccomp_filter), so that socket() is refused whole."""
        answers = [answer for syscall, answer in self.overrides if syscall == name]
        if self.families is not None and name == "socket" and (multiplexed or not self._family_allowed(arguments[0])):
            answers.append(self.family_answer)
        if self.families is not None and name == "socketcall" and arguments[0] == SYS_SOCKET:
            answers.append(self.family_answer)
        if self.namespaces is not None and not self._namespaces_allowed(name, arguments):
            # clone3 passes its flags in memory, where seccomp cannot look: refused whole, with ENOSYS so that
            # libc falls back to clone, whose flags it can (seccomp_restrict_namespaces, src/shared/seccomp-util.c)
            answers.append(
                Answer("ENOSYS", self.namespace_answer.setting) if name == "clone3" else self.namespace_answer
            )
        listed = self.syscalls.refusal(name) if self.syscalls is not None else None
        if listed is not None:
            answers.append(listed)
        killing = [each for each in answers if each.errno is None]
        return killing[-1] if killing else answers[-1] if answers else None

    def _family_allowed(self, number: int) -> bool:
        assert self.families is not None
        name = abi.address_family_name(number & 0xFFFFFFFF)
        return name is not None and name in self.families

    def refused_namespace_mask(self) -> int:
        assert self.namespaces is not None
        return sum(bit for bit, name in abi.NAMESPACE_FLAGS.items() if name not in self.namespaces)

    def _namespaces_allowed(self, name: str, arguments: Sequence[int]) -> bool:
        refused = self.refused_namespace_mask()
        match name:
            case "clone" | "unshare":
                # CLONE_NEWTIME shares its bit with clone()'s exit signal (CSIGNAL), as systemd also ignores
                flags = arguments[0] & ~0xFF if name == "clone" else arguments[0]
                return flags & refused & 0xFFFFFFFF == 0
            case "setns":
                # setns(fd, 0) joins whatever type fd is: allowed only where every type is
                nstype = arguments[1] & 0xFFFFFFFF
                return (nstype == 0 and refused == 0) or (nstype in abi.NAMESPACE_FLAGS and not nstype & refused)
            case "clone3":
                return refused == 0  # its flags are in memory, where seccomp cannot look
        return True


class ProtectSystem(StrEnum):
    NO = "no"
    YES = "yes"  # /usr, /boot, /efi read-only
    FULL = "full"  # and /etc
    STRICT = "strict"  # everything but /dev, /proc, /sys


class ProtectHome(StrEnum):
    NO = "no"
    YES = "yes"  # /home, /root, /run/user empty and inaccessible
    READ_ONLY = "read-only"
    TMPFS = "tmpfs"  # empty, writable


@dataclass(frozen=True, slots=True)
class FileSystem:
    private_tmp: bool = False
    private_devices: bool = False
    protect_system: ProtectSystem = ProtectSystem.NO
    protect_home: ProtectHome = ProtectHome.NO
    read_write_paths: tuple[str, ...] = ()  # absolute; writable under ProtectSystem= and ProtectHome=read-only

    @property
    def changes_anything(self) -> bool:
        return self != FileSystem()


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True, slots=True)
class Capabilities:
    bounding: frozenset[str]  # CAP_* names the bounding set keeps
    ambient: frozenset[str] = frozenset()  # raised across the change of user and the exec; also inheritable
    # The settings that took a capability out of the bounding set, where it is not the bounding set's own:
    # (CAP_SYS_TIME, ProtectClock=yes (unit.service:12))
    taken: tuple[tuple[str, str], ...] = ()
    bounding_setting: str = "CapabilityBoundingSet="

    def refused_by(self, name: str, account: "Account | None") -> str | None:
        """The setting that keeps a capability from the command, or None where the policy grants it (a check
        that fails then fails for a reason of its own: a user namespace, another process's credentials)."""
        if name not in self.bounding:
            return dict(self.taken).get(name, self.bounding_setting)
        if account is not None and account.uid != 0 and name not in self.ambient:
            return f"User={account.name} without AmbientCapabilities={name}"
        return None


ALL_CAPABILITIES = frozenset(abi.CAPABILITIES)


@dataclass(frozen=True, slots=True)
class Confinement:
    """A command runs in new PID, IPC and mount namespaces whatever the policy says; the rest is the policy's."""

    account: Account | None = None  # None: as profiler's own user
    capabilities: Capabilities = Capabilities(ALL_CAPABILITIES)
    no_new_privileges: bool = False
    seccomp: SeccompRules = field(default_factory=SeccompRules)
    private_network: bool = False  # a network namespace of its own, with only its loopback, up
    file_system: FileSystem = field(default_factory=FileSystem)
    # Where the policy came from, for the report: unit.service (systemd)
    source: str = ""
