// SPDX-License-Identifier: GPL-2.0
/* LISP data path at the TC hook, loaded by platforms/src/kernel/lisp_offload.rs.
 *
 * lisp_itr: TC ingress of EID-facing interfaces. A packet the kernel would send to a blackhole
 *   route (knl installs every LISP route as one) is encapsulated towards a map-cache locator and
 *   redirected to the underlay; everything else goes on to the kernel untouched.
 * lisp_etr: TC ingress of underlay interfaces. LISP data (UDP 4341) to one of our addresses is
 *   decapsulated and handed to the kernel to route. Everything else goes on to the kernel, whose
 *   local delivery hands LISP control and reliable registration to the daemon's raw sockets.
 *
 * The behaviour mirrors the software core (forwarding/src/pipeline/lisp.rs); where it cannot,
 * a comment says what differs (summed up in platforms/src/kernel/lisp_offload/mod.rs). Headers are read with bpf_skb_load_bytes into the stack: simpler
 * for the verifier than direct packet access, and these programs are not byte-shuffling loops. */

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lisp_maps.h"

char LICENSE[] SEC("license") = "GPL";

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif
/* Linux 6.3 added these; the installed uapi header may predate them. */
#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV4
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV6 (1ULL << 8)
#endif

/* Returned by encapsulate (+ S, the largest inner packet that fits) for a DF-clear IPv4 packet
 * too big to encapsulate; above every TC_ACT_* code. */
#define FRAGMENT 0x10000
#define LISP_DATA_PORT 4341
#define LISP_CONTROL_PORT 4342
#define OVERHEAD_V4 36 /* 20 IPv4 + 8 UDP + 8 LISP */
#define OVERHEAD_V6 56 /* 40 IPv6 + 8 UDP + 8 LISP */
#define SOURCE_PORT_BASE 49152
#define PROTO_TCP 6
#define PROTO_UDP 17
#define PROTO_SCTP 132

/* What the programs need of an IP header. */
struct pkt {
	__u8 family;
	__u8 proto;
	__u8 ttl;
	__u8 tos;
	__u16 tot_len;	/* the whole IP packet */
	__u16 frag;	/* IPv4 flags + fragment offset (host order) */
	__u32 l4off;	/* from the IP header */
	__u32 ports;	/* first 4 octets of the L4 header (host order), if has_ports */
	__u32 flow_label;
	__u8 has_ports;
	__u8 pad[3];
	struct addr src;
	struct addr dst;
};

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += 1; /* per-CPU: no atomic needed */
}

/* Parses the IP header at `off`; -1 when it is not one we handle. */
static __noinline int parse_ip(struct __sk_buff *skb, __u32 off, __u16 ethertype,
				    struct pkt *p)
{
	__u32 l4 = 0;
	__u8 ports_ok = 0;

	if (ethertype == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)) < 0 || ip.version != 4 ||
		    ip.ihl < 5)
			return -1;
		p->family = FAM_V4;
		p->proto = ip.protocol;
		p->ttl = ip.ttl;
		p->tos = ip.tos;
		p->tot_len = bpf_ntohs(ip.tot_len);
		p->frag = bpf_ntohs(ip.frag_off);
		p->l4off = ip.ihl * 4;
		__builtin_memcpy(p->src.a, &ip.saddr, 4);
		__builtin_memcpy(p->dst.a, &ip.daddr, 4);
		/* Fragments after the first carry no ports; every fragment hashes alike. */
		ports_ok = (p->frag & 0x3fff) == 0;
	} else if (ethertype == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, off, &ip6, sizeof(ip6)) < 0 || ip6.version != 6)
			return -1;
		p->family = FAM_V6;
		p->proto = ip6.nexthdr;
		p->ttl = ip6.hop_limit;
		p->tos = (ip6.priority << 4) | (ip6.flow_lbl[0] >> 4);
		p->tot_len = 40 + bpf_ntohs(ip6.payload_len);
		p->frag = 0;
		p->l4off = 40;
		p->flow_label = ((__u32)(ip6.flow_lbl[0] & 0x0f) << 16) |
				((__u32)ip6.flow_lbl[1] << 8) | ip6.flow_lbl[2];
		__builtin_memcpy(p->src.a, &ip6.saddr, 16);
		__builtin_memcpy(p->dst.a, &ip6.daddr, 16);
		ports_ok = 1; /* as the software core: no extension-header walk */
	} else {
		return -1;
	}
	p->src.family = p->family;
	p->dst.family = p->family;
	if (ports_ok && (p->proto == PROTO_TCP || p->proto == PROTO_UDP || p->proto == PROTO_SCTP) &&
	    bpf_skb_load_bytes(skb, off + p->l4off, &l4, 4) == 0) {
		p->ports = bpf_ntohl(l4);
		p->has_ports = 1;
	}
	return 0;
}

/* The software core's flow hash (forwarding/src/wire/lisp_data/flow.rs): murmur3 mixing of the
 * inner addresses, protocol, (IPv6) flow label and ports, then fmix32. Same inputs, same value. */
static __always_inline __u32 rotl(__u32 x, int r)
{
	return (x << r) | (x >> (32 - r));
}

static __always_inline __u32 mix(__u32 h, __u32 word)
{
	__u32 k = rotl(word * 0xcc9e2d51, 15) * 0x1b873593;

	return rotl(h ^ k, 13) * 5 + 0xe6546b64;
}

static __always_inline __u32 be32(const __u8 *b)
{
	return ((__u32)b[0] << 24) | ((__u32)b[1] << 16) | ((__u32)b[2] << 8) | b[3];
}

