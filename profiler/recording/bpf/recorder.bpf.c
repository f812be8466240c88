/* The kernel side of `profiler record`: follows a process tree and aggregates, in the kernel, the syscalls,
 * capability checks, socket families and namespace operations of each process image, and (RECORD_PATHS) the
 * paths it names with what it did to them, and the kernel interfaces it reaches other than by a path.
 *
 * Tracepoints only (kprobes only with CAP_KPROBE, on kernels without the cap_capable tracepoint), so that it
 * compiles against kernel headers that do not match the running kernel: the perf tracepoints take their
 * argument layouts from tracefs, and the raw ones (sys_enter, cap_capable, sched_process_exit) pass scalars,
 * pointers that are only compared, and the user registers, whose struct pt_regs is ABI. No kernel structure
 * is read field by field. User space (profiler/recording/tracer.py) prepends:
 *   PID_MAX ROWS OBSERVATION_ENTRIES FILE_ENTRIES FD_PROCESSES STACK_ENTRIES RINGBUF_PAGES UNREAD_PATH_BYTES
 *   SELF_TGID FATAL_SIGNALS,
 *   the native numbers NR_EXECVE NR_EXECVEAT NR_EXIT NR_EXIT_GROUP NR_SOCKET NR_SOCKETPAIR NR_UNSHARE NR_SETNS
 *   NR_SOCKETCALL and their 32-bit counterparts COMPAT_NR_*, the native numbers of the path and kernel-use calls
 *   (NR_OPENAT, ...: PATH_CALLS below; a number no syscall has where the call's exit cannot be traced),
 *   and the switches  CAP_TRACEPOINT | CAP_KPROBE, HAVE_GROUP_DEAD,
 *   HAVE_TASK_PT_REGS, CGROUP_MODE, ARCH_X86_64 | ARCH_ARM64, RECORD_PATHS.
 * With RECORD_PATHS, user space attaches path_exit to syscalls:sys_exit_<call> of each of those calls.
 */
#include <uapi/linux/ptrace.h>
#include "recorder.h"

/* bpf_probe_read_user and _str by their helper numbers, under names BCC does not know: at each call of those
 * names, BCC checks that the kernel has them (for kernels before 5.5) by building a table of all of
 * /proc/kallsyms's 120,000 names again, 40 ms a call site here, 0.13 s of every start. The ring buffer already
 * needs 5.8. */
static long (*read_user)(void *dst, u32 size, const void *user_pointer) = (void *)BPF_FUNC_probe_read_user;
static long (*read_user_str)(void *dst, u32 size, const void *user_pointer) = (void *)BPF_FUNC_probe_read_user_str;

#define CLONE_THREAD_FLAG 0x00010000ULL
#define NAMESPACE_FLAGS 0x7e020080ULL /* CLONE_NEW{TIME,NS,CGROUP,UTS,IPC,USER,PID,NET} */

struct argv0 {
	char text[ARGV0_LEN];
};

BPF_ARRAY(procs, struct proc, PID_MAX);
BPF_ARRAY(rows, struct syscall_row, ROWS);
BPF_QUEUE(free_rows, u32, ROWS);
BPF_HASH(observations, struct observation_key, u64, OBSERVATION_ENTRIES);
/* File accesses (OBSERVE_FILE) in a table of their own: a run that touches many files crowds out nothing else. */
BPF_HASH(files, struct observation_key, u64, FILE_ENTRIES);
BPF_STACK_TRACE(stacks, STACK_ENTRIES);
BPF_TABLE("lru_hash", u32, struct argv0, pending_argv0, 1024);
BPF_ARRAY(drops, u64, DROP_COUNTERS);
BPF_ARRAY(next_serial, u64, 1);
/* Set by user space only while it starts the command, so that its child (and nothing else) waits for exec. */
BPF_ARRAY(spawning, u32, 1);
BPF_RINGBUF_OUTPUT(events, RINGBUF_PAGES);
#ifdef CGROUP_MODE
BPF_CGROUP_ARRAY(target_cgroup, 1);
#endif

static __always_inline void drop(u32 counter)
{
	u64 *value = drops.lookup(&counter);
	if (value)
		__sync_fetch_and_add(value, 1);
}

static __always_inline u64 *observation_count(struct observation_key *key)
{
	return key->kind == OBSERVE_FILE ? files.lookup(key) : observations.lookup(key);
}

/* Counts one more of an observation; returns true when it is the first. */
static __always_inline bool observe(struct observation_key *key)
{
	u64 *value = observation_count(key);
	if (value) {
		__sync_fetch_and_add(value, 1);
		return false;
	}
	u64 one = 1;
	if ((key->kind == OBSERVE_FILE ? files.insert(key, &one) : observations.insert(key, &one)) == 0)
		return true;
	value = observation_count(key); /* another CPU inserted it first */
	if (value)
		__sync_fetch_and_add(value, 1);
	else
		drop(key->kind);
	return false;
}

/* The syscall the current task is in, or NO_SYSCALL; capability checks and clone flags are attributed to it. */
static __always_inline u32 current_syscall(void)
{
#ifdef HAVE_TASK_PT_REGS
	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	long nr = -1;
#if defined(ARCH_X86_64)
	bpf_probe_read_kernel(&nr, sizeof(nr), &regs->orig_ax);
#elif defined(ARCH_ARM64)
	int arm_nr = -1;
	bpf_probe_read_kernel(&arm_nr, sizeof(arm_nr), &regs->syscallno);
	nr = arm_nr;
#endif
	return nr < 0 ? NO_SYSCALL : (u32)nr;
#else
	return NO_SYSCALL;
#endif
}

/* Whether the current task runs 32-bit code, from its user registers (set by start_thread before exec ends). */
static __always_inline u32 current_compat(void)
{
#if defined(HAVE_TASK_PT_REGS) && defined(ARCH_X86_64)
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs((struct task_struct *)bpf_get_current_task_btf());
	unsigned long cs = 0;
	bpf_probe_read_kernel(&cs, sizeof(cs), &regs->cs);
	return cs == 0x23 /* __USER32_CS */ ? COMPAT_YES : COMPAT_NO;
#elif defined(HAVE_TASK_PT_REGS) && defined(ARCH_ARM64)
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs((struct task_struct *)bpf_get_current_task_btf());
	u64 pstate = 0;
	bpf_probe_read_kernel(&pstate, sizeof(pstate), &regs->pstate);
	return pstate & 0x10 /* PSR_MODE32_BIT */ ? COMPAT_YES : COMPAT_NO;
#else
	return COMPAT_UNKNOWN;
#endif
}

static __always_inline u32 take_row(void)
{
	u32 row;
	return free_rows.pop(&row) == 0 ? row + 1 : NO_ROW;
}

/* Makes p a traced process with a fresh serial and counter row. */
static __always_inline int activate(struct proc *p)
{
	u32 zero = 0;
	u64 *serial = next_serial.lookup(&zero);
	if (!serial)
		return -1;
	p->serial = __sync_fetch_and_add(serial, 1) + 1;
	p->row = take_row();
	p->image = 0;
	p->exit_code = -1;
	p->exit_signal = 0;
	p->exiting = 0;
	p->sent_signal = 0;
	if (p->cwd == NO_NAME) /* adopted: user space reads its working directory at its attach event */
		p->cwd = CWD_MARK | p->serial;
	p->state = PROC_ACTIVE;
	return 0;
}

