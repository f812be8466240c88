/* The kernel side of `profiler run`'s refusal watch: in the process tree of a confined command, from its exec on,
 * every capability check the kernel denied and every path call that failed with EROFS or EACCES (or ENOENT
 * under /dev, the homes and /tmp, which PrivateDevices=, ProtectHome= and PrivateTmp= replace), aggregated in
 * the kernel by program image, capability or syscall, errno and path; and each connect() with no route
 * (ENETUNREACH), by address.
 *
 * Tracepoints only, as recorder.bpf.c, and for the same reason: nothing but scalars, tracepoint data and the
 * user registers (struct pt_regs is ABI) is read. User space (profiler/recording/refusal_watch.py) prepends
 *   SELF_TGID PATH_LEN ENTRIES NR_CONNECT, and the switches CAP_TRACEPOINT, ARCH_X86_64 | ARCH_ARM64,
 * and fills path_arguments: for each native syscall number that names a path, the index of that argument + 1
 * (bits 0-7) and of its open flags + 1 (bits 8-15).
 */
#include <uapi/linux/ptrace.h>

#define CLONE_THREAD_FLAG 0x00010000ULL
#define ENOENT_ 2
#define EACCES_ 13
#define EROFS_ 30
#define ENETUNREACH_ 101
#define KIND_CAPABILITY 0
#define KIND_PATH 1
#define KIND_CONNECT 2
#define SOCKADDR_LEN 28 /* a struct sockaddr_in6, the longest connect() is refused for here */

struct watched {
	u32 image;  /* how many execs this process made, from 1; 0: not yet the command (the launcher's set-up) */
};

struct image_key {
	u32 tgid;
	u32 image;
};

struct program {
	char path[PATH_LEN];
};

struct refusal_key {
	u32 tgid;
	u32 image;
	u32 kind;     /* KIND_CAPABILITY: code is the capability; KIND_PATH, KIND_CONNECT: code is the errno */
	s32 code;
	u32 nr;       /* the syscall of a path refusal */
	s32 stack_id; /* the kernel stack of a capability check */
	u64 flags;    /* the open flags of an open */
	char path[PATH_LEN]; /* KIND_CONNECT: the address, as struct sockaddr */
};

BPF_HASH(watched, u32, struct watched, ENTRIES);
BPF_HASH(programs, struct image_key, struct program, ENTRIES);
BPF_HASH(refusals, struct refusal_key, u64, ENTRIES);
BPF_STACK_TRACE(stacks, ENTRIES);
BPF_ARRAY(path_arguments, u32, 512);
BPF_PERCPU_ARRAY(scratch, struct refusal_key, 1);
BPF_ARRAY(dropped, u64, 1);
/* Set by user space only while it forks the launcher's first process, so that it (and nothing else) is watched. */
BPF_ARRAY(arming, u32, 1);

static __always_inline void count(struct refusal_key *key)
{
	u64 one = 1, *value = refusals.lookup(key);
	if (value) {
		__sync_fetch_and_add(value, 1);
	} else if (refusals.insert(key, &one) != 0) {
		value = refusals.lookup(key); /* another CPU inserted it first, or the table is full */
		if (value) {
			__sync_fetch_and_add(value, 1);
		} else {
			u32 zero = 0;
			u64 *lost = dropped.lookup(&zero);
			if (lost)
				__sync_fetch_and_add(lost, 1);
		}
	}
}

static __always_inline struct refusal_key *fresh_key(u32 tgid, u32 image, u32 kind, s32 code)
{
	u32 zero = 0;
	struct refusal_key *key = scratch.lookup(&zero);
	if (!key)
		return NULL;
	__builtin_memset(key, 0, sizeof(*key));
	key->tgid = tgid;
	key->image = image;
	key->kind = kind;
	key->code = code;
	key->stack_id = -1;
	return key;
}

TRACEPOINT_PROBE(task, task_newtask)
{
	if (args->clone_flags & CLONE_THREAD_FLAG)
		return 0;
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	u32 child = args->pid;
	struct watched fresh = {};
	if (tgid == SELF_TGID) {
		u32 zero = 0;
		u32 *armed = arming.lookup(&zero);
		if (armed && *armed)
			watched.update(&child, &fresh);
		return 0;
	}
	struct watched *parent = watched.lookup(&tgid);
	if (!parent)
		return 0;
	fresh.image = parent->image ? 1 : 0;
	watched.update(&child, &fresh);
	if (parent->image) { /* the child runs its parent's program until it execs */
		struct image_key from = {.tgid = tgid, .image = parent->image}, to = {.tgid = child, .image = 1};
		struct program *program = programs.lookup(&from);
		if (program)
			programs.update(&to, program);
	}
	return 0;
}

