// SPDX-License-Identifier: GPL-2.0 OR MIT
//
// roamer's AF_XDP port program: every frame received on the port's device goes to the AF_XDP
// socket of its receive queue (the XSK map holds one socket per queue).
//
// Nothing is passed to the host's stack on purpose: a software-backend port takes the whole
// interface, as an AF_PACKET port does (there is no address of roamer's own on it; roamer's
// control traffic is punted by the forwarding core and sent out through the port). A queue
// without a socket in the map passes its frames to the stack (bpf_redirect_map's fallback
// action), so a device with more queues than roamer opened loses nothing silently: the port
// refuses such devices anyway (it opens one queue and requires the device to have one).

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} roamer_xsks SEC(".maps");

SEC("xdp")
int roamer_xdp_redirect(struct xdp_md *ctx)
{
	return bpf_redirect_map(&roamer_xsks, ctx->rx_queue_index, XDP_PASS);
}

char _license[] SEC("license") = "Dual MIT/GPL";