static __always_inline __u32 flow_hash(const struct pkt *p, __u32 seed)
{
	__u32 h = seed;

	if (p->family == FAM_V4) {
		h = mix(h, be32(p->src.a));
		h = mix(h, be32(p->dst.a));
		h = mix(h, p->proto);
	} else {
#pragma unroll
		for (int i = 0; i < 16; i += 4)
			h = mix(h, be32(p->src.a + i));
#pragma unroll
		for (int i = 0; i < 16; i += 4)
			h = mix(h, be32(p->dst.a + i));
		h = mix(h, p->proto);
		h = mix(h, p->flow_label);
	}
	if (p->has_ports)
		h = mix(h, p->ports);
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	return h ^ (h >> 16);
}

static __always_inline void eid_key_of(struct eid_key *k, const struct addr *a)
{
	k->prefixlen = 8 + (a->family == FAM_V4 ? 32 : 128);
	k->data[0] = a->family;
	__builtin_memcpy(&k->data[1], a->a, 16);
}

/* At most one report per (kind, address) per interval: the software core's rate_ok. Only
 * called on the slow paths (a miss, an EID not here, a dynamic-EID candidate), so the clock
 * read is not per forwarded packet. */
static __noinline int rate_ok(__u32 kind, const struct addr *a, __u64 interval)
{
	struct rl_key k = {};
	__u64 now = bpf_ktime_get_ns();
	__u64 *last;

	k.kind = kind;
	k.addr = *a;
	last = bpf_map_lookup_elem(&reported, &k);
	if (last) {
		if (now - *last < interval)
			return 0;
		*last = now;
		return 1;
	}
	bpf_map_update_elem(&reported, &k, &now, BPF_ANY);
	return 1;
}

/* kind_iid: the event kind in the top octet, the 24-bit instance-ID below (BPF functions take
 * at most 5 arguments). */
static __noinline void report(__u32 kind_iid, __u32 ifindex, const struct addr *a,
			      const struct addr *b, const struct addr *c)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		count(C_EVENTS_LOST);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->kind = kind_iid >> 24;
	e->iid = kind_iid & 0xffffff;
	e->ifindex = ifindex;
	e->a = *a;
	if (b)
		e->b = *b;
	if (c)
		e->c = *c;
	bpf_ringbuf_submit(e, 0);
}

static __always_inline void if_key_of(struct if_key *k, __u32 ifindex, const struct addr *a)
{
	__u32 be = bpf_htonl(ifindex);

	k->prefixlen = 32 + 8 + (a->family == FAM_V4 ? 32 : 128);
	__builtin_memcpy(k->data, &be, 4);
	k->data[4] = a->family;
	__builtin_memcpy(&k->data[5], a->a, 16);
}

/* Dynamic-EID detection (detect_dynamic_eid in the software core). */
static __noinline void detect_dynamic(struct __sk_buff *skb, const struct pkt *p,
					   const struct config *cfg)
{
	struct if_key ik = {};
	struct eid_key ek = {};
	struct range_val *r;
	int is_away;

	if_key_of(&ik, skb->ingress_ifindex, &p->src);
	r = bpf_map_lookup_elem(&dyn_ranges, &ik);
	if (!r)
		return;
	eid_key_of(&ek, &p->src);
	is_away = bpf_map_lookup_elem(&away, &ek) != 0;
	/* Across subnets a host of the interface's own subnet is at home, not a dynamic EID,
	 * unless we were told it had moved away: then it is back. */
	if (!r->extended_subnet && bpf_map_lookup_elem(&subnets, &ik) && !is_away)
		return;
	if (is_away ? rate_ok(RL_AWAY_BACK, &p->src, cfg->away_redetect_ns)
		    : rate_ok(RL_DYNAMIC, &p->src, cfg->eid_refresh_ns))
		report(EV_DYNAMIC_EID << 24 | 0, skb->ingress_ifindex, &p->src, 0, 0);
}

static __always_inline __u16 ipv4_csum(const void *hdr)
{
	const __u16 *w = hdr;
	__u32 s = 0;

#pragma unroll
	for (int i = 0; i < 10; i++)
		s += w[i];
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return ~s;
}

struct outer_v4 {
	struct iphdr ip;
	struct udphdr udp;
	__u8 lisp[8];
} __attribute__((packed));

/* The 8-octet LISP header as the software core writes it: N bit and a random 24-bit nonce;
 * I bit and the instance-ID when it is not 0 (then the LSB octet is 0); L bit clear. */
static __always_inline void lisp_header(__u8 *h, __u32 iid)
{
	__u32 nonce = bpf_get_prandom_u32() & 0xffffff;

	h[0] = 0x80 | (iid ? 0x08 : 0);
	h[1] = nonce >> 16;
	h[2] = nonce >> 8;
	h[3] = nonce;
	h[4] = iid ? iid >> 16 : 0;
	h[5] = iid ? iid >> 8 : 0;
	h[6] = iid ? iid : 0;
	h[7] = 0;
}

/* The software core's inner TTL / hop-limit decrement before encapsulation. */
static __always_inline int decrement_ttl(struct __sk_buff *skb, const struct pkt *p)
{
	__u8 ttl = p->ttl - 1;

	if (p->family == FAM_V4) {
		__u16 old_w = bpf_htons(((__u16)p->ttl << 8) | p->proto);
		__u16 new_w = bpf_htons(((__u16)ttl << 8) | p->proto);

		if (bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), old_w,
					new_w, 2) < 0)
			return -1;
		return bpf_skb_store_bytes(skb, ETH_HLEN + offsetof(struct iphdr, ttl), &ttl, 1, 0);
	}
	return bpf_skb_store_bytes(skb, ETH_HLEN + offsetof(struct ipv6hdr, hop_limit), &ttl, 1, 0);
}

/* Big-endian 16-bit one's complement sum of `len` (even, at most 128) octets. */
static __always_inline __u32 sum16(const __u8 *b, __u32 len)
{
	__u32 s = 0;

	for (int i = 0; i < 128; i += 2) {
		if (i >= len)
			break;
		s += ((__u32)b[i] << 8) | b[i + 1];
	}
	return s;
}

static __always_inline __u16 fold(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return bpf_htons(~s & 0xffff);
}