TRACEPOINT_PROBE(sched, sched_process_exec)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct watched *w = watched.lookup(&tgid);
	if (!w)
		return 0;
	w->image += 1;
	struct image_key key = {.tgid = tgid, .image = w->image};
	struct program program = {};
	TP_DATA_LOC_READ_STR(program.path, filename, sizeof(program.path));
	programs.update(&key, &program);
	return 0;
}

#ifdef CAP_TRACEPOINT
/* cap_capable(cred, target_ns, capable_ns, cap, ret): a denied check is ret != 0 */
RAW_TRACEPOINT_PROBE(cap_capable)
{
	if ((int)ctx->args[4] == 0)
		return 0;
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct watched *w = watched.lookup(&tgid);
	if (!w || !w->image)
		return 0;
	struct refusal_key *key = fresh_key(tgid, w->image, KIND_CAPABILITY, (int)ctx->args[3]);
	if (!key)
		return 0;
	key->stack_id = stacks.get_stackid(ctx, 0);
	count(key);
	return 0;
}
#endif

static __always_inline u64 argument(struct pt_regs *regs, u32 index)
{
	u64 value = 0;
#if defined(ARCH_X86_64)
	switch (index) {
	case 0: bpf_probe_read_kernel(&value, sizeof(value), &regs->di); break;
	case 1: bpf_probe_read_kernel(&value, sizeof(value), &regs->si); break;
	case 2: bpf_probe_read_kernel(&value, sizeof(value), &regs->dx); break;
	case 3: bpf_probe_read_kernel(&value, sizeof(value), &regs->r10); break;
	}
#elif defined(ARCH_ARM64)
	/* At the exit, x0 holds the return value: the first argument is kept in orig_x0. */
	if (index == 0)
		bpf_probe_read_kernel(&value, sizeof(value), &regs->orig_x0);
	else if (index < 4)
		bpf_probe_read_kernel(&value, sizeof(value), &regs->regs[index]);
#endif
	return value;
}

static __always_inline bool starts_with(const char *path, const char *prefix, int length)
{
	for (int i = 0; i < length; i++)
		if (path[i] != prefix[i])
			return false;
	return true;
}

/* The trees PrivateDevices=, ProtectHome= and PrivateTmp= replace, where a file the host has is missing. */
static __always_inline bool hidden_tree(const char *path)
{
	return starts_with(path, "/dev/", 5) || starts_with(path, "/home/", 6) || starts_with(path, "/root/", 6) ||
	       starts_with(path, "/run/user/", 10) || starts_with(path, "/tmp/", 5) || starts_with(path, "/var/tmp/", 9);
}

/* At the exit of a call the kernel has just read its path, so the string is paged in. */
RAW_TRACEPOINT_PROBE(sys_exit)
{
	long ret = ctx->args[1];
	if (ret != -EROFS_ && ret != -EACCES_ && ret != -ENOENT_ && ret != -ENETUNREACH_)
		return 0;
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct watched *w = watched.lookup(&tgid);
	if (!w || !w->image)
		return 0;
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	long nr = -1;
#if defined(ARCH_X86_64)
	unsigned long cs = 0;
	bpf_probe_read_kernel(&cs, sizeof(cs), &regs->cs);
	if (cs == 0x23) /* __USER32_CS: a 32-bit call, numbered in the other table; not watched */
		return 0;
	bpf_probe_read_kernel(&nr, sizeof(nr), &regs->orig_ax);
#elif defined(ARCH_ARM64)
	int arm_nr = -1;
	bpf_probe_read_kernel(&arm_nr, sizeof(arm_nr), &regs->syscallno);
	nr = arm_nr;
#endif
	u32 index = nr;
	if (nr < 0 || nr >= 512)
		return 0;
	if (nr == NR_CONNECT && ret == -ENETUNREACH_) { /* no route: PrivateNetwork= has only loopback */
		struct refusal_key *key = fresh_key(tgid, w->image, KIND_CONNECT, ENETUNREACH_);
		if (!key)
			return 0;
		key->nr = index;
		bpf_probe_read_user(key->path, SOCKADDR_LEN, (void *)argument(regs, 1));
		count(key);
		return 0;
	}
	if (ret == -ENETUNREACH_)
		return 0;
	u32 *where = path_arguments.lookup(&index);
	if (!where || !(*where & 0xff))
		return 0;
	struct refusal_key *key = fresh_key(tgid, w->image, KIND_PATH, -ret);
	if (!key)
		return 0;
	key->nr = index;
	if (*where >> 8)
		key->flags = argument(regs, (*where >> 8) - 1);
	bpf_probe_read_user_str(key->path, sizeof(key->path), (void *)argument(regs, (*where & 0xff) - 1));
	if (ret == -ENOENT_ && !hidden_tree(key->path))
		return 0; /* a missing file is everyday; only where a setting hides what the host has is it a refusal */
	count(key);
	return 0;
}
