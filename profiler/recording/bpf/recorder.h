/* Layouts shared by recorder.bpf.c and profiler/recording/tracer.py (which mirrors them with ctypes). */
#ifndef PROFILER_RECORDER_H
#define PROFILER_RECORDER_H

/* Dense per-image syscall counters cover numbers below this; others go to the overflow table. */
#define ROW_SYSCALLS 512
#define PATH_LEN 256
#define ARGV0_LEN 64
#define NO_SYSCALL 0xffffffffu
#define NO_ROW 0
#define COMPAT_NO 0
#define COMPAT_YES 1 /* a 32-bit process on a 64-bit kernel: its syscall numbers are the compat ABI's */
#define COMPAT_UNKNOWN 2
/* A path as a syscall names it, NUL included: PATH_MAX. */
#define FILE_PATH_LEN 4096
/* Names (of a path, a directory, an open file) are 64-bit hashes, see name_of; where the kernel side does not know
 * the directory a process names a path in, the name stands for that directory until user space reads it in /proc:
 * CWD_MARK | serial, the starting working directory of an adopted process (serial 0: of profiler, which the
 * launched command inherits); FD_MARK | serial << 20 | fd, a file descriptor it did not see opened. */
#define CWD_MARK 0x8000000000000000
#define FD_MARK 0x4000000000000000
#define NO_NAME 0

/* procs[tgid].state */
enum proc_state {
	PROC_UNTRACED = 0,
	PROC_ACTIVE = 1,
	PROC_ADOPT = 2,     /* attach mode: activate at its next event */
	PROC_WAIT_EXEC = 3, /* the launched command between fork and execve: not the workload yet */
	PROC_ACTIVATING = 4,
};

struct proc {
	__u64 state;     /* enum proc_state; 64 bits for the atomic compare-and-swap of adoption */
	__u32 serial;    /* the trace's process id, unique even when pids are reused */
	__u32 row;       /* dense counter row + 1, or NO_ROW to count in the overflow table */
	__u32 image;     /* how many execve this process made while traced */
	__s32 exit_code; /* from exit/exit_group, -1 before */
	__s32 exit_signal;
	__u32 exiting;   /* exit_group was called: the SIGKILLs its threads get are not a cause of death */
	__s32 sent_signal; /* the last fatal-by-default signal sent to it, not yet handled */
	__u32 compat;      /* runs 32-bit code: its syscall numbers are the compat ABI's */
	__u32 pad;
	__u64 cwd;         /* the name of its working directory */
};

/* A row holds the first-use times too, so that a syscall's first use costs no event. */
struct syscall_row {
	__u64 count[ROW_SYSCALLS];
	__u64 first_ns[ROW_SYSCALLS];
};

enum drop_counter {
	DROP_EVENTS,
	DROP_SYSCALLS,
	DROP_CAPABILITY_CHECKS,
	DROP_KERNEL_STACKS,
	DROP_SOCKETS,
	DROP_NAMESPACES,
	DROP_PROCESSES,
	DROP_PATHS,
	DROP_KERNEL_USES,
	DROP_COUNTERS,
};

/* What the observations table aggregates; each kind is numbered as the drop counter of its table-full case. */
enum observation_kind {
	OBSERVE_SYSCALL = DROP_SYSCALLS,       /* a syscall outside the dense rows: syscall_nr */
	OBSERVE_CAPABILITY = DROP_CAPABILITY_CHECKS, /* a = cap, b = ret, c = stack id, d = target_ns, e = noaudit */
	OBSERVE_SOCKET = DROP_SOCKETS,         /* a = family, b = type, c = protocol */
	OBSERVE_NAMESPACE = DROP_NAMESPACES,   /* a = CLONE_NEW* flags */
	OBSERVE_FILE = DROP_PATHS,             /* in the files table: a = enum file_op, b = errno, c = name */
	OBSERVE_KERNEL = DROP_KERNEL_USES,     /* a = prot, persona, policy or address family; b = port;
						  c, d = the address's 16 bytes (an IPv4 one in c) */
};

/* What a syscall did to a path (profiler.trace.FileOp); CHDIR only tells user space a working directory's name. */
enum file_op {
	FILE_READ,
	FILE_WRITE,
	FILE_CREATE,
	FILE_DELETE,
	FILE_RENAME,
	FILE_LINK,
	FILE_CHMOD,
	FILE_SETID,
	FILE_EXEC,
	FILE_MAP_EXEC,
	FILE_LIST,
	FILE_CHDIR,
	FILE_NONE,
};

/* noaudit in a capability observation: 0 or 1 where the probe sees the options (kprobe), 2 where it cannot. */
#define NOAUDIT_UNKNOWN 2

struct observation_key {
	__u32 kind;
	__u32 serial;
	__u32 image;
	__u32 syscall_nr; /* NO_SYSCALL outside a syscall */
	__s64 a;
	__s64 b;
	__s64 c;
	__s64 d;
	__s64 e;
};

enum event_kind {
	EVENT_FORK = 1,     /* a traced process created a process */
	EVENT_EXEC = 2,     /* a traced process ran execve; image is the new image */
	EVENT_EXIT = 3,     /* the last thread of a traced process exited */
	EVENT_ATTACH = 4,   /* a running process was adopted (attach mode) */
	EVENT_SYSCALL = 5,  /* first use of a syscall counted outside the dense rows */
	EVENT_PATH = 6,     /* first sight of a file access: the name and how to read it */
};

struct event_header {
	__u32 kind;
	__u32 serial;
	__u64 time_ns;
};

struct syscall_event {
	struct event_header header;
	__u32 image;
	__u32 pad;
	__u64 nr;
};

struct process_event {
	struct event_header header;
	__u32 pid;
	__u32 image;
	__u32 row;            /* the row the process counts in from now on, or NO_ROW */
	__u32 released_row;   /* a row whose counts user space reads, clears and frees, or NO_ROW */
	__u32 parent_serial;  /* EVENT_FORK */
	__u32 parent_image;   /* EVENT_FORK */
	__s32 exit_code;      /* EVENT_EXIT: -1 when the process made no exit call */
	__s32 exit_signal;    /* EVENT_EXIT */
	__u32 first_exec;     /* EVENT_EXEC of the launched command: the workload starts here */
	__u32 compat;         /* EVENT_EXEC, EVENT_ATTACH: COMPAT_NO, COMPAT_YES or COMPAT_UNKNOWN */
	char path[PATH_LEN];  /* EVENT_EXEC */
	char argv0[ARGV0_LEN];
};

/* Sent with only as many bytes of path as length says. */
struct path_event {
	struct event_header header;
	__u32 image;
	__u32 op;      /* enum file_op */
	__s32 error;   /* errno, 0 on success */
	__s32 fd;      /* the file descriptor a name by fd came through, -1 for a path */
	__u64 name;
	__u64 dir;     /* the name of the directory a relative path is in; NO_NAME for an absolute path or by fd */
	__u32 length;  /* of path, NUL included; 0 for an access by fd */
	__u32 pad;
	char path[FILE_PATH_LEN];
};

#endif
