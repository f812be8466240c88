"""The consumer of OCI seccomp profiles, for tests: libseccomp, fed the way runc feeds it, then the kernel or its BPF.

    syscall_filter(document)        a seccomp.SyscallFilter built as runc builds it from linux.seccomp
    bpf_program(filter_)            the classic BPF program libseccomp compiles from it
    run_bpf(program, nr, args)      the action that program returns for one syscall (an interpreter of what
                                    libseccomp emits), so tests can ask what the filter does without loading it

Run as a program it loads a profile and executes a command under it, as a container runtime would:

    python tests/generators/seccomp/oci_libseccomp.py PROFILE.json /bin/ls /
"""

import json
import os
import struct
import sys
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import seccomp

_OPERATORS = {
    "SCMP_CMP_NE": seccomp.NE,
    "SCMP_CMP_LT": seccomp.LT,
    "SCMP_CMP_LE": seccomp.LE,
    "SCMP_CMP_EQ": seccomp.EQ,
    "SCMP_CMP_GE": seccomp.GE,
    "SCMP_CMP_GT": seccomp.GT,
    "SCMP_CMP_MASKED_EQ": seccomp.MASKED_EQ,
}
EPERM = 1


def action(name: str, errno_ret: int | None) -> int:
    """libseccomp's value of an OCI action; ERRNO and TRACE default to EPERM, as the runtime-spec says."""
    match name:
        case "SCMP_ACT_ERRNO":
            return int(seccomp.ERRNO(EPERM if errno_ret is None else errno_ret))
        case "SCMP_ACT_TRACE":
            return int(seccomp.TRACE(EPERM if errno_ret is None else errno_ret))
        case "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD":
            return int(seccomp.KILL)
        case _:
            return int(getattr(seccomp, name.removeprefix("SCMP_ACT_")))


def syscall_filter(document: Mapping[str, Any]) -> seccomp.SyscallFilter:
    """The filter runc builds (libcontainer/seccomp/seccomp_linux.go): the native ABI plus those listed; rules that
    do what the default does, and names libseccomp does not know, skipped."""
    default = action(document["defaultAction"], document.get("defaultErrnoRet"))
    built = seccomp.SyscallFilter(default)
    for name in document.get("architectures", []):
        arch = getattr(seccomp.Arch, name.removeprefix("SCMP_ARCH_"))
        if not built.exist_arch(arch):
            built.add_arch(arch)
    for rule in document.get("syscalls", []):
        chosen = action(rule["action"], rule.get("errnoRet"))
        if chosen == default:
            continue
        args = [
            seccomp.Arg(arg["index"], _OPERATORS[arg["op"]], arg["value"], arg.get("valueTwo", 0))
            for arg in rule.get("args", [])
        ]
        indexes = [arg["index"] for arg in rule.get("args", [])]
        # runc: an argument compared more than once makes each comparison a rule of its own
        groups = [[arg] for arg in args] if len(set(indexes)) < len(indexes) else [args]
        for name in rule["names"]:
            for group in groups:
                try:
                    built.add_rule(chosen, name, *group)
                except (RuntimeError, ValueError):
                    break  # runc: "unknown seccomp syscall ignored"
    return built


def bpf_program(built: seccomp.SyscallFilter) -> list[tuple[int, int, int, int]]:
    """The instructions (code, jt, jf, k) of the compiled filter."""
    with tempfile.TemporaryFile() as output:
        built.export_bpf(output)
        output.seek(0)
        data = output.read()
    return [struct.unpack("=HBBI", data[offset : offset + 8]) for offset in range(0, len(data), 8)]


AUDIT_ARCH_X86_64 = 0xC000003E


def run_bpf(
    program: Sequence[tuple[int, int, int, int]], nr: int, args: Sequence[int] = (), arch: int = AUDIT_ARCH_X86_64
) -> int:
    """The value the program returns for struct seccomp_data {nr, arch, ip = 0, args}."""
    values = list(args) + [0] * (6 - len(args))
    data = struct.pack("=iIQ6Q", nr, arch, 0, *values)
    accumulator = pc = 0
    memory = [0] * 16
    while True:
        code, jump_true, jump_false, k = program[pc]
        pc += 1
        match code:
            case 0x20:  # ld [k]
                accumulator = struct.unpack_from("=I", data, k)[0]
            case 0x00:  # ld #k
                accumulator = k
            case 0x60:  # ld M[k]
                accumulator = memory[k]
            case 0x02:  # st M[k]
                memory[k] = accumulator
            case 0x54:  # and #k
                accumulator &= k
            case 0x44:  # or #k
                accumulator |= k
            case 0x05:  # ja k
                pc += k
            case 0x15 | 0x25 | 0x35 | 0x45:  # jeq, jgt, jge, jset #k
                taken = {
                    0x15: accumulator == k,
                    0x25: accumulator > k,
                    0x35: accumulator >= k,
                    0x45: bool(accumulator & k),
                }[code]
                pc += jump_true if taken else jump_false
            case 0x06:  # ret #k
                return k
            case 0x16:  # ret a
                return accumulator
            case _:
                raise NotImplementedError(f"BPF instruction 0x{code:x} is not interpreted")


def main(argv: list[str]) -> None:
    with open(argv[1]) as profile:
        built = syscall_filter(json.load(profile))
    built.load()
    os.execv(argv[2], argv[2:])


if __name__ == "__main__":
    main(sys.argv)
