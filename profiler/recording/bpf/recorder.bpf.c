/* The kernel side of `profiler record`: follows a process tree and aggregates, in the kernel, the syscalls,
 * capability checks, socket families and namespace operations of each process image.
 *
 * Tracepoints only (kprobes only with CAP_KPROBE, on kernels without the cap_capable tracepoint), so that it
 * compiles against kernel headers that do not match the running kernel: the perf tracepoints take their
 * argument layouts from tracefs, and the raw ones (sys_enter, cap_capable, sched_process_exit) pass scalars,
 * pointers that are only compared, and the user registers, whose struct pt_regs is ABI. No kernel structure
 * is read field by field. User space (profiler/tracer.py) prepends:
 *   PID_MAX ROWS OBSERVATION_ENTRIES STACK_ENTRIES RINGBUF_PAGES SELF_TGID FATAL_SIGNALS, the native
 *   numbers NR_EXECVE NR_EXECVEAT NR_EXIT NR_EXIT_GROUP NR_SOCKET NR_SOCKETPAIR NR_UNSHARE NR_SETNS
 *   NR_SOCKETCALL and their 32-bit counterparts COMPAT_NR_*,
 *   and the switches  CAP_TRACEPOINT | CAP_KPROBE, HAVE_GROUP_DEAD,
 *   HAVE_TASK_PT_REGS, CGROUP_MODE, ARCH_X86_64 | ARCH_ARM64.
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

/* Counts one more of an observation; returns true when it is the first. */
static __always_inline bool observe(struct observation_key *key)
{
	u64 *value = observations.lookup(key);
	if (value) {
		__sync_fetch_and_add(value, 1);
		return false;
	}
	u64 one = 1;
	if (observations.insert(key, &one) == 0)
		return true;
	value = observations.lookup(key); /* another CPU inserted it first */
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
	p->state = PROC_ACTIVE;
	return 0;
}

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
		events.ringbuf_submit(event, 0);
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
			struct proc waiting = {.state = PROC_WAIT_EXEC};
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
	struct proc fresh = {};
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
	events.ringbuf_submit(event, 0);
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

static __always_inline enum decoded_call decoded_call(u64 nr, bool compat)
{
	if (compat) {
		switch (nr) { DECODED_CALLS(COMPAT_NR_) }
	} else {
		switch (nr) { DECODED_CALLS(NR_) }
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

/* The few syscalls whose arguments the trace keeps, in the native ABI and in the 32-bit one. */
static __always_inline void decode_arguments(struct proc *p, u64 nr, struct pt_regs *regs)
{
	bool compat = p->compat;
	switch (decoded_call(nr, compat)) {
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
	events.ringbuf_submit(event, 0);
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
			events.ringbuf_submit(event, 0);
		}
	}
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