/* A process event wakes user space at once, even while path events (which wake no one) wait unread: the end of
 * the command, say, is seen when it comes. */
#define PROCESS_EVENT_WAKEUP BPF_RB_FORCE_WAKEUP

static __always_inline struct process_event *reserve_process_event(u32 kind, struct proc *p, u32 pid)
{
	struct process_event *event = events.ringbuf_reserve(sizeof(struct process_event));
	if (!event) {
		drop(DROP_EVENTS);
		return NULL;
	}
	__builtin_memset(event, 0, sizeof(*event));
	event->header.kind = kind;
	event->header.serial = p->serial;
	event->header.time_ns = bpf_ktime_get_ns();
	event->pid = pid;
	event->image = p->image;
	event->row = p->row;
	event->released_row = NO_ROW;
	return event;
}

/* Attach mode: a process user space marked, or (cgroup mode) any process in the cgroup, joins at its first event. */
static __always_inline bool adopt(u32 tgid, struct proc *p)
{
	bool wanted = p->state == PROC_ADOPT;
#ifdef CGROUP_MODE
	wanted = wanted || (p->state == PROC_UNTRACED && tgid != SELF_TGID && target_cgroup.check_current_task(0) == 1);
#endif
	if (!wanted)
		return false;
	/* Two threads may race here; the one that wins the state activates, the other's event is pre-attach. */
	u64 seen = p->state;
	if (__sync_val_compare_and_swap(&p->state, seen, PROC_ACTIVATING) != seen)
		return false;
	if (activate(p) != 0)
		return false;
	struct process_event *event = reserve_process_event(EVENT_ATTACH, p, tgid);
	p->compat = current_compat() == COMPAT_YES;
	if (event) {
		event->compat = current_compat();
		events.ringbuf_submit(event, PROCESS_EVENT_WAKEUP);
	}
	return true;
}

/* The traced process of the current task, or NULL. */
static __always_inline struct proc *current_proc(u32 tgid)
{
	struct proc *p = procs.lookup(&tgid);
	if (!p)
		return NULL;
	if (p->state == PROC_ACTIVE || adopt(tgid, p))
		return p;
	return NULL;
}

static __always_inline void first_use(struct proc *p, u64 nr)
{
	struct syscall_event event = {};
	event.header.kind = EVENT_SYSCALL;
	event.header.serial = p->serial;
	event.header.time_ns = bpf_ktime_get_ns();
	event.image = p->image;
	event.nr = nr;
	if (events.ringbuf_output(&event, sizeof(event), 0) != 0)
		drop(DROP_EVENTS);
}

static __always_inline void count_syscall(struct proc *p, u64 nr)
{
	if (p->row != NO_ROW && nr < ROW_SYSCALLS) {
		u32 index = p->row - 1;
		struct syscall_row *row = rows.lookup(&index);
		if (row) {
			/* Threads racing on a first use may both stamp it, nanoseconds apart. */
			u64 before = row->count[nr];
			__sync_fetch_and_add(&row->count[nr], 1);
			if (before == 0)
				row->first_ns[nr] = bpf_ktime_get_ns();
			return;
		}
	}
	struct observation_key key = {.kind = OBSERVE_SYSCALL, .serial = p->serial, .image = p->image, .syscall_nr = nr};
	if (observe(&key))
		first_use(p, nr);
}

static __always_inline void record_namespace(struct proc *p, u32 syscall_nr, u64 flags)
{
	struct observation_key key = {.kind = OBSERVE_NAMESPACE, .serial = p->serial, .image = p->image,
				      .syscall_nr = syscall_nr, .a = flags};
	observe(&key);
}

TRACEPOINT_PROBE(task, task_newtask)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	u64 flags = args->clone_flags;
	u32 child = args->pid;
	if (tgid == SELF_TGID) {
		u32 zero = 0;
		u32 *armed = spawning.lookup(&zero);
		if (armed && *armed && !(flags & CLONE_THREAD_FLAG)) {
			struct proc waiting = {.state = PROC_WAIT_EXEC, .cwd = CWD_MARK /* profiler's */};
			if (procs.update(&child, &waiting) != 0)
				drop(DROP_PROCESSES);
		}
		return 0;
	}
	struct proc *p = current_proc(tgid);
	if (!p) {
		/* A launched process that forks before any exec passes the wait on: the workload starts at the first
		 * exec in its tree (run --audit's launcher forks a PID 1, which forks the command). */
		struct proc *waiting = procs.lookup(&tgid);
		if (waiting && waiting->state == PROC_WAIT_EXEC && !(flags & CLONE_THREAD_FLAG)) {
			struct proc fresh = {.state = PROC_WAIT_EXEC};
			if (procs.update(&child, &fresh) != 0)
				drop(DROP_PROCESSES);
		}
		return 0;
	}
	if (flags & NAMESPACE_FLAGS)
		record_namespace(p, current_syscall(), flags & NAMESPACE_FLAGS);
	if (flags & CLONE_THREAD_FLAG)
		return 0;
	struct proc fresh = {.cwd = p->cwd};
	if (activate(&fresh) != 0)
		return 0;
	fresh.compat = p->compat;
	if (procs.update(&child, &fresh) != 0) {
		drop(DROP_PROCESSES);
		return 0;
	}
	struct process_event *event = reserve_process_event(EVENT_FORK, &fresh, child);
	if (!event)
		return 0;
	event->parent_serial = p->serial;
	event->parent_image = p->image;
	events.ringbuf_submit(event, PROCESS_EVENT_WAKEUP);
	return 0;
}

/* Syscall arguments, from the user registers the raw tracepoint passes. A 32-bit process passes them in
 * other registers on x86 (ebx, ecx, edx), and its values are 32 bits wide. */
static __always_inline u64 syscall_arg(struct pt_regs *regs, int index, bool compat)
{
	u64 value = 0;
#if defined(ARCH_X86_64)
	switch (index) {
	case 0:
		bpf_probe_read_kernel(&value, sizeof(value), compat ? &regs->bx : &regs->di);
		break;
	case 1:
		bpf_probe_read_kernel(&value, sizeof(value), compat ? &regs->cx : &regs->si);
		break;
	case 2:
		bpf_probe_read_kernel(&value, sizeof(value), &regs->dx);
		break;
	}
#elif defined(ARCH_ARM64)
	bpf_probe_read_kernel(&value, sizeof(value), &regs->regs[index]);
#endif
	return compat ? (u32)value : value;
}

/* argv[0] of an execve, kept by thread until sched_process_exec reports the new image. */
static __always_inline void remember_argv0(u64 argv, bool compat)
{
	u32 tid = bpf_get_current_pid_tgid();
	u64 first = 0;
	struct argv0 value = {};
	/* A 32-bit process's argv holds 32-bit pointers; x86 and arm64 are little-endian, so the low half fills. */
	if (read_user(&first, compat ? 4 : 8, (void *)argv) == 0 && first)
		read_user_str(value.text, sizeof(value.text), (void *)first);
	pending_argv0.update(&tid, &value);
}

