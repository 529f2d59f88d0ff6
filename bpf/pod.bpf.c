// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * from_pod: tc ingress of a pod's host-side veth, i.e. every packet a pod sends.
 * 1. the source must be the pod's own address (sl_ifaces[ifindex]), else drop;
 * 2. a local endpoint → L2 rewrite + bpf_redirect_peer into its netns;
 * 3. a remote node's pod CIDR → VXLAN headers pushed here and bpf_redirect_neigh out of the
 *    underlay (lib/vxlan.h); what that cannot take (no IPv4 node address or underlay yet, the
 *    kernel refusing the headroom) gets a tunnel key and a redirect to sluice_vxlan instead
 *    (native: redirect_neigh to the underlay, the remote node's address as next hop);
 * 4. anything else → the host stack (services, host, outside world).
 * IPv6 with extension headers goes to the stack after the source check (lib/parse.h).
 * Before 2 and 3, packets of flows the stack translated (lib/nat.h) go to the stack instead.
 *
 * to_pod: tc egress of the same veth, i.e. what the host stack delivers to the pod (our own
 * redirects skip it): records those flows while flow records are the NAT detection in use, and
 * ends the pod's SL_IFACE_F_UNTRANSLATED promise (sl_promise_ends).
 */
#include "lib/common.h"
#include "lib/l2.h"
#include "lib/maps.bpf.h"
#include "lib/nat.h"
#include "lib/parse.h"
#include "lib/tunnel.h"
#include "lib/vxlan.h"

/*
 * Neighbour discovery and router solicitation must always reach the host, whatever their source
 * (a pod answers the host's solicitations from its own address, probes from ::). Only what a
 * receiver would accept as ND passes unchecked (RFC 4861 section 7.1: hop limit 255, and on a
 * link that is addressed to a multicast group or a link-local address); anything else of those
 * types is judged like any packet, so it is no way around the source check.
 */
static __always_inline int sl_is_ndisc(struct sl_pkt *p)
{
	struct icmp6hdr *icmp;
	__u32 w0;

	if (!p->ip6 || p->ip6->nexthdr != IPPROTO_ICMPV6_NR || p->ip6->hop_limit != 255)
		return 0;
	w0 = bpf_ntohl(p->ip6->daddr.in6_u.u6_addr32[0]);
	if ((w0 >> 24) != 0xff && (w0 & 0xffc00000) != 0xfe800000)
		return 0;
	icmp = (void *)(p->ip6 + 1);
	if ((void *)(icmp + 1) > p->end)
		return 0;
	return icmp->icmp6_type >= 133 && icmp->icmp6_type <= 137;
}

/* 0 when the source address is the one this veth's pod owns, else a drop reason. The veth's
 * SL_IFACE_F_* flags go to *flags. */
static __always_inline int sl_check_source(struct __sk_buff *skb, struct sl_pkt *p, __u32 *flags)
{
	__u32 ifindex = skb->ifindex;
	struct sl_iface *id = bpf_map_lookup_elem(&sl_ifaces, &ifindex);

	if (!id)
		return SL_DROP_UNKNOWN_IFACE;
	*flags = id->flags;
	if (p->ip4) {
		if (!(id->flags & SL_IFACE_F_HAS_V4) || p->ip4->saddr != id->ip4)
			return SL_DROP_SPOOFED_SRC;
		return 0;
	}
	if (!p->ip6 || !(id->flags & SL_IFACE_F_HAS_V6) || !sl_ip6_eq(&p->ip6->saddr, id->ip6))
		return SL_DROP_SPOOFED_SRC;
	return 0;
}

static __always_inline int sl_redirect_local(struct __sk_buff *skb, struct sl_pkt *p,
					     const struct sl_endpoint *ep)
{
	if (sl_routed_hop(p))
		return sl_to_stack(skb);
	return sl_deliver_local(skb, p, ep, SL_CNT_REDIRECT_LOCAL);
}

static __always_inline int sl_forward_remote(struct __sk_buff *skb, struct sl_pkt *p,
					     const struct sl_route *rt, const struct sl_config *cfg)
{
	__u32 len;
	int err;

	if (!cfg)
		return sl_drop(skb, SL_DROP_NO_CONFIG);
	if (cfg->mode == SL_MODE_NATIVE) {
		struct bpf_redir_neigh nh = {};
		long ret;

		if (!cfg->underlay_ifindex)
			return sl_to_stack(skb);
		if (p->ip6) {
			/* The kernel resolves an IPv6 packet's next hop only as an IPv6 neighbour: the
			 * owner's IPv6 InternalIP, which the agent sets; without it, the stack's. */
			if (!sl_ip6_nonzero(rt->node_ip6))
				return sl_to_stack(skb);
			nh.nh_family = 10; /* AF_INET6 */
			__builtin_memcpy(nh.ipv6_nh, rt->node_ip6, sizeof(nh.ipv6_nh));
		} else {
			if (!rt->node_ip4)
				return sl_to_stack(skb);
			nh.nh_family = 2; /* AF_INET */
			nh.ipv4_nh = rt->node_ip4;
		}
		/* larger than the underlay carries (a pod MTU set too high): the stack's route
		 * answers "fragmentation needed" where a redirect would drop it silently */
		if (!sl_fits_overlay(skb, p, cfg))
			return sl_to_stack(skb);
		if (sl_routed_hop(p))
			return sl_to_stack(skb);
		ret = bpf_redirect_neigh(cfg->underlay_ifindex, &nh, sizeof(nh), 0);
		if (ret != TC_ACT_REDIRECT)
			return sl_drop(skb, SL_DROP_REDIRECT);
		/* flow records: the underlay's egress must not take this for a stack-routed packet */
		if (sl_nat_method(cfg) == SL_NAT_RECORDS)
			skb->mark |= SL_MARK_NATIVE;
		sl_count(SL_CNT_NATIVE, skb->len);
		return TC_ACT_REDIRECT;
	}

	if (!cfg->overlay_ifindex)
		return sl_to_stack(skb);
	if (!sl_fits_overlay(skb, p, cfg))
		return sl_to_stack(skb);
	if (sl_routed_hop(p))
		return sl_to_stack(skb);
	len = skb->len;
	err = sl_vxlan_encap(skb, p, rt, cfg);
	if (err == TC_ACT_REDIRECT) {
		sl_count(SL_CNT_ENCAP_DIRECT, len);
		return TC_ACT_REDIRECT;
	}
	if (err)
		return sl_drop(skb, err);
	/* the device path: what BPF cannot encapsulate, sluice_vxlan does */
	err = sl_set_tunnel(skb, rt, cfg);
	if (err)
		return sl_drop(skb, err);
	if (bpf_redirect(cfg->overlay_ifindex, 0) != TC_ACT_REDIRECT)
		return sl_drop(skb, SL_DROP_REDIRECT);
	sl_count(SL_CNT_ENCAP, skb->len);
	return TC_ACT_REDIRECT;
}

SEC("tc")
int sl_from_pod(struct __sk_buff *skb)
{
	struct sl_endpoint_key key;
	struct sl_endpoint *ep;
	struct sl_config *cfg;
	struct sl_route *rt = NULL;
	struct sl_pkt p;
	__u32 iface_flags = 0;
	int err, act;

	err = sl_parse(skb, &p);
	if (err)
		return sl_drop(skb, err);
	if (!p.ip4 && !p.ip6)
		return sl_to_stack(skb); /* ARP and everything else that is not IP */
	if (p.ip6 && (sl_is_ndisc(&p) || sl_ip6_is_local_scope(&p.ip6->saddr)))
		return sl_to_stack(skb);

	err = sl_check_source(skb, &p, &iface_flags);
	if (err)
		return sl_drop(skb, err);
	/* shaped by a chained plugin: its qdisc, then the stack, take everything */
	if (iface_flags & SL_IFACE_F_QDISC_EGRESS) {
		sl_count(SL_CNT_TO_STACK, skb->len);
		return TC_ACT_UNSPEC;
	}
	/* IPv6 behind extension headers (fragments among them): the NAT check cannot see the
	 * upper layer, so the stack (conntrack, reassembly where it must) forwards these instead,
	 * through the same host routes and sluice_vxlan. */
	if (p.ip6 && p.ip6_ext)
		return sl_to_stack(skb);

	if (p.ip4)
		sl_ip_from4(&key.ip, p.ip4->daddr);
	else if (p.ip6)
		sl_ip_from6(&key.ip, &p.ip6->daddr);
	else
		return sl_to_stack(skb);

	ep = bpf_map_lookup_elem(&sl_endpoints, &key);
	if (!ep) {
		rt = sl_route_lookup(&key.ip);
		if (!rt)
			return sl_to_stack(skb);
	}

	cfg = sl_get_config();
	if (sl_nat_diverts(skb, &p, cfg, iface_flags & SL_IFACE_F_UNTRANSLATED, &act))
		return act;

	if (ep)
		return sl_redirect_local(skb, &p, ep);
	if (!cfg)
		return sl_drop(skb, SL_DROP_NO_CONFIG);
	return sl_forward_remote(skb, &p, rt, cfg);
}

/*
 * Whether a packet the stack delivers to a pod ends its SL_IFACE_F_UNTRANSLATED promise. The
 * pod's own packets of that connection go back to the packet's source address: only where
 * from_pod would take them the fast way (a local endpoint, a remote pod CIDR) does it ask about
 * NAT, so only then can the connection matter, if the stack translated it. A Service's reply
 * to a client pod (from the Service address) or the host's probes never end the promise; a
 * backend's first translated connection from a pod does. Unparsable packets end it.
 */
static __always_inline int sl_promise_ends(struct __sk_buff *skb, const struct sl_pkt *p, int parsed)
{
	struct sl_endpoint_key src;

	if (!parsed)
		return 1;
	if (p->ip4)
		sl_ip_from4(&src.ip, p->ip4->saddr);
	else if (p->ip6)
		sl_ip_from6(&src.ip, &p->ip6->saddr);
	else
		return 0; /* ARP and everything else that is not IP */
	if (!bpf_map_lookup_elem(&sl_endpoints, &src) && !sl_route_lookup(&src.ip))
		return 0;
	if (p->ip6 && p->ip6_ext)
		return 1; /* the transport header is not where the lookup reads it */
	return sl_delivery_translated(skb, p);
}

SEC("tc")
int sl_to_pod(struct __sk_buff *skb)
{
	struct sl_config *cfg = sl_get_config();
	__u32 ifindex = skb->ifindex;
	struct sl_iface *id;
	struct sl_pkt p;
	int parsed = sl_parse(skb, &p) == 0;

	if (parsed && (p.ip4 || p.ip6))
		sl_record_stack_flow(skb, &p, cfg);
	/* Cleared before the packet goes on, so no reply of the pod's can find the promise made. */
	id = bpf_map_lookup_elem(&sl_ifaces, &ifindex);
	if (id && (id->flags & SL_IFACE_F_UNTRANSLATED) && sl_promise_ends(skb, &p, parsed))
		id->flags &= ~SL_IFACE_F_UNTRANSLATED; /* nobody sets it again: no atomic needed */
	return TC_ACT_OK; /* never in the way of what the stack delivers */
}
