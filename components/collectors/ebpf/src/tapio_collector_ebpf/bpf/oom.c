// OOM kills: one ring-buffer sample per victim (never aggregated: each kill matters).
struct oom_sample {
    u32 kind;
    u32 pid;           // the victim
    u64 ts_ns;
    u64 cgroup_id;     // cgroup of the task that ran into the limit (in a memcg OOM: the same cgroup)
    u32 trigger_pid;
    u32 uid;
    u64 total_vm;      // pages
    u64 anon_rss;
    u64 file_rss;
    u64 shmem_rss;
    u64 pgtables;      // bytes
    s32 oom_score_adj;
    u32 pad;
    char comm[16];     // the victim's
    char trigger_comm[16];
};

TRACEPOINT_PROBE(oom, mark_victim) {
    struct oom_sample *s = samples.ringbuf_reserve(sizeof(struct oom_sample));
    if (!s) {
        count_lost(LOST_RINGBUF_FULL);
        return 0;
    }
    __builtin_memset(s, 0, sizeof(*s));
    s->kind = KIND_OOM;
    s->pid = args->pid;
    s->ts_ns = bpf_ktime_get_ns();
    s->cgroup_id = bpf_get_current_cgroup_id();
    s->trigger_pid = bpf_get_current_pid_tgid() >> 32;
    bpf_get_current_comm(&s->trigger_comm, sizeof(s->trigger_comm));
#ifdef TP_oom_mark_victim_comm
    TP_DATA_LOC_READ_STR(s->comm, comm, sizeof(s->comm));
#endif
#ifdef TP_oom_mark_victim_total_vm
    s->total_vm = args->total_vm;
    s->anon_rss = args->anon_rss;
    s->file_rss = args->file_rss;
    s->shmem_rss = args->shmem_rss;
#endif
#ifdef TP_oom_mark_victim_uid
    s->uid = args->uid;
#endif
#ifdef TP_oom_mark_victim_pgtables
    s->pgtables = args->pgtables;
#endif
#ifdef TP_oom_mark_victim_oom_score_adj
    s->oom_score_adj = args->oom_score_adj;
#endif
    samples.ringbuf_submit(s, 0);
    return 0;
}
