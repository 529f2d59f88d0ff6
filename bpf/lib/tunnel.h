/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Remote pod CIDRs: route lookup, tunnel key, and the path-MTU guard for encapsulation. */
#pragma once

#include "lib/maps.bpf.h"
#include "lib/parse.h"

static __always_inline struct sl_route *sl_route_lookup(const struct sl_ip *ip)
{
	struct sl_route_key key = {};

	key.prefixlen = SL_ROUTE_KEY_FAMILY_BITS + (ip->family == SL_AF_INET ? 32 : 128);
	key.family = ip->family;
	__builtin_memcpy(key.addr, ip->addr, sizeof(key.addr));
	return bpf_map_lookup_elem(&sl_routes, &key);
}

/* Sets the collect-metadata tunnel key: remote node, VNI. 0 or a drop reason. */
static __always_inline int sl_set_tunnel(struct __sk_buff *skb, const struct sl_route *rt,
					 const struct sl_config *cfg)
{
	struct bpf_tunnel_key key = {};
	__u64 flags = 0;

	key.tunnel_id = cfg->vni;
	key.tunnel_ttl = SL_TUNNEL_TTL;
	if (rt->node_ip4) {
		key.remote_ipv4 = bpf_ntohl(rt->node_ip4);
	} else {
		__builtin_memcpy(key.remote_ipv6, rt->node_ip6, sizeof(key.remote_ipv6));
		flags |= BPF_F_TUNINFO_IPV6;
	}
	if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), flags) < 0)
		return SL_DROP_TUNNEL_KEY;
	return 0;
}

/*
 * Whether the packet fits the overlay once encapsulated (native routing: the underlay). Oversized packets go to the stack,
 * whose route through sluice_vxlan carries the MTU: it fragments or answers "fragmentation
 * needed", which a redirect would silently skip. GSO packets are judged by their segments.
 */
static __always_inline int sl_fits_overlay(struct __sk_buff *skb, struct sl_pkt *p,
					   const struct sl_config *cfg)
{
	__u32 mtu = cfg->overlay_mtu;
	__u32 seg, hl;

	if (!mtu)
		return 1;
	if (!skb->gso_size)
		return skb->len - ETH_HLEN <= mtu;

	hl = p->ip4 ? p->ip4->ihl * 4 : sizeof(struct ipv6hdr);
	seg = skb->gso_size + hl;
	if (p->l4_proto == IPPROTO_TCP) {
		struct tcphdr *th = (void *)p->eth + ETH_HLEN + hl;

		if ((void *)(th + 1) > p->end)
			return 0;
		seg += th->doff * 4;
	} else if (p->l4_proto == IPPROTO_UDP) {
		seg += sizeof(struct udphdr);
	} else {
		return 0;
	}
	return seg <= mtu;
}
