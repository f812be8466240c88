"""The trace: what one recorded run used, as frozen typed records, and its versioned JSON file format.

A trace is a set of flat tables that reference each other by process id and image index, so that each
table loads straight into a DataFrame and each row is one line of the file (traces diff well in git).
The format is described in docs/trace-format.md; `profiler schema` prints its JSON Schema.

Imports run one way, from the top of this list to the bottom; `from profiler.trace import ...` gives them all:

    reading.py      a trace file or its text (schema 2, or 1 through v1.py) into a validated Trace: parse, load
    schema.py       the JSON Schema of the file, from the columns
    v1.py           schema 1 (rows as objects, names beside numbers, seconds) into the model
    validation.py   checked columns into the model's rows; references, cycles and syscall names across tables
    model.py        Trace: the run and its tables, with lookups, written as JSON or to a file
    writing.py      schema 2 writing (one row a line), and saving where it can (save_or_rescue)
    columns.py      schema 2: what each column of each table and each run field may hold, and the bounds
    rows.py         the records: RunInfo, DropCounters, Process, Image, one row type per table, their enums
"""

from profiler.trace.columns import (
    ARGUMENT_LIMIT,
    CAPABILITY_CHECK_COLUMNS,
    FILE_ACCESS_COLUMNS,
    IMAGE_COLUMNS,
    INT64_MAX,
    KERNEL_STACK_COLUMNS,
    KERNEL_USE_COLUMNS,
    NAMESPACE_COLUMNS,
    PATH_COUNTERS,
    PATH_LIMIT,
    PATH_TABLES,
    PID_LIMIT,
    PROCESS_COLUMNS,
    ROW_ID_LIMIT,
    SCHEMA_NAME,
    SCHEMA_VERSION,
    SOCKET_COLUMNS,
    SYSCALL_COLUMNS,
    SYSCALL_NAME_COLUMNS,
    TABLES,
    TIME_LIMIT_US,
    UINT32_MAX,
)
from profiler.trace.model import Trace
from profiler.trace.reading import error_location, load, parse
from profiler.trace.rows import (
    NAMESPACE_SYSCALLS,
    SOCKET_SYSCALLS,
    CapabilityCheck,
    CapabilitySource,
    CheckClass,
    DropCounters,
    EndReason,
    FileAccess,
    FileOp,
    Image,
    KernelInterfaceUse,
    KernelStack,
    KernelUse,
    NamespaceSyscall,
    NamespaceUse,
    Process,
    RecordingMode,
    RunInfo,
    SocketSyscall,
    SocketUse,
    SyscallUse,
)
from profiler.trace.schema import json_schema
from profiler.trace.validation import is_normal_path
from profiler.trace.writing import SavedTrace, rescue_directories, save_or_rescue

__all__ = [
    "ARGUMENT_LIMIT",
    "CAPABILITY_CHECK_COLUMNS",
    "FILE_ACCESS_COLUMNS",
    "IMAGE_COLUMNS",
    "INT64_MAX",
    "KERNEL_STACK_COLUMNS",
    "KERNEL_USE_COLUMNS",
    "NAMESPACE_COLUMNS",
    "NAMESPACE_SYSCALLS",
    "PATH_COUNTERS",
    "PATH_LIMIT",
    "PATH_TABLES",
    "PID_LIMIT",
    "PROCESS_COLUMNS",
    "ROW_ID_LIMIT",
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "SOCKET_COLUMNS",
    "SOCKET_SYSCALLS",
    "SYSCALL_COLUMNS",
    "SYSCALL_NAME_COLUMNS",
    "TABLES",
    "TIME_LIMIT_US",
    "UINT32_MAX",
    "CapabilityCheck",
    "CapabilitySource",
    "CheckClass",
    "DropCounters",
    "EndReason",
    "FileAccess",
    "FileOp",
    "Image",
    "KernelInterfaceUse",
    "KernelStack",
    "KernelUse",
    "NamespaceSyscall",
    "NamespaceUse",
    "Process",
    "RecordingMode",
    "RunInfo",
    "SavedTrace",
    "SocketSyscall",
    "SocketUse",
    "SyscallUse",
    "Trace",
    "error_location",
    "is_normal_path",
    "json_schema",
    "load",
    "parse",
    "rescue_directories",
    "save_or_rescue",
]