#define ICMP_TTL_EXPIRED 0x80000000
#define QUOTE_V4_MAX 68 /* IPv4 header with options + 8 octets */
#define QUOTE_V6 48	/* IPv6 header + 8 octets */

struct reply_v4 {
	struct ethhdr eth;
	struct iphdr ip;
	__u8 icmp[8];
	__u8 quote[QUOTE_V4_MAX];
} __attribute__((packed));

struct reply_v6 {
	struct ethhdr eth;
	struct ipv6hdr ip;
	__u8 icmp[8];
	__u8 quote[QUOTE_V6];
} __attribute__((packed));

union reply {
	struct reply_v4 v4;
	struct reply_v6 v6;
};

/* The reply is built here, not on the stack: the call chain's stack is limited to 512 octets. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, union reply);
} reply_buf SEC(".maps");

/* ICMP errors of the ITR, as the software core sends them (too_big / icmp_time_exceeded):
 * - too big to encapsulate (RFC 9300 §7.1, stateless): ICMP fragmentation-needed (DF set) or
 *   ICMPv6 packet-too-big carrying S = L - H (`info`'s low 16 bits);
 * - `info` ICMP_TTL_EXPIRED: time exceeded, for a packet whose TTL ends at a LISP route;
 * rewritten in place from the packet (which is then
 * trimmed) and sent back out of the interface it came in by, from our lowest address of the
 * family there, quoting the IP header + 8 octets: the software core's too_big / icmp_error.
 * (A DF-clear IPv4 packet is cut by fragment() instead.) */
static __noinline int icmp_error(struct __sk_buff *skb, const struct pkt *p,
				 const struct config *cfg, __u32 info)
{
	struct src_key sk = {};
	struct addr *our;
	struct ethhdr eth;
	union reply *buf;
	__u32 zero = 0;
	int ttl = info & ICMP_TTL_EXPIRED;
	__u32 s_max = info & 0xffff;

	count(ttl ? C_TTL_EXPIRED : C_TOO_BIG);
	if (!ttl && p->family == FAM_V4 && !(p->frag & 0x4000))
		return TC_ACT_SHOT;
	if (!rate_ok(ttl ? RL_TTL : RL_TOO_BIG, &p->src, cfg->too_big_ns))
		return TC_ACT_SHOT;
	sk.ifindex = skb->ingress_ifindex;
	sk.family = p->family;
	our = bpf_map_lookup_elem(&source_rloc, &sk);
	buf = bpf_map_lookup_elem(&reply_buf, &zero);
	if (!our || !buf || bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)) < 0)
		return TC_ACT_SHOT;
	__builtin_memset(buf, 0, sizeof(*buf));

	if (p->family == FAM_V4) {
		struct reply_v4 *r = &buf->v4;
		/* Masked so that the verifier sees 8 <= q <= 68 (l4off is IHL * 4). */
		__u32 q = (p->l4off & 0x3c) + 8;
		__u32 len;

		if (bpf_skb_load_bytes(skb, ETH_HLEN, r->quote, q) < 0)
			return TC_ACT_SHOT;
		__builtin_memcpy(r->eth.h_dest, eth.h_source, ETH_ALEN);
		__builtin_memcpy(r->eth.h_source, eth.h_dest, ETH_ALEN);
		r->eth.h_proto = bpf_htons(ETH_P_IP);
		r->ip.version = 4;
		r->ip.ihl = 5;
		r->ip.tot_len = bpf_htons(20 + 8 + q);
		r->ip.ttl = 64;
		r->ip.protocol = IPPROTO_ICMP;
		__builtin_memcpy(&r->ip.saddr, our->a, 4);
		__builtin_memcpy(&r->ip.daddr, p->src.a, 4);
		r->ip.check = ipv4_csum(&r->ip);
		if (ttl) {
			r->icmp[0] = 11; /* time exceeded in transit */
		} else {
			r->icmp[0] = 3; /* destination unreachable */
			r->icmp[1] = 4; /* fragmentation needed and DF set */
			r->icmp[6] = s_max >> 8;
			r->icmp[7] = s_max;
		}
		{
			__u16 c = fold(sum16(r->icmp, 8 + q));

			__builtin_memcpy(&r->icmp[2], &c, 2);
		}
		len = ETH_HLEN + 20 + 8 + q;
		if (bpf_skb_change_tail(skb, len, 0) < 0 ||
		    bpf_skb_store_bytes(skb, 0, r, len, 0) < 0)
			return TC_ACT_SHOT;
	} else {
		struct reply_v6 *r = &buf->v6;
		__u32 s;

		if (bpf_skb_load_bytes(skb, ETH_HLEN, r->quote, QUOTE_V6) < 0)
			return TC_ACT_SHOT;
		__builtin_memcpy(r->eth.h_dest, eth.h_source, ETH_ALEN);
		__builtin_memcpy(r->eth.h_source, eth.h_dest, ETH_ALEN);
		r->eth.h_proto = bpf_htons(ETH_P_IPV6);
		r->ip.version = 6;
		r->ip.payload_len = bpf_htons(8 + QUOTE_V6);
		r->ip.nexthdr = 58; /* ICMPv6 */
		r->ip.hop_limit = 64;
		__builtin_memcpy(&r->ip.saddr, our->a, 16);
		__builtin_memcpy(&r->ip.daddr, p->src.a, 16);
		if (ttl) {
			r->icmp[0] = 3; /* time exceeded: hop limit exceeded in transit */
		} else {
			r->icmp[0] = 2; /* packet too big */
			r->icmp[6] = s_max >> 8;
			r->icmp[7] = s_max;
		}
		/* Pseudo-header: addresses, upper-layer length, next header. */
		s = sum16((const __u8 *)&r->ip.saddr, 32) + 8 + QUOTE_V6 + 58;
		s += sum16(r->icmp, 8 + QUOTE_V6);
		{
			__u16 c = fold(s);

			__builtin_memcpy(&r->icmp[2], &c, 2);
		}
		if (bpf_skb_change_tail(skb, sizeof(*r), 0) < 0 ||
		    bpf_skb_store_bytes(skb, 0, r, sizeof(*r), 0) < 0)
			return TC_ACT_SHOT;
	}
	return bpf_redirect(skb->ingress_ifindex, 0);
}

