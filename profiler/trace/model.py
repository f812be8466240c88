"""The Trace: one recorded run and its tables, with the lookups across them, written as JSON or to a file."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from profiler.files import PRIVATE, write_text_atomically
from profiler.trace.columns import (
    SCHEMA_NAME,
    SCHEMA_VERSION,
)
from profiler.trace.rows import (
    CapabilityCheck,
    FileAccess,
    Image,
    KernelInterfaceUse,
    KernelStack,
    NamespaceUse,
    Process,
    RunInfo,
    SocketUse,
    SyscallUse,
)
from profiler.trace.writing import (
    _render,
)


@dataclass(frozen=True, slots=True)
class Trace:
    run: RunInfo
    processes: tuple[Process, ...]
    syscalls: tuple[SyscallUse, ...]
    capability_checks: tuple[CapabilityCheck, ...]
    kernel_stacks: tuple[KernelStack, ...]
    sockets: tuple[SocketUse, ...]
    namespaces: tuple[NamespaceUse, ...]
    # None where the run did not record files and kernel interfaces (a version 1 trace, `record --no-paths`):
    # "not recorded" is not "nothing touched". Both are None or neither.
    file_accesses: tuple[FileAccess, ...] | None = None
    kernel_uses: tuple[KernelInterfaceUse, ...] | None = None
    schema: Literal["profiler-trace"] = SCHEMA_NAME
    schema_version: Literal[2] = SCHEMA_VERSION
    _by_id: dict[int, Process] = field(init=False, repr=False, compare=False)
    _stacks: dict[int, KernelStack] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.file_accesses is None) != (self.kernel_uses is None):
            raise ValueError("file_accesses and kernel_uses are recorded together: give both or neither")
        object.__setattr__(self, "_by_id", {process.id: process for process in self.processes})
        object.__setattr__(self, "_stacks", {stack.id: stack for stack in self.kernel_stacks})

    def process(self, process_id: int) -> Process:
        return self._by_id[process_id]

    def image(self, process_id: int, image: int) -> Image:
        return self._by_id[process_id].images[image]

    def program(self, process_id: int, image: int) -> str:
        """The path of the program a row was recorded in."""
        return self.image(process_id, image).path

    def stack(self, stack_id: int | None) -> KernelStack | None:
        return None if stack_id is None else self._stacks[stack_id]

    def to_json(self) -> str:
        return _render(self)

    def save(self, path: Path | str, *, overwrite: bool = False) -> None:
        """Write the trace atomically, readable by its owner only; an existing file is an OutputError unless
        overwrite, and anything but a regular file is one always."""
        write_text_atomically(Path(path), self.to_json(), overwrite=overwrite, mode=PRIVATE)