static __always_inline void record_socket(struct proc *p, u32 syscall_nr, u32 family, u32 type, u32 protocol)
{
	struct observation_key key = {.kind = OBSERVE_SOCKET, .serial = p->serial, .image = p->image,
				      .syscall_nr = syscall_nr, .a = family, .b = type, .c = protocol};
	observe(&key);
}

/* The calls decode_arguments reads, whatever their number in the ABI of the process. */
enum decoded_call {
	CALL_OTHER,
	CALL_EXECVE,
	CALL_EXECVEAT,
	CALL_EXIT,
	CALL_EXIT_GROUP,
	CALL_SOCKET,
	CALL_SOCKETPAIR,
	CALL_UNSHARE,
	CALL_SETNS,
	CALL_SOCKETCALL,
	/* RECORD_PATHS, native ABI only (the syscalls:sys_exit_* tracepoints skip compat syscalls): read at their
	 * exit, by path_exit, */
	CALL_OPEN,
	CALL_OPENAT,
	CALL_OPENAT2,
	CALL_CREAT,
	CALL_MKDIR,
	CALL_MKDIRAT,
	CALL_MKNOD,
	CALL_MKNODAT,
	CALL_UNLINK,
	CALL_UNLINKAT,
	CALL_RMDIR,
	CALL_RENAME,
	CALL_RENAMEAT,
	CALL_RENAMEAT2,
	CALL_LINK,
	CALL_LINKAT,
	CALL_SYMLINK,
	CALL_SYMLINKAT,
	CALL_CHMOD,
	CALL_FCHMODAT,
	CALL_FCHMODAT2,
	CALL_FCHMOD,
	CALL_TRUNCATE,
	CALL_FTRUNCATE,
	CALL_MMAP,
	CALL_GETDENTS64,
	CALL_GETDENTS,
	CALL_CHDIR,
	CALL_FCHDIR,
	CALL_CONNECT,
	CALL_BIND,
	CALL_SENDTO,
	CALL_SENDMSG,
	CALL_SCHED_SETATTR,
	CALL_DUP,
	CALL_DUP2,
	CALL_DUP3,
	CALL_FCNTL,
	/* and where they enter. */
	CALL_CLOSE,
	CALL_MPROTECT,
	CALL_PKEY_MPROTECT,
	CALL_PERSONALITY,
	CALL_SCHED_SETSCHEDULER,
};

#define DECODED_CALLS(PREFIX)                          \
	case PREFIX##EXECVE: return CALL_EXECVE;       \
	case PREFIX##EXECVEAT: return CALL_EXECVEAT;   \
	case PREFIX##EXIT: return CALL_EXIT;           \
	case PREFIX##EXIT_GROUP: return CALL_EXIT_GROUP; \
	case PREFIX##SOCKET: return CALL_SOCKET;       \
	case PREFIX##SOCKETPAIR: return CALL_SOCKETPAIR; \
	case PREFIX##UNSHARE: return CALL_UNSHARE;     \
	case PREFIX##SETNS: return CALL_SETNS;         \
	case PREFIX##SOCKETCALL: return CALL_SOCKETCALL;

#ifdef RECORD_PATHS
#define PATH_CALLS                                             \
	case NR_OPEN: return CALL_OPEN;                        \
	case NR_OPENAT: return CALL_OPENAT;                    \
	case NR_OPENAT2: return CALL_OPENAT2;                  \
	case NR_CREAT: return CALL_CREAT;                      \
	case NR_MKDIR: return CALL_MKDIR;                      \
	case NR_MKDIRAT: return CALL_MKDIRAT;                  \
	case NR_MKNOD: return CALL_MKNOD;                      \
	case NR_MKNODAT: return CALL_MKNODAT;                  \
	case NR_UNLINK: return CALL_UNLINK;                    \
	case NR_UNLINKAT: return CALL_UNLINKAT;                \
	case NR_RMDIR: return CALL_RMDIR;                      \
	case NR_RENAME: return CALL_RENAME;                    \
	case NR_RENAMEAT: return CALL_RENAMEAT;                \
	case NR_RENAMEAT2: return CALL_RENAMEAT2;              \
	case NR_LINK: return CALL_LINK;                        \
	case NR_LINKAT: return CALL_LINKAT;                    \
	case NR_SYMLINK: return CALL_SYMLINK;                  \
	case NR_SYMLINKAT: return CALL_SYMLINKAT;              \
	case NR_CHMOD: return CALL_CHMOD;                      \
	case NR_FCHMODAT: return CALL_FCHMODAT;                \
	case NR_FCHMODAT2: return CALL_FCHMODAT2;              \
	case NR_FCHMOD: return CALL_FCHMOD;                    \
	case NR_TRUNCATE: return CALL_TRUNCATE;                \
	case NR_FTRUNCATE: return CALL_FTRUNCATE;              \
	case NR_MMAP: return CALL_MMAP;                        \
	case NR_GETDENTS64: return CALL_GETDENTS64;            \
	case NR_GETDENTS: return CALL_GETDENTS;                \
	case NR_CHDIR: return CALL_CHDIR;                      \
	case NR_FCHDIR: return CALL_FCHDIR;                    \
	case NR_CONNECT: return CALL_CONNECT;                  \
	case NR_BIND: return CALL_BIND;                        \
	case NR_SENDTO: return CALL_SENDTO;                    \
	case NR_SENDMSG: return CALL_SENDMSG;                  \
	case NR_SCHED_SETATTR: return CALL_SCHED_SETATTR;      \
	case NR_DUP: return CALL_DUP;                          \
	case NR_DUP2: return CALL_DUP2;                        \
	case NR_DUP3: return CALL_DUP3;                        \
	case NR_FCNTL: return CALL_FCNTL;                      \
	case NR_CLOSE: return CALL_CLOSE;                      \
	case NR_MPROTECT: return CALL_MPROTECT;                \
	case NR_PKEY_MPROTECT: return CALL_PKEY_MPROTECT;      \
	case NR_PERSONALITY: return CALL_PERSONALITY;          \
	case NR_SCHED_SETSCHEDULER: return CALL_SCHED_SETSCHEDULER;
#else
#define PATH_CALLS
#endif

static __always_inline enum decoded_call decoded_call(u64 nr, bool compat)
{
	if (compat) {
		switch (nr) { DECODED_CALLS(COMPAT_NR_) }
	} else {
		switch (nr) { DECODED_CALLS(NR_) PATH_CALLS }
	}
	return CALL_OTHER;
}

#define SYS_SOCKET 1     /* socketcall's call numbers (linux/net.h) */
#define SYS_SOCKETPAIR 8

/* socket() and socketpair() through 32-bit x86's socketcall, whose arguments are an array in user memory;
 * kept as the call it stands for, so that families are seen whichever way a program asks. */
