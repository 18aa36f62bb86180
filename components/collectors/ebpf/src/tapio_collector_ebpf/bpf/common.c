// Shared by every Tapio eBPF program: sample kinds, lost-sample counters, the ring buffer, and
// double-buffered aggregation maps. The loader prepends the #defines (see programs.py) and then
// appends the program files it loads. Userspace decoders: domain/records.py (keep in step).
#include <uapi/linux/ptrace.h>
#include <uapi/linux/bpf.h>

// Kinds of ring-buffer samples and of aggregated keys (first u32 of each).
#define KIND_EXEC 1
#define KIND_EXIT 2
#define KIND_OOM 3
#define KIND_RETRANSMIT 4
#define KIND_RESET_SENT 5
#define KIND_RESET_RECEIVED 6
#define KIND_CONNECT 7
#define KIND_CONNECT_FAILED 8
#define KIND_CONNECT_LATENCY 9

// Why a sample was lost (index into `lost`).
#define LOST_RINGBUF_FULL 0
#define LOST_PROC_MAP_FULL 1
#define LOST_FLOW_MAP_FULL 2
#define LOST_OWNER_MAP_FULL 3
#define LOST_REASONS 4

BPF_PERCPU_ARRAY(lost, u64, LOST_REASONS);
BPF_RINGBUF_OUTPUT(samples, RINGBUF_PAGES);

static __always_inline void count_lost(u32 reason) {
    u64 *v = lost.lookup(&reason);
    if (v)
        (*v)++;
}

// The value of `key` in the aggregation map `inner` (the active half of a double buffer; on a
// per-CPU map, this CPU's), created from `init` on first use; 0 when the map is full.
static __always_inline void *agg_slot(void *inner, void *key, void *init) {
    void *v = bpf_map_lookup_elem(inner, key);
    if (v)
        return v;
    bpf_map_update_elem(inner, key, init, BPF_NOEXIST);
    return bpf_map_lookup_elem(inner, key);
}