/* Fold a one's complement sum to 16 bits (not complemented). */
static __always_inline __u32 fold16(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	return (s & 0xffff) + (s >> 16);
}

/* The one's complement sum of the inner packet (after the TTL decrement) for the outer UDP
 * checksum. Where the inner L4 checksum is valid, or is to be completed by checksum offload,
 * the L4 part sums to the complement of its pseudo-header (local checksum offload, as Linux's
 * lco_csum does for its UDP tunnels): the payload need not be read. -1 for any other inner
 * packet (IPv4 UDP without checksum, fragments, IPv6 extension headers, other protocols):
 * summing a whole packet in a TC program costs the verifier more than this path is worth, so
 * those are sent with a zero UDP checksum (RFC 6935/6936; the software core computes one). */
static __noinline __s64 inner_sum(struct __sk_buff *skb, const struct pkt *p)
{
	__u32 s = 0, pseudo, l4len = p->tot_len - p->l4off;
	int lco = 0;

	if (p->family == FAM_V6) {
		__u8 h[40];

		if (bpf_skb_load_bytes(skb, ETH_HLEN, h, 40) < 0)
			return -1;
		s = sum16(h, 40);
		pseudo = sum16(p->src.a, 16) + sum16(p->dst.a, 16);
		lco = p->proto == PROTO_TCP || p->proto == PROTO_UDP || p->proto == 58;
	} else {
		/* An IPv4 header with a valid checksum sums to 0xffff, i.e. 0. */
		pseudo = sum16(p->src.a, 4) + sum16(p->dst.a, 4);
		if ((p->frag & 0x3fff) == 0) {
			if (p->proto == 1)
				return s; /* ICMP: its checksum covers it, sums to 0 */
			if (p->proto == PROTO_UDP) {
				__u16 c = 0;

				if (bpf_skb_load_bytes(skb, ETH_HLEN + p->l4off + 6, &c, 2) < 0)
					return -1;
				lco = c != 0; /* a zero UDP checksum over IPv4: not computed */
			}
			lco |= p->proto == PROTO_TCP;
		}
	}
	if (!lco)
		return -1;
	pseudo = fold16(pseudo + l4len + p->proto);
	return fold16(s + (0xffff - pseudo));
}

/* What the outer headers carry (one pointer: BPF functions take at most 5 arguments). */
struct encap_args {
	struct addr src;
	struct addr rloc;
	__u32 sport;
	__u32 iid;
	__s64 inner; /* the inner packet's one's complement sum (IPv6 outer); -1: none */
};

/* Grows the packet at the MAC layer and writes outer IPv4 + UDP + LISP (the software core's
 * encapsulate_in_place): TTL and DSCP/ECN from the inner header, DF set, UDP checksum 0. */
static __noinline int write_outer_v4(struct __sk_buff *skb, const struct pkt *p,
				     const struct encap_args *a)
{
	struct outer_v4 o = {};
	__u16 tot = p->tot_len + OVERHEAD_V4;
	__u16 eth_type = bpf_htons(ETH_P_IP);
	__u64 flags = BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP;

	/* A UDP GSO packet keeps its datagram size (its segments are datagrams of their own). */
	if (skb->gso_size && p->proto != PROTO_TCP)
		flags |= BPF_F_ADJ_ROOM_FIXED_GSO;
	/* A packet relayed by the ETR still carries the encapsulation mark of the tunnel it came
	 * by, and the kernel refuses to nest: without GSO, the ENCAP flags are not needed. */
	if (bpf_skb_adjust_room(skb, OVERHEAD_V4, BPF_ADJ_ROOM_MAC, flags) < 0 &&
	    (skb->gso_size || bpf_skb_adjust_room(skb, OVERHEAD_V4, BPF_ADJ_ROOM_MAC, 0) < 0))
		return -1;
	o.ip.version = 4;
	o.ip.ihl = 5;
	o.ip.tos = p->tos; /* DSCP copied, ECN copied (RFC 6040 normal mode) */
	o.ip.tot_len = bpf_htons(tot);
	o.ip.frag_off = bpf_htons(0x4000); /* DF, as the software core */
	o.ip.ttl = p->ttl - 1;
	o.ip.protocol = PROTO_UDP;
	__builtin_memcpy(&o.ip.saddr, a->src.a, 4);
	__builtin_memcpy(&o.ip.daddr, a->rloc.a, 4);
	o.ip.check = ipv4_csum(&o.ip);
	o.udp.source = bpf_htons(a->sport);
	o.udp.dest = bpf_htons(LISP_DATA_PORT);
	o.udp.len = bpf_htons(tot - 20);
	o.udp.check = 0; /* IPv4 outer: zero UDP checksum (RFC 9300 §5.3), as the core */
	lisp_header(o.lisp, a->iid);
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &o, sizeof(o), 0) < 0 ||
	    bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &eth_type, 2, 0) < 0)
		return -1;
	return 0;
}

struct outer_v6 {
	struct ipv6hdr ip;
	struct udphdr udp;
	__u8 lisp[8];
} __attribute__((packed));

/* The same with an IPv6 outer header (flow label 0, as the software core), its UDP checksum
 * from the inner packet's sum, or zero when there is none (a GSO packet, see inner_sum). */