static __always_inline void record_socketcall(struct proc *p, u32 call, u64 args)
{
	u32 values[3];
	if (call != SYS_SOCKET && call != SYS_SOCKETPAIR)
		return;
	if (read_user(values, sizeof(values), (void *)args) != 0) {
		drop(DROP_SOCKETS);
		return;
	}
	record_socket(p, call == SYS_SOCKET ? COMPAT_NR_SOCKET : COMPAT_NR_SOCKETPAIR, values[0], values[1], values[2]);
}

#ifdef RECORD_PATHS
#ifndef HAVE_TASK_PT_REGS
#error "RECORD_PATHS reads a call's arguments at its exit, from bpf_task_pt_regs: it needs BTF"
#endif
#define AT_FDCWD_VALUE -100
#define O_ACCMODE_FLAGS 03
#define O_CREAT_FLAG 0100
#define O_EXCL_FLAG 0200
#define O_TRUNC_FLAG 01000
#define SETID_MODE 06000 /* S_ISUID | S_ISGID */
#define PROT_WRITE_FLAG 2
#define PROT_EXEC_FLAG 4
#define MAP_ANONYMOUS_FLAG 0x20
#define AF_UNIX_FAMILY 1
#define AF_INET_FAMILY 2
#define AF_INET6_FAMILY 10
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

/* What a path call did, as describe_call works it out from its number and arguments: op and also_op on the
 * path at (dirfd, path), op2 on a second path (the new name of a rename or link), fd_op and op2 on the file of
 * descriptor fd; or a kernel use at address. */
struct call_effect {
	u32 flags;
	u32 op;
	u32 also_op;
	u32 op2;
	u32 fd_op;
	u32 pad;
	s64 dirfd;
	u64 path;
	s64 dirfd2;
	u64 path2;
	s64 fd;
	u64 address;        /* a sockaddr (ADDRESS), a msghdr (MESSAGE), a sched_attr (SCHED_ATTR) */
	u64 address_length;
};
/* In a map, not on the stack: path_exit reads it back as values the verifier does not know, and so verifies its
 * steps once rather than once for each case of describe_call's switch. */
BPF_PERCPU_ARRAY(call_effects, struct call_effect, 1);

/* call_effect.flags: when path_exit records the call, and what it learns from it. */
#define ON_SUCCESS 1    /* only where the call succeeded (an access by descriptor) */
#define ON_FAILURE 2    /* only where it failed (an execve that succeeds is recorded at sched_process_exec) */
#define NAMES_FD 4      /* an open: the descriptor it returns is named as its path */
#define SETS_CWD 8      /* chdir: the working directory is named as its path */
#define SETS_CWD_FD 16  /* fchdir: as the descriptor's file */
#define ADDRESS 32      /* connect, bind, sendto: the address at address */
#define MESSAGE 64      /* sendmsg: the address its msghdr names */
#define SCHED_ATTR 128  /* sched_setattr: the policy its sched_attr asks for */
#define DUPS_FD 256     /* dup, dup2, dup3, fcntl F_DUPFD: the descriptor it returns is named as descriptor fd */

/* The name each file descriptor of a process was opened by, so that an access by descriptor (a library mapped, a
 * directory listed, a path relative to a dirfd) names the file, though user space reads its event after the
 * close. By process and indexed by descriptor, an open and a close store into it (a hash of descriptors cost
 * an insert and a delete, 0.3 us a file); a higher descriptor, or one of a process beyond the table, is named
 * by user space in /proc. Descriptors are trusted in the image that opened them: close-on-exec ones close unseen. */
#define FD_SLOTS 128
struct fd_block {
	u64 name[FD_SLOTS];
	u32 image[FD_SLOTS];
};
BPF_HASH(fd_blocks, u32 /* serial */, struct fd_block, FD_PROCESSES);
BPF_ARRAY(empty_fd_block, struct fd_block, 1); /* what a process's block starts as: too big for the stack */
BPF_PERCPU_ARRAY(path_scratch, struct path_event, 1);
BPF_PERCPU_ARRAY(unread_path_bytes, u64, 1); /* written to the ring since this CPU last woke user space */

/* The six arguments of the native syscall the current task is leaving, from its user registers: a syscall leaves
 * them as it found them (x86 returns in ax; arm64 in x0, whose argument it keeps in orig_x0). */
static __always_inline void exit_args(u64 *args)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs((struct task_struct *)bpf_get_current_task_btf());
#if defined(ARCH_X86_64)
	u64 r[8]; /* r10 r9 r8 ax cx dx si di, in the order of struct pt_regs */
	if (bpf_probe_read_kernel(r, sizeof(r), &regs->r10) != 0)
		return;
	args[0] = r[7];
	args[1] = r[6];
	args[2] = r[5];
	args[3] = r[0];
	args[4] = r[2];
	args[5] = r[1];
#elif defined(ARCH_ARM64)
	bpf_probe_read_kernel(args, 6 * sizeof(u64), &regs->regs[0]);
	bpf_probe_read_kernel(args, sizeof(u64), &regs->orig_x0);
#endif
}

static __always_inline void record_kernel_use(struct proc *p, u32 nr, u64 value, u64 port, u64 high, u64 low)
{
	struct observation_key key = {.kind = OBSERVE_KERNEL, .serial = p->serial, .image = p->image,
				      .syscall_nr = nr, .a = value, .b = port, .c = high, .d = low};
	observe(&key);
}

/* The kernel uses read where their call enters, from scalar arguments; and close, which forgets a descriptor. */
static __always_inline void path_call_entered(struct proc *p, u64 nr, enum decoded_call call, struct pt_regs *regs)
{
	switch (call) {
	case CALL_CLOSE: {
		u32 serial = p->serial;
		u64 fd = syscall_arg(regs, 0, false);
		struct fd_block *block = fd_blocks.lookup(&serial);
		if (block && fd < FD_SLOTS)
			block->name[fd & (FD_SLOTS - 1)] = NO_NAME;
		break;
	}
	case CALL_MMAP:
	case CALL_MPROTECT:
	case CALL_PKEY_MPROTECT: {
		/* What MemoryDenyWriteExecute= refuses (seccomp_memory_deny_write_execute, systemd 252): a mapping made
		 * writable and executable at once, and any protection change to executable (a JIT's write, then execute) */
		u64 prot = syscall_arg(regs, 2, false);
		u64 refused = call == CALL_MMAP ? PROT_WRITE_FLAG | PROT_EXEC_FLAG : PROT_EXEC_FLAG;
		if ((prot & refused) == refused)
			record_kernel_use(p, nr, prot & 0xffffffff, 0, 0, 0);
		break;
	}
	case CALL_PERSONALITY: {
		u32 persona = syscall_arg(regs, 0, false);
		if (persona != 0 && persona != 0xffffffff) /* PER_LINUX, and the query */
			record_kernel_use(p, nr, persona, 0, 0, 0);
		break;
	}
	case CALL_SCHED_SETSCHEDULER: {
		u32 policy = syscall_arg(regs, 1, false) & ~0x40000000u; /* SCHED_RESET_ON_FORK */
		if (policy == 1 || policy == 2 || policy == 6) /* SCHED_FIFO, SCHED_RR, SCHED_DEADLINE */
			record_kernel_use(p, nr, policy, 0, 0, 0);
		break;
	}
	default:
		break;
	}
}

