/* Maps and shared layouts of the LISP data path (lisp_tc.c). The Rust side
 * (platforms/src/kernel/lisp_offload/maps.rs) mirrors every struct here byte for byte:
 * change both together. */
#ifndef ROAMER_LISP_MAPS_H
#define ROAMER_LISP_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Capacities, reported as "table full" by LispOffload::apply. */
#define MAP_CACHE_MAX 65536
#define DATABASE_MAX 4096
#define AWAY_MAX 16384
#define DYN_RANGE_MAX 256
#define ADDR_MAX 256
#define SUBNET_MAX 256
#define REPORTED_MAX 16384
/* Locators of the best priority kept per map-cache entry (the others can never be chosen). */
#define MAX_CANDIDATES 8

#define FAM_V4 4
#define FAM_V6 6

/* An EID prefix: family octet then the address, so one trie holds both families (the family
 * octet is always inside the prefix: prefixlen = 8 + EID prefix length). */
struct eid_key {
	__u32 prefixlen;
	__u8 data[20]; /* [0] family, [1..17) address, rest 0 */
};

/* A prefix scoped to an interface (dynamic-EID ranges, the interface's own subnets):
 * prefixlen = 32 + 8 + prefix length. */
struct if_key {
	__u32 prefixlen;
	__u8 data[24]; /* [0..4) ifindex big-endian, [4] family, [5..21) address */
};

/* An address of ours: family + address (v4 in the first 4 octets). */
struct addr {
	__u8 family;
	__u8 pad[3];
	__u8 a[16];
};

struct src_key {
	__u32 ifindex;
	__u32 family;
};

struct locator {
	/* Cumulative weight up to and including this locator (choose_locator's walk). */
	__u32 cum_weight;
	struct addr rloc;
};

/* Negative actions (hal::NegativeAction). */
#define NEG_NO_ACTION 0
#define NEG_NATIVELY_FORWARD 1
#define NEG_SEND_MAP_REQUEST 2
#define NEG_DROP 3

struct mc_val {
	__u32 iid;
	__u8 negative;
	/* Whether the entry has locators at all (false: a negative entry). */
	__u8 has_locators;
	/* Locators of the best priority (0 when all are priority 255: no usable locator). */
	__u8 n_cand;
	__u8 pad;
	__u32 total_weight;
	struct locator cand[MAX_CANDIDATES];
};

struct db_val {
	__u32 iid;
};

struct range_val {
	__u8 extended_subnet;
	__u8 pad[3];
};

struct config {
	__u64 miss_interval_ns;
	__u64 eid_refresh_ns;
	__u64 away_redetect_ns;
	__u64 too_big_ns;
	__u32 flow_seed;
	__u32 pad;
};

/* Event kinds (HalEvent variants). */
#define EV_MAP_CACHE_MISS 1
#define EV_EID_NOT_HERE 2
#define EV_NO_ROUTE 3
#define EV_DYNAMIC_EID 4

struct event {
	__u32 kind;
	__u32 iid;
	__u32 ifindex;
	__u32 pad;
	/* MapCacheMiss: a dest, b source. EidNotHere/NoRoute: a eid, b source RLOC, c inner source.
	 * DynamicEidSeen: a eid. */
	struct addr a;
	struct addr b;
	struct addr c;
};

/* Rate-limit kinds (the software core's rate_ok kinds). */
#define RL_MISS 0
#define RL_NOT_HERE_RLOC 1
#define RL_NOT_HERE_EID 2
#define RL_NO_ROUTE 3
#define RL_DYNAMIC 4
#define RL_TOO_BIG 6
#define RL_AWAY_BACK 7
#define RL_TTL 9

struct rl_key {
	__u32 kind;
	struct addr addr;
};

/* Counter indexes; names in lisp_offload (COUNTER_NAMES), in this order. */
enum counter {
	C_ENCAP,
	C_DECAP,
	C_MAP_CACHE_MISS,
	C_NEGATIVE,
	C_NO_ROUTE,
	C_NO_LOCATOR,
	C_TOO_BIG,
	C_EID_NOT_HERE,
	C_LOCAL_EID_NO_ROUTE,
	C_BAD_LISP,
	C_NO_HEADROOM,
	C_PUNT_CONTROL,
	C_EVENTS_LOST,
	C_RELAYED,
	C_FRAGMENTED,
	C_TTL_EXPIRED,
	C_DECAP_FORWARDED,
	C_COUNT,
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAP_CACHE_MAX);
	__type(key, struct eid_key);
	__type(value, struct mc_val);
} map_cache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, DATABASE_MAX);
	__type(key, struct eid_key);
	__type(value, struct db_val);
} database SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, AWAY_MAX);
	__type(key, struct eid_key);
	__type(value, struct db_val);
} away SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, DYN_RANGE_MAX);
	__type(key, struct if_key);
	__type(value, struct range_val);
} dyn_ranges SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, SUBNET_MAX);
	__type(key, struct if_key);
	__type(value, __u8);
} subnets SEC(".maps");

/* Our addresses (decapsulate LISP data sent to them; drop TCP 4342 to them). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ADDR_MAX);
	__type(key, struct addr);
	__type(value, __u32);
} own_addrs SEC(".maps");

/* The outer source per egress interface and family (the lowest address, as source_rloc). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ADDR_MAX);
	__type(key, struct src_key);
	__type(value, struct addr);
} source_rloc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, REPORTED_MAX);
	__type(key, struct rl_key);
	__type(value, __u64);
} reported SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, C_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

_Static_assert(sizeof(struct eid_key) == 24, "eid_key layout (layout.rs)");
_Static_assert(sizeof(struct if_key) == 28, "if_key layout (layout.rs)");
_Static_assert(sizeof(struct addr) == 20, "addr layout (layout.rs)");
_Static_assert(sizeof(struct mc_val) == 204, "mc_val layout (layout.rs)");
_Static_assert(sizeof(struct config) == 40, "config layout (layout.rs)");
_Static_assert(sizeof(struct event) == 76, "event layout (layout.rs)");

#endif