static __noinline int write_outer_v6(struct __sk_buff *skb, const struct pkt *p,
				     const struct encap_args *a)
{
	struct outer_v6 o = {};
	__u16 udp_len = p->tot_len + 16;
	__u16 eth_type = bpf_htons(ETH_P_IPV6);
	__u64 flags = BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP;
	__u32 s;

	if (skb->gso_size && p->proto != PROTO_TCP)
		flags |= BPF_F_ADJ_ROOM_FIXED_GSO;
	/* A packet relayed by the ETR still carries the encapsulation mark of the tunnel it came
	 * by, and the kernel refuses to nest: without GSO, the ENCAP flags are not needed. */
	if (bpf_skb_adjust_room(skb, OVERHEAD_V6, BPF_ADJ_ROOM_MAC, flags) < 0 &&
	    (skb->gso_size || bpf_skb_adjust_room(skb, OVERHEAD_V6, BPF_ADJ_ROOM_MAC, 0) < 0))
		return -1;
	o.ip.version = 6;
	o.ip.priority = p->tos >> 4;
	o.ip.flow_lbl[0] = (p->tos & 0x0f) << 4;
	o.ip.payload_len = bpf_htons(udp_len);
	o.ip.nexthdr = PROTO_UDP;
	o.ip.hop_limit = p->ttl - 1;
	__builtin_memcpy(&o.ip.saddr, a->src.a, 16);
	__builtin_memcpy(&o.ip.daddr, a->rloc.a, 16);
	o.udp.source = bpf_htons(a->sport);
	o.udp.dest = bpf_htons(LISP_DATA_PORT);
	o.udp.len = bpf_htons(udp_len);
	lisp_header(o.lisp, a->iid);
	if (a->inner >= 0) {
		/* Pseudo-header, UDP header (checksum 0), LISP header, inner packet. */
		s = sum16(a->src.a, 16) + sum16(a->rloc.a, 16) + udp_len + PROTO_UDP;
		s += sum16((const __u8 *)&o.udp, 16);
		s = fold16(s + (__u32)a->inner);
		o.udp.check = fold(s);
		if (o.udp.check == 0)
			o.udp.check = 0xffff; /* 0 means "no checksum" */
	}
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &o, sizeof(o), 0) < 0 ||
	    bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &eth_type, 2, 0) < 0)
		return -1;
	return 0;
}

/* ITR: map-cache lookup, locator choice, encapsulation, redirect to the underlay. */
static __noinline int encapsulate(struct __sk_buff *skb, const struct pkt *p,
				  const struct config *cfg, struct bpf_fib_lookup *fp)
{
	struct eid_key k = {};
	struct mc_val *mc;
	struct addr *own;
	struct src_key sk = {};
	struct bpf_redir_neigh nh = {};
	struct encap_args args = {};
	__u32 hash, iid, n, idx = MAX_CANDIDATES, egress, overhead;
	int rc, resolved;

	eid_key_of(&k, &p->dst);
	mc = bpf_map_lookup_elem(&map_cache, &k);
	if (!mc) {
		/* The software core holds the packet until the Map-Reply; here it is dropped (the
		 * sender retransmits). */
		if (rate_ok(RL_MISS, &p->dst, cfg->miss_interval_ns))
			report(EV_MAP_CACHE_MISS << 24 | 0, skb->ingress_ifindex, &p->dst, &p->src, 0);
		count(C_MAP_CACHE_MISS);
		return TC_ACT_SHOT;
	}
	iid = mc->iid;
	if (!mc->has_locators) {
		switch (mc->negative) {
		case NEG_NATIVELY_FORWARD:
			count(C_NO_ROUTE);
			break;
		case NEG_SEND_MAP_REQUEST:
			if (rate_ok(RL_MISS, &p->dst, cfg->miss_interval_ns))
				report(EV_MAP_CACHE_MISS << 24 | iid, skb->ingress_ifindex, &p->dst,
				       &p->src, 0);
			count(C_NEGATIVE);
			break;
		default:
			count(C_NEGATIVE);
		}
		return TC_ACT_SHOT;
	}
	/* choose_locator: lowest priority wins (userspace kept only those), then the flow hash
	 * picks by weight, or evenly when every weight is 0. */
	hash = flow_hash(p, cfg->flow_seed);
	n = mc->n_cand;
	if (n == 0 || n > MAX_CANDIDATES) {
		count(C_NO_LOCATOR);
		return TC_ACT_SHOT;
	}
	if (mc->total_weight == 0) {
		idx = hash % n;
	} else {
		__u32 pick = hash % mc->total_weight;

#pragma unroll
		for (int i = 0; i < MAX_CANDIDATES; i++) {
			if (i < n && pick < mc->cand[i].cum_weight) {
				idx = i;
				break;
			}
		}
	}
	if (idx >= MAX_CANDIDATES) {
		count(C_NO_LOCATOR);
		return TC_ACT_SHOT;
	}
	args.rloc = mc->cand[idx].rloc;
#define f (*fp)
	__builtin_memset(fp, 0, sizeof(*fp));

	/* Route the outer packet: egress interface, next hop and its MTU. */
	overhead = args.rloc.family == FAM_V4 ? OVERHEAD_V4 : OVERHEAD_V6;
	f.ifindex = skb->ingress_ifindex;
	f.l4_protocol = PROTO_UDP;
	f.dport = bpf_htons(LISP_DATA_PORT);
	if (args.rloc.family == FAM_V4) {
		f.family = AF_INET;
		f.tos = p->tos;
		__builtin_memcpy(&f.ipv4_dst, args.rloc.a, 4);
	} else {
		f.family = AF_INET6;
		__builtin_memcpy(f.ipv6_dst, args.rloc.a, 16);
	}
	/* GSO packets are cut after encapsulation: a TCP one into segments of the same outer size
	 * (gso_size shrinks by the overhead, below), so only non-GSO packets are checked here. */
	if (!skb->gso_size)
		f.tot_len = p->tot_len + overhead;
	rc = bpf_fib_lookup(skb, &f, sizeof(f), 0);
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED) {
		__u32 s_max = f.mtu_result > overhead ? f.mtu_result - overhead : 0;

		/* DF clear: the caller cuts the packet (fragment()) and encapsulates again. */
		if (p->family == FAM_V4 && !(p->frag & 0x4000))
			return FRAGMENT + s_max;
		return icmp_error(skb, p, cfg, s_max);
	}
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH) {
		count(C_NO_ROUTE);
		return TC_ACT_SHOT;
	}
	egress = f.ifindex;
	resolved = rc == BPF_FIB_LKUP_RET_SUCCESS;
	sk.ifindex = egress;
	sk.family = args.rloc.family;
	own = bpf_map_lookup_elem(&source_rloc, &sk);
	if (!own) {
		count(C_NO_ROUTE); /* no address of ours towards the RLOC */
		return TC_ACT_SHOT;
	}
	args.src = *own;
	/* The gateway, or the RLOC when on link. */
	if (args.rloc.family == FAM_V4) {
		nh.nh_family = AF_INET;
		nh.ipv4_nh = f.ipv4_dst;
	} else {
		nh.nh_family = AF_INET6;
		__builtin_memcpy(nh.ipv6_nh, f.ipv6_dst, 16);
	}
	if (p->tot_len + overhead > 0xffff) {
		count(C_NO_HEADROOM); /* BIG TCP super-packets: not encapsulated */
		return TC_ACT_SHOT;
	}

	if (decrement_ttl(skb, p) < 0) {
		count(C_NO_HEADROOM);
		return TC_ACT_SHOT;
	}
	args.sport = SOURCE_PORT_BASE | (hash & 0x3fff);
	args.iid = iid;
	if (args.rloc.family == FAM_V4) {
		rc = write_outer_v4(skb, p, &args);
	} else {
		/* The IPv6 outer needs a UDP checksum (the software core computes it). A GSO
		 * packet gets RFC 6935's zero checksum: the kernel cuts it after this program and
		 * fills no checksum into the segments of a SKB_GSO_UDP_TUNNEL packet. */
		args.inner = skb->gso_size ? -1 : inner_sum(skb, p);
		rc = write_outer_v6(skb, p, &args);
	}
	if (rc < 0) {
		count(C_NO_HEADROOM);
		return TC_ACT_SHOT;
	}
	count(C_ENCAP);
	/* The FIB resolved the next hop's MAC: set both MACs and skip the neighbour layer. */
	if (resolved) {
		if (bpf_skb_store_bytes(skb, 0, f.dmac, ETH_ALEN, 0) < 0 ||
		    bpf_skb_store_bytes(skb, ETH_ALEN, f.smac, ETH_ALEN, 0) < 0)
			return TC_ACT_SHOT;
		return bpf_redirect(egress, 0);
	}