static __always_inline u32 open_op(u64 flags)
{
	if ((flags & O_CREAT_FLAG) && (flags & O_EXCL_FLAG))
		return FILE_CREATE; /* O_CREAT alone may open what is there: not knowable cheaply, so a write */
	if ((flags & O_ACCMODE_FLAGS) != 0 || (flags & (O_CREAT_FLAG | O_TRUNC_FLAG)))
		return FILE_WRITE;
	return FILE_READ;
}

static __always_inline u32 setid_op(u64 mode)
{
	return mode & SETID_MODE ? FILE_SETID : FILE_NONE;
}

static __always_inline void effect_path(struct call_effect *e, u32 op, u32 also_op, s64 dirfd, u64 path)
{
	e->op = op;
	e->also_op = also_op;
	e->dirfd = dirfd;
	e->path = path;
}

static __always_inline void effect_open(struct call_effect *e, s64 dirfd, u64 path, u64 flags, u64 mode)
{
	effect_path(e, open_op(flags), flags & O_CREAT_FLAG ? setid_op(mode) : FILE_NONE, dirfd, path);
	e->flags = NAMES_FD;
}

static __always_inline void effect_path2(struct call_effect *e, u32 op, s64 dirfd, u64 path)
{
	e->op2 = op;
	e->dirfd2 = dirfd;
	e->path2 = path;
}

static __always_inline void effect_fd(struct call_effect *e, u32 op, u32 flags, s64 fd)
{
	e->fd_op = op;
	e->flags = flags;
	e->fd = (s32)fd;
}

static __always_inline void effect_address(struct call_effect *e, u32 flags, u64 address, u64 length)
{
	e->flags = flags;
	e->address = address;
	e->address_length = length;
}

/* What the call did, from its arguments a; false for a call path_exit does not record. */
static __always_inline bool describe_call(struct call_effect *e, enum decoded_call call, u64 *a)
{
	e->flags = 0;
	e->op = e->also_op = e->op2 = e->fd_op = FILE_NONE;
	e->path = e->path2 = 0;
	switch (call) {
	case CALL_OPEN:
		effect_open(e, AT_FDCWD_VALUE, a[0], a[1], a[2]);
		break;
	case CALL_OPENAT:
		effect_open(e, a[0], a[1], a[2], a[3]);
		break;
	case CALL_OPENAT2: {
		u64 how[2] = {}; /* struct open_how: flags, mode */
		read_user(how, sizeof(how), (void *)a[2]);
		effect_open(e, a[0], a[1], how[0], how[1]);
		break;
	}
	case CALL_CREAT:
		effect_path(e, FILE_WRITE, setid_op(a[1]), AT_FDCWD_VALUE, a[0]);
		e->flags = NAMES_FD;
		break;
	case CALL_EXECVE:
		effect_path(e, FILE_EXEC, FILE_NONE, AT_FDCWD_VALUE, a[0]);
		e->flags = ON_FAILURE;
		break;
	case CALL_EXECVEAT:
		effect_path(e, FILE_EXEC, FILE_NONE, a[0], a[1]);
		e->flags = ON_FAILURE;
		break;
	case CALL_MKDIR:
	case CALL_MKNOD:
		effect_path(e, FILE_CREATE, setid_op(a[1]), AT_FDCWD_VALUE, a[0]);
		break;
	case CALL_MKDIRAT:
	case CALL_MKNODAT:
		effect_path(e, FILE_CREATE, setid_op(a[2]), a[0], a[1]);
		break;
	case CALL_UNLINK:
	case CALL_RMDIR:
		effect_path(e, FILE_DELETE, FILE_NONE, AT_FDCWD_VALUE, a[0]);
		break;
	case CALL_UNLINKAT:
		effect_path(e, FILE_DELETE, FILE_NONE, a[0], a[1]);
		break;
	case CALL_RENAME:
		effect_path(e, FILE_RENAME, FILE_NONE, AT_FDCWD_VALUE, a[0]);
		effect_path2(e, FILE_RENAME, AT_FDCWD_VALUE, a[1]);
		break;
	case CALL_RENAMEAT:
	case CALL_RENAMEAT2:
		effect_path(e, FILE_RENAME, FILE_NONE, a[0], a[1]);
		effect_path2(e, FILE_RENAME, a[2], a[3]);
		break;
	case CALL_LINK:
		effect_path2(e, FILE_LINK, AT_FDCWD_VALUE, a[1]);
		break;
	case CALL_LINKAT:
		effect_path2(e, FILE_LINK, a[2], a[3]);
		break;
	case CALL_SYMLINK:
		effect_path2(e, FILE_CREATE, AT_FDCWD_VALUE, a[1]);
		break;
	case CALL_SYMLINKAT:
		effect_path2(e, FILE_CREATE, a[1], a[2]);
		break;
	case CALL_CHMOD:
		effect_path(e, FILE_CHMOD, setid_op(a[1]), AT_FDCWD_VALUE, a[0]);
		break;
	case CALL_FCHMODAT:
	case CALL_FCHMODAT2:
		effect_path(e, FILE_CHMOD, setid_op(a[2]), a[0], a[1]);
		break;
	case CALL_FCHMOD:
		effect_fd(e, FILE_CHMOD, 0 /* a failed chmod is a probe, kept */, a[0]);
		e->op2 = setid_op(a[1]);
		break;
	case CALL_TRUNCATE:
		effect_path(e, FILE_WRITE, FILE_NONE, AT_FDCWD_VALUE, a[0]);
		break;
	case CALL_FTRUNCATE:
		effect_fd(e, FILE_WRITE, 0, a[0]);
		break;
	case CALL_MMAP:
		if (!(a[2] & PROT_EXEC_FLAG) || (a[3] & MAP_ANONYMOUS_FLAG))
			return false;
		effect_fd(e, FILE_MAP_EXEC, ON_SUCCESS, a[4]);
		break;
	case CALL_GETDENTS64:
	case CALL_GETDENTS:
		effect_fd(e, FILE_LIST, ON_SUCCESS, a[0]);
		break;
	case CALL_CHDIR:
		effect_path(e, FILE_CHDIR, FILE_NONE, AT_FDCWD_VALUE, a[0]);
		e->flags = SETS_CWD;
		break;
	case CALL_FCHDIR:
		effect_fd(e, FILE_NONE, SETS_CWD_FD, a[0]);
		break;
	case CALL_CONNECT:
	case CALL_BIND:
		effect_address(e, ADDRESS, a[1], a[2]);
		break;
	case CALL_SENDTO:
		effect_address(e, ADDRESS, a[4], a[5]);
		break;
	case CALL_SENDMSG:
		effect_address(e, MESSAGE, a[1], 0);
		break;
	case CALL_SCHED_SETATTR:
		effect_address(e, SCHED_ATTR, a[1], 0);
		break;
	case CALL_DUP:
	case CALL_DUP2:
	case CALL_DUP3:
		effect_fd(e, FILE_NONE, DUPS_FD | ON_SUCCESS, a[0]);
		break;
	case CALL_FCNTL:
		if (a[1] != 0 && a[1] != 1030) /* F_DUPFD, F_DUPFD_CLOEXEC */
			return false;
		effect_fd(e, FILE_NONE, DUPS_FD | ON_SUCCESS, a[0]);
		break;
	default:
		return false;
	}
	return true;
}

