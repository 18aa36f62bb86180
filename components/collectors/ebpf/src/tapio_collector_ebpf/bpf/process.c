// Process exec and exit, aggregated per (cgroup, kind, comm, exit status) in a double-buffered
// per-CPU hash (no atomics, no cache line shared between CPUs): userspace swaps the active half
// (the map-in-map update waits for running programs), drains the other and sums the CPUs. Exit status is task_struct.exit_code, its offset read from the kernel's BTF.
struct proc_key {
    u32 kind;
    s32 status;        // exit: raw exit_code (code << 8 | signal | 0x80 core); exec: 0
    u64 cgroup_id;
    char comm[16];
};

struct proc_val {
    u64 count;
    u64 first_ns;
    u64 last_ns;
    u32 pid;           // the last process seen
    u32 ppid;          // its parent (0 when the kernel's BTF does not say where to read it)
    char filename[FILENAME_LEN];  // exec: the first file executed in the window
};

BPF_PERCPU_HASH(proc_a, struct proc_key, struct proc_val, PROC_ENTRIES);
BPF_PERCPU_HASH(proc_b, struct proc_key, struct proc_val, PROC_ENTRIES);
BPF_ARRAY_OF_MAPS(proc_active, "proc_a", 1);

static __always_inline u32 current_ppid(void) {
    u32 ppid = 0;
#if defined(TASK_REAL_PARENT_OFFSET) && defined(TASK_TGID_OFFSET)
    u64 task = bpf_get_current_task(), parent = 0;
    bpf_probe_read_kernel(&parent, sizeof(parent), (void *)(task + TASK_REAL_PARENT_OFFSET));
    if (parent)
        bpf_probe_read_kernel(&ppid, sizeof(ppid), (void *)(parent + TASK_TGID_OFFSET));
#endif
    return ppid;
}

static __always_inline void proc_add(struct proc_key *key, struct proc_val *init, u32 pid, u64 now) {
    int zero = 0;
    void *inner = proc_active.lookup(&zero);
    if (!inner)
        return;
    struct proc_val *v = agg_slot(inner, key, init);
    if (!v) {
        count_lost(LOST_PROC_MAP_FULL);
        return;
    }
    if (!v->count)  // the first on this CPU (another CPU may have created the entry)
        v->first_ns = now;
    v->count++;
    v->last_ns = now;
    v->pid = pid;
    v->ppid = current_ppid();
}

#ifdef PROG_EXEC
TRACEPOINT_PROBE(sched, sched_process_exec) {
    u64 now = bpf_ktime_get_ns();
    struct proc_key key;
    __builtin_memset(&key, 0, sizeof(key));
    key.kind = KIND_EXEC;
    key.cgroup_id = bpf_get_current_cgroup_id();
    bpf_get_current_comm(&key.comm, sizeof(key.comm));
    struct proc_val init;
    __builtin_memset(&init, 0, sizeof(init));
    init.first_ns = now;
    TP_DATA_LOC_READ_STR(init.filename, filename, sizeof(init.filename));
    proc_add(&key, &init, bpf_get_current_pid_tgid() >> 32, now);
    return 0;
}
#endif

#ifdef PROG_EXIT
TRACEPOINT_PROBE(sched, sched_process_exit) {
    u64 pid_tgid = bpf_get_current_pid_tgid();
#ifdef TP_sched_process_exit_group_dead
    if (!args->group_dead)
        return 0;
#else
    if ((u32)pid_tgid != (u32)(pid_tgid >> 32))
        return 0;
#endif
    u64 now = bpf_ktime_get_ns();
    struct proc_key key;
    __builtin_memset(&key, 0, sizeof(key));
    key.kind = KIND_EXIT;
    key.cgroup_id = bpf_get_current_cgroup_id();
    bpf_get_current_comm(&key.comm, sizeof(key.comm));
#ifdef TASK_EXIT_CODE_OFFSET
    u64 task = bpf_get_current_task();
    bpf_probe_read_kernel(&key.status, sizeof(key.status), (void *)(task + TASK_EXIT_CODE_OFFSET));
#else
    key.status = -1;
#endif
    struct proc_val init;
    __builtin_memset(&init, 0, sizeof(init));
    init.first_ns = now;
    proc_add(&key, &init, pid_tgid >> 32, now);
    return 0;
}
#endif
