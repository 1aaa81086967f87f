// SPDX-License-Identifier: GPL-2.0 OR MIT
//
// roamer's AF_XDP port program: every frame received on the port's device goes to the AF_XDP
// socket of its receive queue (the XSK map holds one socket per queue), except frames larger
// than the device's MTU allows, which go to the host's stack, where the port's AF_PACKET socket
// (vnet-hdr) takes them whole with their offload metadata: a veth peer's large TCP segments
// (generic XDP, which the port uses on a veth, leaves the peer its segmentation offload) and
// anything GRO made. A multi-buffer (`xdp.frags`) program, so that such a frame reaches it at
// all, and its length is the whole frame's (bpf_xdp_get_buff_len).
//
// The two sockets keep no common order, so a TCP or UDP flow that has sent a large segment
// sends its other frames above FOLLOW_MIN bytes to the stack too, for a while: a one-MSS
// segment then cannot overtake the large one before it. Small frames (acknowledgements, the
// 64-byte floods) always go to the socket without a look at their headers.
//
// Nothing else is passed to the host's stack on purpose: a software-backend port takes the
// whole interface, as an AF_PACKET port does (there is no address of roamer's own on it;
// roamer's control traffic is punted by the forwarding core and sent out through the port). A
// queue without a socket in the map passes its frames to the stack (bpf_redirect_map's
// fallback action), so a device with more queues than roamer opened loses nothing silently:
// the port refuses such devices anyway (it opens one queue and requires the device to have
// one).

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} roamer_xsks SEC(".maps");

// What the port tells the program (xdp::Setting):
// - SETTING_LARGEST: the largest frame that goes to the socket, the device's MTU with its
//   Ethernet header and one VLAN tag, kept as the MTU changes; anything larger is a large
//   segment, whose offload request only the stack's socket can carry;
// - SETTING_EPOCH: advanced by the port every 30 s; a flow marked in this epoch or the one
//   before follows its large segments (0: flows are not followed).
#define SETTING_LARGEST 0
#define SETTING_EPOCH 1
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} roamer_port SEC(".maps");

// The epoch in which a flow (by a hash of its addresses, protocol and ports) last sent a large
// segment. Two flows sharing a slot both follow: slower for the other one, never wrong.
#define FLOW_SLOTS 65536
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FLOW_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} roamer_large_flows SEC(".maps");

// Until the port has set it: the largest MTU a port takes (xdp::MAX_MTU) with its headers.
#define LARGEST_SOCKET_FRAME (3498 + 14 + 4)

// Frames up to this size go to the socket whatever their flow.
#define FOLLOW_MIN 256

struct vlan_tag {
	__be16 tci;
	__be16 proto;
};

// The flow slot of a TCP or UDP frame (IPv4 or IPv6, at most one VLAN tag); 0 for anything
// else.
static __always_inline int flow_slot(struct xdp_md *ctx, __u32 *slot)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 hash, ports;
	__u16 proto;
	void *l3;

	if ((void *)(eth + 1) > end)
		return 0;
	proto = eth->h_proto;
	l3 = eth + 1;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan_tag *tag = l3;

		if ((void *)(tag + 1) > end)
			return 0;
		proto = tag->proto;
		l3 = tag + 1;
	}
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;
		__u32 *l4;

		if ((void *)(ip + 1) > end)
			return 0;
		if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
			return 0;
		l4 = l3 + ip->ihl * 4;
		if ((void *)(l4 + 1) > end)
			return 0;
		ports = *l4;
		hash = ip->saddr ^ (ip->daddr * 0x9e3779b1) ^ ip->protocol;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;
		__u32 *l4;

		if ((void *)(ip6 + 1) > end)
			return 0;
		if (ip6->nexthdr != IPPROTO_TCP && ip6->nexthdr != IPPROTO_UDP)
			return 0;
		l4 = (void *)(ip6 + 1);
		if ((void *)(l4 + 1) > end)
			return 0;
		ports = *l4;
		hash = ip6->saddr.in6_u.u6_addr32[2] ^ ip6->saddr.in6_u.u6_addr32[3] ^
		       ((ip6->daddr.in6_u.u6_addr32[2] ^ ip6->daddr.in6_u.u6_addr32[3]) *
			0x9e3779b1) ^
		       ip6->nexthdr;
	} else {
		return 0;
	}
	hash ^= ports * 0x85ebca6b;
	hash ^= hash >> 16;
	*slot = hash & (FLOW_SLOTS - 1);
	return 1;
}

SEC("xdp.frags")
int roamer_xdp_redirect(struct xdp_md *ctx)
{
	__u32 len = bpf_xdp_get_buff_len(ctx);
	__u32 key, limit, epoch, slot;
	__u32 *setting, *mark = 0;

	if (len <= FOLLOW_MIN)
		return bpf_redirect_map(&roamer_xsks, ctx->rx_queue_index, XDP_PASS);
	key = SETTING_LARGEST;
	setting = bpf_map_lookup_elem(&roamer_port, &key);
	limit = setting && *setting ? *setting : LARGEST_SOCKET_FRAME;
	key = SETTING_EPOCH;
	setting = bpf_map_lookup_elem(&roamer_port, &key);
	epoch = setting ? *setting : 0;
	if (epoch && flow_slot(ctx, &slot))
		mark = bpf_map_lookup_elem(&roamer_large_flows, &slot);
	if (len > limit) {
		if (mark)
			*mark = epoch;
		return XDP_PASS;
	}
	if (mark && (*mark == epoch || *mark + 1 == epoch))
		return XDP_PASS;
	return bpf_redirect_map(&roamer_xsks, ctx->rx_queue_index, XDP_PASS);
}

char _license[] SEC("license") = "Dual MIT/GPL";