/* The name a descriptor was opened by, or NO_NAME where it was not seen opened. */
static __always_inline u64 known_fd_name(struct proc *p, u32 image, s64 fd)
{
	u32 serial = p->serial;
	struct fd_block *block = fd_blocks.lookup(&serial);
	if (block && (u64)fd < FD_SLOTS) {
		u32 slot = fd & (FD_SLOTS - 1);
		if (block->image[slot] == image)
			return block->name[slot];
	}
	return NO_NAME;
}

/* The name a descriptor was opened by, or one that stands for it until user space reads /proc/<pid>/fd. */
static __always_inline u64 fd_name_of(struct proc *p, u32 image, s64 fd)
{
	u64 name = known_fd_name(p, image, fd);
	return name != NO_NAME ? name : FD_MARK | ((u64)p->serial << 20) | ((u64)fd & 0xfffff);
}

/* An open's descriptor, named as its path. */
static __always_inline void name_fd(struct proc *p, u32 image, s64 fd, u64 name)
{
	if ((u64)fd >= FD_SLOTS)
		return;
	u32 serial = p->serial, zero = 0;
	struct fd_block *block = fd_blocks.lookup(&serial);
	if (!block) {
		struct fd_block *empty = empty_fd_block.lookup(&zero);
		if (!empty)
			return;
		fd_blocks.insert(&serial, empty); /* fails where the table is full: user space reads /proc instead */
		block = fd_blocks.lookup(&serial);
		if (!block)
			return;
	}
	u32 slot = fd & (FD_SLOTS - 1);
	block->name[slot] = name;
	block->image[slot] = image;
}

/* The name of a path string (length bytes, NUL included) in directory dir: FNV-1a over its 8-byte words, from
 * the directory's name, so that the same string names different files in different directories. */
static __always_inline u64 name_of(struct path_event *event, u32 length, u64 dir)
{
	u32 bytes = length - 1;
	if (bytes == 0) /* "" with AT_EMPTY_PATH: the directory descriptor itself */
		return dir;
	u64 hash = dir ? dir : FNV_OFFSET;
#pragma clang loop unroll(disable)
	for (u32 i = 0; i < FILE_PATH_LEN / 8; i++) {
		if (i * 8 >= bytes)
			break;
		u64 word = *(u64 *)&event->path[i * 8];
		u32 rest = bytes - i * 8;
		if (rest < 8)
			word &= (1ULL << (rest * 8)) - 1;
		hash = (hash ^ word) * FNV_PRIME;
	}
	hash &= ~(CWD_MARK | FD_MARK); /* those bits mark a name only the live process can tell */
	return hash ? hash : 1;
}

/* Counts an access to a name; the first of its kind goes to user space with its string (length bytes of
 * event->path) or, by descriptor (length 0), the descriptor. */
static __always_inline void record_access(struct proc *p, struct path_event *event, u32 image, u32 op, s32 error,
					  u64 name, u64 dir, s32 fd, u32 length)
{
	if (op == FILE_NONE)
		return;
	struct observation_key key = {.kind = OBSERVE_FILE, .serial = p->serial, .image = image, .a = op,
				      .b = error, .c = name};
	if (!observe(&key))
		return;
	event->header.kind = EVENT_PATH;
	event->header.serial = p->serial;
	event->header.time_ns = bpf_ktime_get_ns();
	event->image = image;
	event->op = op;
	event->error = error;
	event->fd = fd;
	event->name = name;
	event->dir = dir;
	event->length = length;
	u32 size = (offsetof(struct path_event, path) + length) & (2 * FILE_PATH_LEN - 1); /* bounds it, to the verifier */
	if (size > sizeof(*event))
		return;
	/* It wakes no one: a wake-up for each new path was most of what recording paths cost tar, and user space
	 * decoding them while the run goes on takes a CPU from it. They wait in the ring until a process event wakes
	 * user space or the run ends, but for two: one whose name user space reads from the live process's /proc
	 * (a descriptor this side did not see opened), and one that brings this CPU's unread bytes to a share of the
	 * ring that all CPUs' shares together cannot fill. */
	u64 wakeup = BPF_RB_NO_WAKEUP;
	u32 zero = 0;
	u64 *unread = unread_path_bytes.lookup(&zero);
	if ((name | dir) & FD_MARK) {
		wakeup = BPF_RB_FORCE_WAKEUP;
	} else if (unread && (*unread += size) >= UNREAD_PATH_BYTES) {
		*unread = 0;
		wakeup = BPF_RB_FORCE_WAKEUP;
	}
	if (events.ringbuf_output(event, size, wakeup) != 0)
		drop(DROP_EVENTS);
}

/* Records op (and also_op, where not FILE_NONE) on the path a syscall named at user address path, relative
 * to dirfd; returns its name, or NO_NAME if the string could not be read. */
static __always_inline u64 record_path(struct proc *p, struct path_event *event, u32 image, u32 op, u32 also_op,
				       s32 error, s64 dirfd, u64 path)
{
	int length = read_user_str(event->path, FILE_PATH_LEN, (void *)path);
	if (length <= 0)
		return NO_NAME;
	u64 dir = NO_NAME;
	if (event->path[0] != '/')
		dir = (s32)dirfd == AT_FDCWD_VALUE ? p->cwd : fd_name_of(p, image, (s32)dirfd);
	u64 name = name_of(event, length, dir);
	record_access(p, event, image, op, error, name, dir, -1, length);
	record_access(p, event, image, also_op, error, name, dir, -1, length);
	return name;
}

/* An IPv4 or IPv6 address a socket call named, or an abstract AF_UNIX name (sun_path starting with a NUL: a name
 * in the network namespace, which a namespace of its own does not share), as a kernel use; other AF_UNIX
 * addresses (paths) are not. */
static __always_inline void record_address(struct proc *p, u32 nr, u32 image, u64 address, u64 length)
{
	u8 raw[24] = {}; /* family, port, then the IPv4 address, or flow info and the IPv6 address; or family, NUL, name */
	if (!address || length < 4)
		return;
	if (read_user(raw, length < sizeof(raw) ? 8 : sizeof(raw), (void *)address) != 0)
		return;
	u16 family = *(u16 *)raw;
	u64 port = ((u64)raw[2] << 8) | raw[3];
	u64 high = 0, low = 0, more = 0;
	if (family == AF_INET_FAMILY && length >= 8) {
		high = *(u32 *)&raw[4];
	} else if (family == AF_INET6_FAMILY && length >= sizeof(raw)) {
		high = *(u64 *)&raw[8];
		low = *(u64 *)&raw[16];
	} else if (family == AF_UNIX_FAMILY && raw[2] == 0) {
		/* The name's length, and its first 21 bytes as they lie after the family and the NUL (a shorter name's
		 * trailing bytes, read past it, are cut off by user space) */
		if (length < sizeof(raw) && read_user(raw, sizeof(raw), (void *)address) != 0)
			return;
		port = length - 3;
		high = *(u64 *)&raw[0];
		low = *(u64 *)&raw[8];
		more = *(u64 *)&raw[16];
	} else {
		return;
	}
	struct observation_key key = {.kind = OBSERVE_KERNEL, .serial = p->serial, .image = image, .syscall_nr = nr,
				      .a = family, .b = port, .c = high, .d = low, .e = more};
	observe(&key);
}