#undef f
	return bpf_redirect_neigh(egress, &nh, sizeof(nh), 0);
}

/* skb->mark of the rest of a packet cut by fragment(), the split point in the low 16 bits. */
#define FRAG_MARK 0x4c460000
#define FRAG_MARK_MASK 0xffff0000

static __always_inline int rewrite_v4_header(struct __sk_buff *skb, __u16 tot_len, __u16 frag)
{
	struct iphdr ip;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return -1;
	ip.tot_len = bpf_htons(tot_len);
	ip.frag_off = bpf_htons(frag);
	ip.check = 0;
	ip.check = ipv4_csum(&ip);
	return bpf_skb_store_bytes(skb, ETH_HLEN, &ip, sizeof(ip), 0);
}

/* A DF-clear IPv4 packet too big to encapsulate is cut into fragments of at most S octets
 * before encapsulation, as the software core does. A TC program cannot make packets, so it cuts
 * one at a time: a clone of the packet goes back to this interface's ingress marked with the
 * split point (its pass keeps what follows: fragment_rest), and this skb keeps the first part.
 * Packets with IP options are dropped (options would have to be split by their copy bit). */
static __noinline int fragment(struct __sk_buff *skb, const struct pkt *p, __u32 s_max)
{
	__u32 n, mark = skb->mark;
	int rc;

	if (p->l4off != 20 || s_max < 28 || s_max > 0xffff)
		return -1;
	n = (s_max - 20) & ~7U;
	if (n + 20 >= p->tot_len)
		return -1;
	skb->mark = FRAG_MARK | n;
	rc = bpf_clone_redirect(skb, skb->ingress_ifindex, BPF_F_INGRESS);
	skb->mark = mark;
	if (rc < 0 || bpf_skb_change_tail(skb, ETH_HLEN + 20 + n, 0) < 0)
		return -1;
	return rewrite_v4_header(skb, 20 + n, 0x2000 | (p->frag & 0x1fff)); /* MF */
}

/* The clone's pass: drop the first `n` payload octets, move the offset on, keep MF. */
static __noinline int fragment_rest(struct __sk_buff *skb, __u32 n)
{
	struct iphdr ip;
	__u16 tot, frag;

	if (skb->protocol != bpf_htons(ETH_P_IP) ||
	    bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0 || ip.ihl != 5)
		return -1;
	tot = bpf_ntohs(ip.tot_len);
	frag = bpf_ntohs(ip.frag_off);
	if (n == 0 || (n & 7) || n + 20 >= tot ||
	    bpf_skb_adjust_room(skb, -(__s32)n, BPF_ADJ_ROOM_NET, 0) < 0)
		return -1;
	return rewrite_v4_header(skb, tot - n, (frag & 0x2000) | ((frag & 0x1fff) + n / 8));
}

/* What is not ours goes on with TC_ACT_UNSPEC, not TC_ACT_OK: with TCX, OK ends the chain and
 * both programs may sit on one interface (ITR first): the ETR must still see LISP data to us. */

/* A packet and its FIB lookup, off the stack: lisp_itr / lisp_etr -> encapsulate ->
 * icmp_error -> rate_ok would exceed the 512 octets BPF allows a call chain (Linux 6.1's
 * verifier counts the chain's frames whole). One per program, so neither overwrites the
 * other's. */
struct pkt_state {
	struct pkt p;
	struct bpf_fib_lookup f;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pkt_state);
} itr_buf SEC(".maps"), relay_buf SEC(".maps");

