/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* L2 rewrite, delivery into a local pod, and the routed hop's TTL/hop-limit decrement. */
#pragma once

#include "lib/maps.bpf.h"
#include "lib/parse.h"

/* The frame must look addressed to the receiving device, or it dies as PACKET_OTHERHOST. */
static __always_inline void sl_rewrite_l2(struct sl_pkt *p, const __u8 *dst, const __u8 *src)
{
	__builtin_memcpy(p->eth->h_dest, dst, ETH_ALEN);
	__builtin_memcpy(p->eth->h_source, src, ETH_ALEN);
}

#define SL_PACKET_HOST 0 /* PACKET_HOST, <linux/if_packet.h> */

/* A decapsulated frame goes on as addressed to this host: its inner destination MAC is the
 * sending pod's gateway (or the sending node's own overlay device), not this sluice_vxlan's,
 * and the stack drops such a frame as PACKET_OTHERHOST. Our redirects reset the type anyway. */
static __always_inline void sl_to_this_host(struct __sk_buff *skb)
{
	bpf_skb_change_type(skb, SL_PACKET_HOST);
}

/* Into a local pod: straight into its netns, or through its host veth's egress when a qdisc
 * there must see the traffic (a chained bandwidth plugin's limit). TC_ACT_REDIRECT or not. */
static __always_inline long sl_redirect_endpoint(const struct sl_endpoint *ep)
{
	if (ep->flags & SL_EP_F_VIA_VETH)
		return bpf_redirect(ep->ifindex, 0);
	return bpf_redirect_peer(ep->ifindex, 0);
}

/* The tail every way into a local pod shares: the frame addressed from its host veth to its
 * eth0, redirected, counted as `verdict`. Only p->eth is used. */
static __always_inline int sl_deliver_local(struct __sk_buff *skb, struct sl_pkt *p,
					    const struct sl_endpoint *ep, __u32 verdict)
{
	sl_rewrite_l2(p, ep->pod_mac, ep->host_mac);
	if (sl_redirect_endpoint(ep) != TC_ACT_REDIRECT)
		return sl_drop(skb, SL_DROP_REDIRECT);
	sl_count(verdict, skb->len);
	return TC_ACT_REDIRECT;
}

/* Like the kernel's ip_decrease_ttl(): incremental checksum update (RFC 1624). */
static __always_inline void sl_ip4_dec_ttl(struct iphdr *ip)
{
	__u32 check = (__u32)ip->check;

	check += (__u32)bpf_htons(0x0100);
	ip->check = (__sum16)(check + (check >= 0xFFFF));
	ip->ttl--;
}

/* A routed hop: 0 if the packet may be forwarded (TTL decremented), 1 if it must go to the
 * stack, which answers with ICMP time exceeded. */
static __always_inline int sl_routed_hop(struct sl_pkt *p)
{
	if (p->ip4) {
		if (p->ip4->ttl <= 1)
			return 1;
		sl_ip4_dec_ttl(p->ip4);
	} else if (p->ip6) {
		if (p->ip6->hop_limit <= 1)
			return 1;
		p->ip6->hop_limit--;
	}
	return 0;
}
