// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The node's underlay device in native-routing mode (no encapsulation: remote pod CIDRs are
 * routed over the node network, the nodes L2-adjacent). The device is the node's own network,
 * not only ours: what is not for a local pod passes on untouched and uncounted, with
 * TC_ACT_UNSPEC, so programs after ours (TCX or clsact) still see it.
 *
 * from_native (ingress): a packet addressed to this host at L2 and to a local endpoint at L3,
 *   from a remote node's pod CIDR or a remote node's address (sl_routes) → routed hop, L2
 *   rewrite + bpf_redirect_peer: what the stack would have done, without its forwarding path.
 *   Any other source (the outside world, an address of this node's own pods) is the stack's to
 *   judge (rp_filter, forwarding rules), as are replies of flows this node's stack translated
 *   (lib/nat.h), IPv6 with extension headers (the NAT check cannot see past them) and packets
 *   whose TTL expires here.
 * to_native (egress): while flow records are the NAT detection in use, records the flows the
 *   stack routes to a remote pod CIDR (a Service DNAT to a remote backend), so that their
 *   replies come back through the stack. from_pod's own redirects carry SL_MARK_NATIVE, which
 *   is cleared here: they are not recorded.
 */
#include "lib/common.h"
#include "lib/l2.h"
#include "lib/maps.bpf.h"
#include "lib/nat.h"
#include "lib/parse.h"
#include "lib/tunnel.h"

SEC("tc")
int sl_from_native(struct __sk_buff *skb)
{
	struct sl_endpoint_key key;
	struct sl_endpoint *ep;
	struct sl_ip src;
	struct sl_pkt p;
	int act;

	/* another host's frame (flooded by the switch), broadcast, multicast: not routed here */
	if (skb->pkt_type != SL_PACKET_HOST)
		return TC_ACT_UNSPEC;
	if (sl_parse(skb, &p) || (!p.ip4 && !p.ip6))
		return TC_ACT_UNSPEC; /* ARP, malformed IP: the stack's as ever */
	if (p.ip4) {
		sl_ip_from4(&key.ip, p.ip4->daddr);
		sl_ip_from4(&src, p.ip4->saddr);
	} else if (p.ip6) {
		sl_ip_from6(&key.ip, &p.ip6->daddr);
		sl_ip_from6(&src, &p.ip6->saddr);
	} else {
		return TC_ACT_UNSPEC;
	}
	ep = bpf_map_lookup_elem(&sl_endpoints, &key);
	if (!ep)
		return TC_ACT_UNSPEC; /* node traffic, Services, the outside world */

	/* For a local pod from here on: every verdict is counted. A remote pod's (or node's)
	 * address arrives here exactly when its route points back out of this device, so this
	 * is strict rp_filter's answer for the packets we take. */
	if (!sl_route_lookup(&src))
		return sl_to_stack(skb);
	if (p.ip6 && p.ip6_ext)
		return sl_to_stack(skb); /* as from_pod: the stack forwards what the NAT check cannot see */
	if (sl_nat_diverts(skb, &p, sl_get_config(), 0, &act))
		return act;
	/* parse pointers are still valid: neither lookup nor the NAT check moves packet data */
	if (sl_routed_hop(&p))
		return sl_to_stack(skb);
	return sl_deliver_local(skb, &p, ep, SL_CNT_NATIVE_IN);
}

SEC("tc")
int sl_to_native(struct __sk_buff *skb)
{
	struct sl_config *cfg;
	struct sl_route *rt;
	struct sl_ip dst;
	struct sl_pkt p;

	if (skb->mark & SL_MARK_NATIVE) {
		skb->mark &= ~SL_MARK_NATIVE; /* redirected by from_pod */
		return TC_ACT_UNSPEC;
	}
	cfg = sl_get_config();
	if (sl_nat_method(cfg) != SL_NAT_RECORDS)
		return TC_ACT_UNSPEC;
	if (sl_parse(skb, &p) || (!p.ip4 && !p.ip6))
		return TC_ACT_UNSPEC;
	if (p.ip4)
		sl_ip_from4(&dst, p.ip4->daddr);
	else if (p.ip6)
		sl_ip_from6(&dst, &p.ip6->daddr);
	else
		return TC_ACT_UNSPEC;
	rt = sl_route_lookup(&dst);
	/* a remote pod CIDR only: node-to-node traffic (a node-address route, whose node is the
	 * destination itself) is not ours to record */
	if (!rt || (p.ip4 && rt->node_ip4 == p.ip4->daddr) ||
	    (p.ip6 && sl_ip6_eq(&p.ip6->daddr, rt->node_ip6)))
		return TC_ACT_UNSPEC;
	sl_record_stack_flow(skb, &p, cfg);
	return TC_ACT_UNSPEC;
}