SEC("classifier")
int lisp_itr(struct __sk_buff *skb)
{
	struct pkt_state *st;
	struct config *cfg;
	__u32 zero = 0;
	int rc;
#define p (st->p)
#define f (st->f)

	/* Only frames to the interface's own MAC are routed. */
	if (skb->pkt_type != PACKET_HOST)
		return TC_ACT_UNSPEC;
	if ((skb->mark & FRAG_MARK_MASK) == FRAG_MARK) {
		__u32 n = skb->mark & ~FRAG_MARK_MASK;

		skb->mark = 0;
		if (fragment_rest(skb, n) < 0) {
			count(C_TOO_BIG);
			return TC_ACT_SHOT;
		}
	}
	st = bpf_map_lookup_elem(&itr_buf, &zero);
	if (!st)
		return TC_ACT_UNSPEC;
	__builtin_memset(st, 0, sizeof(*st));
	if (parse_ip(skb, ETH_HLEN, skb->protocol, &p) < 0)
		return TC_ACT_UNSPEC;
	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return TC_ACT_UNSPEC;
	detect_dynamic(skb, &p, cfg);

	f.ifindex = skb->ingress_ifindex;
	f.l4_protocol = p.proto;
	if (p.family == FAM_V4) {
		f.family = AF_INET;
		f.tos = p.tos;
		__builtin_memcpy(&f.ipv4_src, p.src.a, 4);
		__builtin_memcpy(&f.ipv4_dst, p.dst.a, 4);
	} else {
		f.family = AF_INET6;
		__builtin_memcpy(f.ipv6_src, p.src.a, 16);
		__builtin_memcpy(f.ipv6_dst, p.dst.a, 16);
	}
	rc = bpf_fib_lookup(skb, &f, sizeof(f), 0);
	/* LISP routes are blackhole routes in the kernel; anything else is forwarded natively. */
	if (rc != BPF_FIB_LKUP_RET_BLACKHOLE)
		return TC_ACT_UNSPEC;
	/* The kernel would drop it at the blackhole route without a word: answer as a router. */
	if (p.ttl <= 1)
		return icmp_error(skb, &p, cfg, ICMP_TTL_EXPIRED);
	rc = encapsulate(skb, &p, cfg, &f);
	if (rc < FRAGMENT)
		return rc;
	if (fragment(skb, &p, rc - FRAGMENT) < 0) {
		count(C_TOO_BIG);
		return TC_ACT_SHOT;
	}
	count(C_FRAGMENTED);
	__builtin_memset(&p, 0, sizeof(p));
	if (parse_ip(skb, ETH_HLEN, skb->protocol, &p) < 0)
		return TC_ACT_SHOT;
	rc = encapsulate(skb, &p, cfg, &f);
	return rc < FRAGMENT ? rc : TC_ACT_SHOT;
#undef p
#undef f
}

/* A host that moved away, whose new locators the map-server told us, is sent on there until
 * the sender's ITR follows the SMR (the software core's relays_to_new_location): the map-cache
 * has usable locators and none of the candidates is ours. */
static __noinline int relays(const struct addr *eid)
{
	struct eid_key k = {};
	struct mc_val *mc;

	eid_key_of(&k, eid);
	mc = bpf_map_lookup_elem(&map_cache, &k);
	if (!mc || !mc->has_locators || mc->n_cand == 0)
		return 0;
#pragma unroll
	for (int i = 0; i < MAX_CANDIDATES; i++) {
		if (i < mc->n_cand && bpf_map_lookup_elem(&own_addrs, &mc->cand[i].rloc))
			return 0;
	}
	return 1;
}

/* Returned by decapsulate when the decapsulated packet is to be encapsulated again. */
#define RELAY 1000

/* ETR: checks the inner destination, decapsulates and lets the kernel route the inner packet
 * (TC_ACT_OK), or returns RELAY with the inner packet decapsulated and parsed into `in`. */