/* The arguments of syscalls:sys_exit_*, as their format in tracefs lays them out. */
struct syscall_exit_args {
	u64 common;
	s32 nr;
	s32 pad;
	s64 ret;
};

/* Attached by user space to syscalls:sys_exit_<call> of each path call (the kernel runs it for those calls only):
 * the call's result is known, its arguments are still in the user registers, and the strings it named have just
 * been read by the kernel, so they are paged in. */
int path_exit(struct syscall_exit_args *args)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct proc *p = procs.lookup(&tgid);
	if (!p || p->state != PROC_ACTIVE || p->compat) /* a 32-bit process's calls do not reach these tracepoints */
		return 0;
	u32 zero = 0;
	struct call_effect *e = call_effects.lookup(&zero);
	struct path_event *event = path_scratch.lookup(&zero);
	if (!e || !event)
		return 0;
	u64 a[6] = {};
	exit_args(a);
	if (!describe_call(e, decoded_call(args->nr, false), a))
		return 0;
	asm volatile("" ::: "memory"); /* what follows reads the effect back from the map */
	u32 image = p->image, nr = args->nr;
	s64 ret = args->ret;
	s32 error = ret < 0 && ret >= -4095 ? -ret : 0;
	u32 flags = e->flags;
	if (flags & ADDRESS) {
		record_address(p, nr, image, e->address, e->address_length);
		/* A bind to an AF_UNIX path makes the socket's file there: a create in its directory, as mknod's is */
		u8 head[3] = {};
		if (decoded_call(nr, false) == CALL_BIND && e->address_length > 3 &&
		    read_user(head, sizeof(head), (void *)e->address) == 0 && *(u16 *)head == AF_UNIX_FAMILY && head[2])
			record_path(p, event, image, FILE_CREATE, FILE_NONE, error, AT_FDCWD_VALUE, e->address + 2);
		return 0;
	}
	if (flags & MESSAGE) {
		u64 header[2] = {}; /* struct user_msghdr: msg_name, msg_namelen */
		if (read_user(header, sizeof(header), (void *)e->address) == 0)
			record_address(p, nr, image, header[0], (u32)header[1]);
		return 0;
	}
	if (flags & SCHED_ATTR) {
		u32 attr[2] = {}; /* struct sched_attr: size, sched_policy */
		if (read_user(attr, sizeof(attr), (void *)e->address) == 0 && (attr[1] == 1 || attr[1] == 2 || attr[1] == 6))
			record_kernel_use(p, nr, attr[1], 0, 0, 0);
		return 0;
	}
	if (((flags & ON_SUCCESS) && error) || ((flags & ON_FAILURE) && !error))
		return 0;
	if (flags & SETS_CWD_FD) {
		if (!error)
			p->cwd = fd_name_of(p, image, e->fd);
		return 0;
	}
	if (flags & DUPS_FD) { /* shutil.rmtree lists and deletes through a dup of each directory's descriptor */
		name_fd(p, image, ret, known_fd_name(p, image, e->fd));
		return 0;
	}
	if (e->path) {
		u64 name = record_path(p, event, image, e->op, e->also_op, error, e->dirfd, e->path);
		if (name != NO_NAME && !error && (flags & SETS_CWD)) {
			p->cwd = name;
		} else if (name != NO_NAME && !error && (flags & NAMES_FD)) {
			name_fd(p, image, ret, name);
		}
	}
	if (e->path2)
		record_path(p, event, image, e->op2, FILE_NONE, error, e->dirfd2, e->path2);
	if (e->fd_op != FILE_NONE) {
		u64 name = fd_name_of(p, image, e->fd);
		record_access(p, event, image, e->fd_op, error, name, NO_NAME, e->fd, 0);
		record_access(p, event, image, e->op2, error, name, NO_NAME, e->fd, 0);
	}
	return 0;
}

/* A successful execve, from the kernel's copy of the name (the caller's memory is gone): the old image's. */
static __always_inline void record_exec(struct proc *p, struct path_event *event, int length)
{
	if (length <= 0)
		return;
	u64 dir = event->path[0] == '/' ? NO_NAME : p->cwd;
	record_access(p, event, p->image, FILE_EXEC, 0, name_of(event, length, dir), dir, -1, length);
}
#endif

/* The few syscalls whose arguments the trace keeps, in the native ABI and in the 32-bit one. */
static __always_inline void decode_arguments(struct proc *p, u64 nr, struct pt_regs *regs)
{
	bool compat = p->compat;
	enum decoded_call call = decoded_call(nr, compat);
#ifdef RECORD_PATHS
	path_call_entered(p, nr, call, regs);
#endif
	switch (call) {
	case CALL_EXECVE:
		remember_argv0(syscall_arg(regs, 1, compat), compat);
		break;
	case CALL_EXECVEAT:
		remember_argv0(syscall_arg(regs, 2, compat), compat);
		break;
	case CALL_EXIT_GROUP:
		p->exiting = 1; /* the SIGKILLs its threads now get are not a cause of death */
		p->exit_code = syscall_arg(regs, 0, compat) & 0xff;
		break;
	case CALL_EXIT:
		p->exit_code = syscall_arg(regs, 0, compat) & 0xff;
		break;
	case CALL_SOCKET:
	case CALL_SOCKETPAIR:
		record_socket(p, nr, syscall_arg(regs, 0, compat), syscall_arg(regs, 1, compat), syscall_arg(regs, 2, compat));
		break;
	case CALL_SOCKETCALL:
		record_socketcall(p, syscall_arg(regs, 0, compat), syscall_arg(regs, 1, compat));
		break;
	case CALL_UNSHARE: {
		u64 flags = syscall_arg(regs, 0, compat) & NAMESPACE_FLAGS;
		if (flags)
			record_namespace(p, nr, flags);
		break;
	}
	case CALL_SETNS:
		record_namespace(p, nr, (u32)syscall_arg(regs, 1, compat));
		break;
	default:
		break;
	}
}

/* Every syscall of every task passes here: for an untraced one, that is one array load and two compares. */
RAW_TRACEPOINT_PROBE(sys_enter)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct proc *p = procs.lookup(&tgid);
	if (!p)
		return 0;
	u64 nr = ctx->args[1];
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	if (p->state != PROC_ACTIVE) {
		/* The launched command before its execve is not the workload, but its execve names it. */
		if (p->state == PROC_WAIT_EXEC && (nr == NR_EXECVE || nr == NR_EXECVEAT))
			remember_argv0(syscall_arg(regs, nr == NR_EXECVE ? 1 : 2, false), false);
		if (!adopt(tgid, p))
			return 0;
	}
	count_syscall(p, nr);
	decode_arguments(p, nr, regs);
	return 0;
}

