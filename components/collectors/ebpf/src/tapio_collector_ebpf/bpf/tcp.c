// TCP: retransmits, resets sent/received, connects (with latency SYN_SENT -> ESTABLISHED) and
// failed connects, aggregated per (cgroup, kind, addresses, service port) in a double-buffered
// per-CPU hash (see process.c); connects slower than LATENCY_THRESHOLD_NS also go to the ring buffer one by one.
//
// Retransmits, resets and handshakes run in softirq context, where the current task is not the
// socket's owner. The owner (cgroup, pid, comm) is remembered per socket when a process connects
// (-> SYN_SENT) or listens (-> LISTEN; accepted children inherit it) and forgotten at CLOSE.
#define ROLE_UNKNOWN 0
#define ROLE_CLIENT 1
#define ROLE_SERVER 2
#ifndef IPPROTO_TCP
#define IPPROTO_TCP 6
#endif
// 6.10+ tcp_send_reset carries an `enum sk_rst_reason` that older headers do not declare.
#define sk_rst_reason tapio_sk_rst_reason
enum tapio_sk_rst_reason { TAPIO_SK_RST_REASON_UNSPECIFIED };
#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif
#define S_ESTABLISHED 1
#define S_SYN_SENT 2
#define S_SYN_RECV 3
#define S_CLOSE 7
#define S_LISTEN 10

struct owner {
    u64 cgroup_id;
    u64 start_ns;      // when the connect began (clients)
    u32 pid;
    u32 role;
    char comm[16];
};

struct flow_key {
    u32 kind;
    u16 family;
    u16 lport;         // 0 on the client side (ephemeral)
    u16 rport;         // 0 on the server side (the peer's ephemeral port)
    u16 pad1;
    u32 pad2;
    u64 cgroup_id;
    u8 laddr[16];
    u8 raddr[16];
};

struct flow_val {
    u64 count;
    u64 first_ns;
    u64 last_ns;
    u64 latency_sum_ns;  // connects
    u64 latency_max_ns;
    u32 pid;
    u32 pad;
    char comm[16];
};

struct latency_sample {
    u32 kind;
    u32 pid;
    u64 ts_ns;
    u64 cgroup_id;
    u64 latency_ns;
    u16 family;
    u16 lport;
    u16 rport;
    u16 pad;
    u32 pad2;
    u32 pad3;
    u8 laddr[16];
    u8 raddr[16];
    char comm[16];
};

BPF_F_TABLE("lru_hash", u64, struct owner, owners, OWNER_ENTRIES, BPF_F_NO_COMMON_LRU);
BPF_HASH(listeners, u32, struct owner, 4096);  // (family << 16 | port) -> owner of the listener
BPF_PERCPU_HASH(flow_a, struct flow_key, struct flow_val, FLOW_ENTRIES);
BPF_PERCPU_HASH(flow_b, struct flow_key, struct flow_val, FLOW_ENTRIES);
BPF_ARRAY_OF_MAPS(flow_active, "flow_a", 1);

static __always_inline void set_owner_from_current(struct owner *o, u32 role, u64 now) {
    __builtin_memset(o, 0, sizeof(*o));
    o->cgroup_id = bpf_get_current_cgroup_id();
    o->start_ns = now;
    o->pid = bpf_get_current_pid_tgid() >> 32;
    o->role = role;
    bpf_get_current_comm(&o->comm, sizeof(o->comm));
}

// Fills the addresses of `key` (laddr/raddr from the tracepoint's saddr/daddr).
static __always_inline void key_addrs(struct flow_key *key, u16 family, const u8 *s4, const u8 *d4,
                                      const u8 *s6, const u8 *d6) {
    key->family = family;
    if (family == AF_INET6) {
        __builtin_memcpy(key->laddr, s6, 16);
        __builtin_memcpy(key->raddr, d6, 16);
    } else {
        __builtin_memcpy(key->laddr, s4, 4);
        __builtin_memcpy(key->raddr, d4, 4);
    }
}

static __always_inline struct owner *owner_of(u64 sk) {
    return sk ? owners.lookup(&sk) : 0;
}

// Counts one `kind` event of a socket whose owner is `o` (0: unknown -> cgroup 0).
static __always_inline struct flow_val *flow_add(struct flow_key *key, struct owner *o, u16 lport, u16 rport,
                                                 u64 now, u64 latency) {
    u32 role = o ? o->role : ROLE_UNKNOWN;
    key->lport = role == ROLE_CLIENT ? 0 : lport;
    key->rport = role == ROLE_SERVER ? 0 : rport;
    key->cgroup_id = o ? o->cgroup_id : 0;
    int zero = 0;
    void *inner = flow_active.lookup(&zero);
    if (!inner)
        return 0;
    struct flow_val init;
    __builtin_memset(&init, 0, sizeof(init));
    init.first_ns = now;
    struct flow_val *v = agg_slot(inner, key, &init);
    if (!v) {
        count_lost(LOST_FLOW_MAP_FULL);
        return 0;
    }
    if (!v->count)
        v->first_ns = now;
    v->count++;
    v->last_ns = now;
    if (o) {
        v->pid = o->pid;
        __builtin_memcpy(v->comm, o->comm, sizeof(v->comm));
    }
    if (latency) {
        v->latency_sum_ns += latency;
        if (latency > v->latency_max_ns)
            v->latency_max_ns = latency;
    }
    return v;
}