static __noinline int decapsulate(struct __sk_buff *skb, const struct pkt *o,
				  const struct config *cfg, struct pkt *inp)
{
	__u32 lisp_off = ETH_HLEN + o->l4off + 8;
	__u32 inner_off = lisp_off + 8;
	struct eid_key ek = {};
	struct bpf_fib_lookup f = {};
	__u8 h[8];
	__u32 iid;
	__u16 inner_type;
	__u64 flags;
	int here, local, is_away, rc, relay = 0, direct = 0;
#define in (*inp)

	if (bpf_skb_load_bytes(skb, lisp_off, h, 8) < 0 || (h[0] & 0x04) /* GPE: not ours */) {
		count(C_BAD_LISP);
		return TC_ACT_SHOT;
	}
	iid = (h[0] & 0x08) ? ((__u32)h[4] << 16 | (__u32)h[5] << 8 | h[6]) : 0;
	{
		__u8 v = 0;

		if (bpf_skb_load_bytes(skb, inner_off, &v, 1) < 0) {
			count(C_BAD_LISP);
			return TC_ACT_SHOT;
		}
		inner_type = (v >> 4) == 4 ? bpf_htons(ETH_P_IP)
			   : (v >> 4) == 6 ? bpf_htons(ETH_P_IPV6) : 0;
	}
	if (!inner_type || parse_ip(skb, inner_off, inner_type, &in) < 0) {
		count(C_BAD_LISP);
		return TC_ACT_SHOT;
	}

	if (!bpf_map_lookup_elem(&own_addrs, &in.dst)) {
		eid_key_of(&ek, &in.dst);
		is_away = bpf_map_lookup_elem(&away, &ek) != 0;
		local = bpf_map_lookup_elem(&database, &ek) != 0;
		f.ifindex = skb->ingress_ifindex;
		f.l4_protocol = in.proto;
		if (in.family == FAM_V4) {
			f.family = AF_INET;
			__builtin_memcpy(&f.ipv4_src, in.src.a, 4);
			__builtin_memcpy(&f.ipv4_dst, in.dst.a, 4);
		} else {
			f.family = AF_INET6;
			__builtin_memcpy(f.ipv6_src, in.src.a, 16);
			__builtin_memcpy(f.ipv6_dst, in.dst.a, 16);
		}
		rc = bpf_fib_lookup(skb, &f, sizeof(f), 0);
		/* "here": a connected or gateway route (a LISP route is a blackhole one). The lookup
		 * measures the packet still encapsulated, so a full-sized inner packet can be "too
		 * big" for the EID-facing port only by the LISP overhead: still here; the kernel
		 * applies the MTU to the decapsulated packet it routes. */
		here = rc == BPF_FIB_LKUP_RET_SUCCESS || rc == BPF_FIB_LKUP_RET_NO_NEIGH ||
		       rc == BPF_FIB_LKUP_RET_FRAG_NEEDED;
		/* The FIB gave the egress and both MACs, and the packet fits: forward it from here
		 * as the kernel would (TTL decremented), without a second trip through its IP
		 * stack. Anything else (a neighbour to resolve, too big, TTL expiring) is the
		 * kernel's to route, with its ICMP errors. */
		direct = rc == BPF_FIB_LKUP_RET_SUCCESS && !is_away && in.ttl > 1;
		if (is_away || (!here && !local)) {
			/* SMR trigger. */
			if (rate_ok(RL_NOT_HERE_RLOC, &o->src, cfg->miss_interval_ns) ||
			    rate_ok(RL_NOT_HERE_EID, &in.dst, cfg->miss_interval_ns))
				report(EV_EID_NOT_HERE << 24 | iid, skb->ingress_ifindex, &in.dst, &o->src,
				       &in.src);
			/* The inner TTL is decremented on the way: two xTRs that both think the
			 * host away cannot loop it forever. */
			relay = is_away && in.ttl > 1 && relays(&in.dst);
			if (!relay) {
				count(C_EID_NOT_HERE);
				return TC_ACT_SHOT;
			}
		}
		if (!here && !relay) {
			if (rate_ok(RL_NO_ROUTE, &in.dst, cfg->miss_interval_ns))
				report(EV_NO_ROUTE << 24 | iid, skb->ingress_ifindex, &in.dst, &o->src,
				       &in.src);
			count(C_LOCAL_EID_NO_ROUTE);
			return TC_ACT_SHOT;
		}
	}

	flags = BPF_F_ADJ_ROOM_FIXED_GSO |
		(in.family == FAM_V4 ? BPF_F_ADJ_ROOM_DECAP_L3_IPV4 : BPF_F_ADJ_ROOM_DECAP_L3_IPV6);
	/* Kernels before 6.3 refuse the DECAP flags: same-family packets decapsulate without. */
	if ((bpf_skb_adjust_room(skb, -(__s32)(inner_off - ETH_HLEN), BPF_ADJ_ROOM_MAC, flags) < 0 &&
	     (in.family != o->family ||
	      bpf_skb_adjust_room(skb, -(__s32)(inner_off - ETH_HLEN), BPF_ADJ_ROOM_MAC,
				  BPF_F_ADJ_ROOM_FIXED_GSO) < 0)) ||
	    bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &inner_type, 2, 0) < 0) {
		count(C_NO_HEADROOM);
		return TC_ACT_SHOT;
	}
	count(C_DECAP);
	if (relay)
		return RELAY;
	if (direct) {
		if (decrement_ttl(skb, &in) < 0 || bpf_skb_store_bytes(skb, 0, f.dmac, ETH_ALEN, 0) < 0 ||
		    bpf_skb_store_bytes(skb, ETH_ALEN, f.smac, ETH_ALEN, 0) < 0)
			return TC_ACT_SHOT;
		count(C_DECAP_FORWARDED);
		return bpf_redirect(f.ifindex, 0);
	}
	return TC_ACT_OK;
#undef in
}

SEC("classifier")
int lisp_etr(struct __sk_buff *skb)
{
	struct pkt o = {};
	struct pkt_state *r;
	struct config *cfg;
	__u32 zero = 0;
	__u16 dport;
	int rc;

	if (skb->pkt_type != PACKET_HOST)
		return TC_ACT_UNSPEC;
	if (parse_ip(skb, ETH_HLEN, skb->protocol, &o) < 0 || !o.has_ports)
		return TC_ACT_UNSPEC;
	if (o.proto != PROTO_UDP && o.proto != PROTO_TCP)
		return TC_ACT_UNSPEC;
	if (!bpf_map_lookup_elem(&own_addrs, &o.dst))
		return TC_ACT_UNSPEC;
	dport = o.ports & 0xffff;
	if (o.proto == PROTO_TCP) {
		/* Both ends of a reliable-registration session: to 4342 (we are the map-server) and
		 * from 4342 (we are the ETR, on an ephemeral port the kernel knows nothing of). */
		if (dport != LISP_CONTROL_PORT && (o.ports >> 16) != LISP_CONTROL_PORT)
			return TC_ACT_UNSPEC;
		/* Reliable registration: the kernel delivers it to the daemon's raw socket, and a
		 * silent listener keeps the kernel's own TCP from answering (io.rs). */
		count(C_PUNT_CONTROL);
		return TC_ACT_UNSPEC;
	}
	if (dport != LISP_DATA_PORT)
		return TC_ACT_UNSPEC;
	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return TC_ACT_UNSPEC;
	r = bpf_map_lookup_elem(&relay_buf, &zero);
	if (!r)
		return TC_ACT_UNSPEC;
	__builtin_memset(&r->p, 0, sizeof(r->p));
	rc = decapsulate(skb, &o, cfg, &r->p);
	if (rc != RELAY)
		return rc;
	count(C_RELAYED);
	rc = encapsulate(skb, &r->p, cfg, &r->f);
	if (rc < FRAGMENT)
		return rc;
	count(C_TOO_BIG); /* a relayed DF-clear packet too big: not cut here */
	return TC_ACT_SHOT;
}