TRACEPOINT_PROBE(sched, sched_process_exec)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct proc *p = procs.lookup(&tgid);
	if (!p)
		return 0;
	u32 released = NO_ROW, first = 0;
	if (p->state == PROC_WAIT_EXEC) {
		if (activate(p) != 0)
			return 0;
		first = 1;
		/* The execve that starts the workload belongs to it: the policy must allow it. */
		u32 nr = current_syscall();
		if (nr != NO_SYSCALL)
			count_syscall(p, nr);
	} else if (p->state == PROC_ACTIVE || adopt(tgid, p)) {
#ifdef RECORD_PATHS
		u32 zero = 0;
		struct path_event *exec = path_scratch.lookup(&zero);
		if (exec) {
			unsigned short offset = args->data_loc_filename & 0xFFFF;
			record_exec(p, exec, bpf_probe_read_kernel_str(exec->path, FILE_PATH_LEN, (char *)args + offset));
		}
#endif
		released = p->row;
		p->image += 1;
		p->row = take_row();
		/* The SIGKILLs that de_thread sent to the other threads did not kill the process. */
		p->exit_signal = 0;
		p->sent_signal = 0;
	} else {
		return 0;
	}
	struct process_event *event = reserve_process_event(EVENT_EXEC, p, tgid);
	if (!event)
		return 0;
	event->released_row = released;
	event->first_exec = first;
	event->compat = current_compat();
	p->compat = event->compat == COMPAT_YES;
	TP_DATA_LOC_READ_STR(event->path, filename, sizeof(event->path));
	u32 old_tid = args->old_pid;
	struct argv0 *argv0 = pending_argv0.lookup(&old_tid);
	if (argv0) {
		__builtin_memcpy(event->argv0, argv0->text, sizeof(event->argv0));
		pending_argv0.delete(&old_tid);
	}
	events.ringbuf_submit(event, PROCESS_EVENT_WAKEUP);
	return 0;
}

static __always_inline bool fatal_by_default(int sig)
{
	return sig >= 1 && sig <= 64 && (FATAL_SIGNALS & (1ULL << (sig - 1)));
}

/* A fatal signal sent to a process with no handler for it is turned into SIGKILLs for all its threads when
 * it is sent (complete_signal): the delivery shows SIGKILL, so the cause is remembered here. */
TRACEPOINT_PROBE(signal, signal_generate)
{
	if (args->result != 0 /* TRACE_SIGNAL_DELIVERED */ || !fatal_by_default(args->sig))
		return 0;
	u32 target = args->pid;
	struct proc *p = procs.lookup(&target);
	if (p && p->state == PROC_ACTIVE)
		p->sent_signal = args->sig;
	return 0;
}

TRACEPOINT_PROBE(signal, signal_deliver)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct proc *p = current_proc(tgid);
	if (!p)
		return 0;
	if (args->sa_handler != 0) { /* a handler runs: whatever was sent did not kill it */
		p->sent_signal = 0;
		return 0;
	}
	if (!fatal_by_default(args->sig) || p->exiting)
		return 0;
	p->exit_signal = args->sig == 9 && p->sent_signal ? p->sent_signal : args->sig;
	return 0;
}

/* Raw, like cap_capable: its arguments are (task, group_dead) where the kernel has group_dead. */
RAW_TRACEPOINT_PROBE(sched_process_exit)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tgid = id >> 32;
#ifdef HAVE_GROUP_DEAD
	if (!(bool)ctx->args[1])
		return 0;
#else
	if ((u32)id != tgid) /* without group_dead, the leader's exit stands for the process */
		return 0;
#endif
	struct proc *p = procs.lookup(&tgid);
	if (!p || p->state == PROC_UNTRACED)
		return 0;
	if (p->state == PROC_ACTIVE) {
		struct process_event *event = reserve_process_event(EVENT_EXIT, p, tgid);
		if (event) {
			event->released_row = p->row;
			event->exit_code = p->exit_code;
			event->exit_signal = p->exit_signal;
			events.ringbuf_submit(event, PROCESS_EVENT_WAKEUP);
		}
	}
#ifdef RECORD_PATHS
	u32 serial = p->serial;
	fd_blocks.delete(&serial);
#endif
	struct proc untraced = {};
	procs.update(&tgid, &untraced);
	return 0;
}

static __always_inline void record_check(struct proc *p, int cap, int ret, int stack_id, u64 target_ns, u32 noaudit)
{
	/* -EFAULT is a stack the unwinder could not walk, reported per check; others mean a full or colliding table. */
	if (stack_id < 0 && stack_id != -14)
		drop(DROP_KERNEL_STACKS);
	struct observation_key key = {.kind = OBSERVE_CAPABILITY, .serial = p->serial, .image = p->image,
				      .syscall_nr = current_syscall(), .a = cap, .b = ret, .c = stack_id,
				      .d = target_ns, .e = noaudit};
	observe(&key);
}

#ifdef CAP_TRACEPOINT
/* A raw tracepoint: its arguments are cap_capable's own (cred, target_ns, capable_ns, cap, ret), so no
 * record is built for it on every check, and it detaches without waiting for an RCU grace period. */
RAW_TRACEPOINT_PROBE(cap_capable)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct proc *p = current_proc(tgid);
	if (p)
		record_check(p, (int)ctx->args[3], (int)ctx->args[4], stacks.get_stackid(ctx, 0), ctx->args[1],
			     NOAUDIT_UNKNOWN);
	return 0;
}
#endif

#ifdef CAP_KPROBE
/* Kernels before 6.14 have no cap_capable tracepoint: the entry probe sees the options (and so the noaudit
 * flag), the return probe sees the result. */
struct check_in_flight {
	int cap;
	int stack_id;
	u64 target_ns;
	u32 noaudit;
};
BPF_HASH(checks_in_flight, u64, struct check_in_flight, 4096);

int kprobe__cap_capable(struct pt_regs *ctx, const void *cred, void *target_ns, int cap, unsigned int opts)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tgid = id >> 32;
	if (!current_proc(tgid))
		return 0;
	struct check_in_flight check = {.cap = cap, .stack_id = stacks.get_stackid(ctx, 0),
					.target_ns = (u64)target_ns, .noaudit = (opts & 2) ? 1 : 0};
	checks_in_flight.update(&id, &check);
	return 0;
}

int kretprobe__cap_capable(struct pt_regs *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	struct check_in_flight *check = checks_in_flight.lookup(&id);
	if (!check)
		return 0;
	u32 tgid = id >> 32;
	struct proc *p = current_proc(tgid);
	if (p)
		record_check(p, check->cap, PT_REGS_RC(ctx), check->stack_id, check->target_ns, check->noaudit);
	checks_in_flight.delete(&id);
	return 0;
}
#endif
