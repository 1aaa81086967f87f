// SPDX-License-Identifier: GPL-2.0
/* HSRP hello filter of the kernel backend, loaded by platforms/src/kernel/hello_filter.rs.
 *
 * hello_filter: TC ingress and egress of a port with `hsrp-hello-filter` (a DCI port, so that
 *   each data centre keeps its own active gateway). An HSRP hello (IPv4 UDP to 1985, v1 and
 *   v2; HSRP for IPv6, UDP to 2029) is dropped in both directions, as the software core does
 *   (forwarding/src/pipeline/mod.rs, is_hsrp_hello): at ingress before the bridge floods it
 *   into the VLAN or the host takes it, at egress whoever sent it (roamer's own hellos into the
 *   VLAN, or a local router's that the bridge floods). Everything else goes on untouched
 *   (TC_ACT_UNSPEC: to the next program on the hook, such as the LISP ETR, or to the kernel).
 *   Only filtered ports carry the program: other ports pay nothing for it. */

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define HSRP_PORT 1985
#define HSRP6_PORT 2029
#define PROTO_UDP 17
#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88A8

/* Counter slots: hellos dropped on the way in and on the way out (hello_filter.rs). */
#define C_DROPPED_IN 0
#define C_DROPPED_OUT 1
#define C_COUNT 2

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, C_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} hello_counters SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&hello_counters, &slot);

	if (v)
		*v += 1;
}

/* Whether the frame is an HSRP hello. The kernel usually holds a VLAN tag outside the data
 * (skb->vlan_tci); a tag still in the frame is skipped, as the software core does. */
static __always_inline int is_hello(struct __sk_buff *skb)
{
	__u32 l3 = ETH_HLEN;
	__u16 proto;

	if (bpf_skb_load_bytes(skb, 12, &proto, 2) < 0)
		return 0;
	if (proto == bpf_htons(ETH_P_8021Q_) || proto == bpf_htons(ETH_P_8021AD_)) {
		if (bpf_skb_load_bytes(skb, 16, &proto, 2) < 0)
			return 0;
		l3 += 4;
	}
	if (proto == bpf_htons(ETH_P_IP)) {
		__u8 ip[20];
		__u16 dport;

		if (bpf_skb_load_bytes(skb, l3, ip, sizeof(ip)) < 0)
			return 0;
		/* A later fragment has no UDP header to read a port from. */
		if (ip[9] != PROTO_UDP || ((ip[6] & 0x1f) | ip[7]) != 0)
			return 0;
		if (bpf_skb_load_bytes(skb, l3 + (ip[0] & 0x0f) * 4 + 2, &dport, 2) < 0)
			return 0;
		return dport == bpf_htons(HSRP_PORT);
	}
	if (proto == bpf_htons(ETH_P_IPV6)) {
		__u8 next;
		__u16 dport;

		if (bpf_skb_load_bytes(skb, l3 + 6, &next, 1) < 0 || next != PROTO_UDP)
			return 0;
		if (bpf_skb_load_bytes(skb, l3 + 40 + 2, &dport, 2) < 0)
			return 0;
		return dport == bpf_htons(HSRP6_PORT);
	}
	return 0;
}

static __always_inline int drop_hellos(struct __sk_buff *skb, __u32 slot)
{
	if (!is_hello(skb))
		return TC_ACT_UNSPEC;
	count(slot);
	return TC_ACT_SHOT;
}

SEC("classifier")
int hello_filter_in(struct __sk_buff *skb)
{
	return drop_hellos(skb, C_DROPPED_IN);
}

SEC("classifier")
int hello_filter_out(struct __sk_buff *skb)
{
	return drop_hellos(skb, C_DROPPED_OUT);
}
