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
// Nothing else is passed to the host's stack on purpose: a software-backend port takes the
// whole interface, as an AF_PACKET port does (there is no address of roamer's own on it;
// roamer's control traffic is punted by the forwarding core and sent out through the port). A
// queue without a socket in the map passes its frames to the stack (bpf_redirect_map's
// fallback action), so a device with more queues than roamer opened loses nothing silently:
// the port refuses such devices anyway (it opens one queue and requires the device to have
// one).

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} roamer_xsks SEC(".maps");

// The largest frame that goes to the socket (entry 0): the device's MTU with its Ethernet
// header and one VLAN tag, kept by the port as the MTU changes. Anything larger is a large
// segment, whose offload request only the stack's socket can carry.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} roamer_largest_frame SEC(".maps");

// Until the port has set it: the largest MTU a port takes (xdp::MAX_MTU) with its headers.
#define LARGEST_SOCKET_FRAME (3498 + 14 + 4)

SEC("xdp.frags")
int roamer_xdp_redirect(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u32 *largest = bpf_map_lookup_elem(&roamer_largest_frame, &key);
	__u32 limit = largest && *largest ? *largest : LARGEST_SOCKET_FRAME;

	if (bpf_xdp_get_buff_len(ctx) > limit)
		return XDP_PASS;
	return bpf_redirect_map(&roamer_xsks, ctx->rx_queue_index, XDP_PASS);
}

char _license[] SEC("license") = "Dual MIT/GPL";