#ifdef PROG_TCP_CONNECT
TRACEPOINT_PROBE(sock, inet_sock_set_state) {
    if (args->protocol != IPPROTO_TCP)
        return 0;
    u64 sk = (u64)args->skaddr;
    int old = args->oldstate, new = args->newstate;
    struct owner o;
    if (new == S_SYN_SENT) {
        set_owner_from_current(&o, ROLE_CLIENT, bpf_ktime_get_ns());
        if (owners.update(&sk, &o))
            count_lost(LOST_OWNER_MAP_FULL);
        return 0;
    }
    if (new == S_LISTEN) {
        set_owner_from_current(&o, ROLE_SERVER, 0);
        u32 lk = ((u32)args->family << 16) | args->sport;
        listeners.update(&lk, &o);
        return 0;
    }
    if (new == S_SYN_RECV) {  // an accepted child: its owner is the listener's
        u32 lk = ((u32)args->family << 16) | args->sport;
        struct owner *l = listeners.lookup(&lk);
        if (l && owners.update(&sk, l))
            count_lost(LOST_OWNER_MAP_FULL);
        return 0;
    }
    if (old == S_LISTEN && new == S_CLOSE) {
        u32 lk = ((u32)args->family << 16) | args->sport;
        listeners.delete(&lk);
        return 0;
    }
    if (old == S_SYN_SENT && (new == S_ESTABLISHED || new == S_CLOSE)) {
        u64 now = bpf_ktime_get_ns();
        struct owner *ow = owners.lookup(&sk);
        u64 latency = 0;
        if (ow && now > ow->start_ns)
            latency = now - ow->start_ns;
        struct flow_key key;
        __builtin_memset(&key, 0, sizeof(key));
        key.kind = new == S_ESTABLISHED ? KIND_CONNECT : KIND_CONNECT_FAILED;
        key_addrs(&key, args->family, args->saddr, args->daddr, args->saddr_v6, args->daddr_v6);
        flow_add(&key, ow, args->sport, args->dport, now, new == S_ESTABLISHED ? latency : 0);
        if (new == S_ESTABLISHED && ow && latency >= LATENCY_THRESHOLD_NS) {
            struct latency_sample *s = samples.ringbuf_reserve(sizeof(struct latency_sample));
            if (!s) {
                count_lost(LOST_RINGBUF_FULL);
            } else {
                __builtin_memset(s, 0, sizeof(*s));
                s->kind = KIND_CONNECT_LATENCY;
                s->pid = ow->pid;
                s->ts_ns = now;
                s->cgroup_id = ow->cgroup_id;
                s->latency_ns = latency;
                s->family = key.family;
                s->lport = args->sport;
                s->rport = args->dport;
                __builtin_memcpy(s->laddr, key.laddr, 16);
                __builtin_memcpy(s->raddr, key.raddr, 16);
                __builtin_memcpy(s->comm, ow->comm, 16);
                samples.ringbuf_submit(s, 0);
            }
        }
    }
    if (new == S_CLOSE)
        owners.delete(&sk);
    return 0;
}
#endif

#ifdef PROG_TCP_RETRANSMIT
TRACEPOINT_PROBE(tcp, tcp_retransmit_skb) {
    struct flow_key key;
    __builtin_memset(&key, 0, sizeof(key));
    key.kind = KIND_RETRANSMIT;
    key_addrs(&key, args->family, args->saddr, args->daddr, args->saddr_v6, args->daddr_v6);
    flow_add(&key, owner_of((u64)args->skaddr), args->sport, args->dport, bpf_ktime_get_ns(), 0);
    return 0;
}
#endif

#ifdef PROG_TCP_RESET
TRACEPOINT_PROBE(tcp, tcp_receive_reset) {
    struct flow_key key;
    __builtin_memset(&key, 0, sizeof(key));
    key.kind = KIND_RESET_RECEIVED;
    key_addrs(&key, args->family, args->saddr, args->daddr, args->saddr_v6, args->daddr_v6);
    flow_add(&key, owner_of((u64)args->skaddr), args->sport, args->dport, bpf_ktime_get_ns(), 0);
    return 0;
}

// saddr/daddr are a sockaddr_in or sockaddr_in6 (family, port in network order, address); with
// no socket (a segment to a closed port) they are the reversed 4-tuple of the offending segment,
// so the local port is the one the peer tried: the service port.
TRACEPOINT_PROBE(tcp, tcp_send_reset) {
    struct flow_key key;
    __builtin_memset(&key, 0, sizeof(key));
    key.kind = KIND_RESET_SENT;
#ifdef TP_tcp_tcp_send_reset_sport  // before 6.10: ports and addresses as separate fields
    key_addrs(&key, args->family, args->saddr, args->daddr, args->saddr_v6, args->daddr_v6);
    u64 sk_old = (u64)args->skaddr;
    flow_add(&key, owner_of(sk_old), args->sport, sk_old ? args->dport : 0, bpf_ktime_get_ns(), 0);
    return 0;
#else
    u16 family = 0, lport = 0, rport = 0;
    bpf_probe_read_kernel(&family, 2, &args->saddr[0]);
    lport = ((u16)args->saddr[2] << 8) | args->saddr[3];
    rport = ((u16)args->daddr[2] << 8) | args->daddr[3];
    key.family = family;
    if (family == AF_INET6) {
        __builtin_memcpy(key.laddr, &args->saddr[8], 16);
        __builtin_memcpy(key.raddr, &args->daddr[8], 16);
    } else {
        __builtin_memcpy(key.laddr, &args->saddr[4], 4);
        __builtin_memcpy(key.raddr, &args->daddr[4], 4);
    }
    u64 sk = (u64)args->skaddr;
    flow_add(&key, owner_of(sk), lport, sk ? rport : 0, bpf_ktime_get_ns(), 0);
    return 0;
#endif
}
#endif
