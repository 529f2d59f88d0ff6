// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * sluice_vxlan, a collect-metadata VXLAN device.
 * from_overlay (ingress, decapsulated): a local endpoint → L2 rewrite + bpf_redirect_peer;
 *   an inner source inside another node's pod CIDR must come from that node's address.
 *   Replies of flows this node's stack translated (lib/nat.h) go to the stack instead.
 * to_overlay (egress): packets the stack routed here (host → remote pod, Service DNAT to a
 *   remote backend) get their tunnel key from the same routes map; redirected ones carry it.
 *   Stack-routed flows are recorded while flow records are the NAT detection in use.
 */
#include "lib/common.h"
#include "lib/l2.h"
#include "lib/maps.bpf.h"
#include "lib/nat.h"
#include "lib/parse.h"
#include "lib/tunnel.h"

/* 0 when the outer source is the node owning the inner source's pod CIDR (or the inner
 * source is no pod of a known node), else a drop reason. */
static __always_inline int sl_check_tunnel_source(struct __sk_buff *skb, const struct sl_ip *src)
{
	struct bpf_tunnel_key tk = {};
	struct sl_route *rt;

	/* Without metadata there is no outer header to hold against the inner one. A
	 * collect-metadata device always attaches it, so this only happens in tests. */
	if (bpf_skb_get_tunnel_key(skb, &tk, sizeof(tk), 0) < 0)
		return 0;
	rt = sl_route_lookup(src);
	if (!rt || !rt->node_ip4)
		return 0;
	return bpf_ntohl(rt->node_ip4) == tk.remote_ipv4 ? 0 : SL_DROP_SPOOFED_SRC;
}

SEC("tc")
int sl_from_overlay(struct __sk_buff *skb)
{
	struct sl_endpoint_key key;
	struct sl_endpoint *ep;
	struct sl_ip src;
	struct sl_pkt p;
	int err, act;

	err = sl_parse(skb, &p);
	if (err)
		return sl_drop(skb, err);
	if (!p.ip4 && !p.ip6)
		return sl_to_stack(skb);

	if (p.ip4) {
		sl_ip_from4(&key.ip, p.ip4->daddr);
		sl_ip_from4(&src, p.ip4->saddr);
	} else if (p.ip6) {
		sl_ip_from6(&key.ip, &p.ip6->daddr);
		sl_ip_from6(&src, &p.ip6->saddr);
	} else {
		return sl_to_stack(skb);
	}
	err = sl_check_tunnel_source(skb, &src);
	if (err)
		return sl_drop(skb, err);
	sl_to_this_host(skb);
	if (p.ip6 && p.ip6_ext)
		return sl_to_stack(skb); /* as from_pod: the stack forwards what the NAT check cannot see */

	ep = bpf_map_lookup_elem(&sl_endpoints, &key);
	if (!ep)
		return sl_to_stack(skb);

	if (sl_nat_diverts(skb, &p, sl_get_config(), &act))
		return act;

	/* parse pointers are still valid: neither the tunnel-key read nor the NAT check moves
	 * packet data */
	sl_rewrite_l2(&p, ep->pod_mac, ep->host_mac);
	if (sl_redirect_endpoint(ep) != TC_ACT_REDIRECT)
		return sl_drop(skb, SL_DROP_REDIRECT);
	sl_count(SL_CNT_DECAP, skb->len);
	return TC_ACT_REDIRECT;
}

SEC("tc")
int sl_to_overlay(struct __sk_buff *skb)
{
	struct bpf_tunnel_key tk = {};
	struct sl_config *cfg;
	struct sl_route *rt;
	struct sl_ip dst;
	struct sl_pkt p;
	int err;

	/* Redirected by from_pod: the key is already there. (Read back, a transmit key has its
	 * destination in local_ipv4 and remote_ipv4 zero: the helper reports the receive view, so
	 * success alone is the test. Decapsulated packets the stack forwards lose their tunnel
	 * metadata to the route, so nothing else arrives here with a key.) */
	if (bpf_skb_get_tunnel_key(skb, &tk, sizeof(tk), 0) == 0)
		return TC_ACT_OK;

	err = sl_parse(skb, &p);
	if (err)
		return sl_drop(skb, err);
	if (p.ip4)
		sl_ip_from4(&dst, p.ip4->daddr);
	else if (p.ip6)
		sl_ip_from6(&dst, &p.ip6->daddr);
	else
		return sl_drop(skb, SL_DROP_TUNNEL_KEY); /* no remote node for non-IP */

	cfg = sl_get_config();
	if (!cfg)
		return sl_drop(skb, SL_DROP_NO_CONFIG);
	rt = sl_route_lookup(&dst);
	if (!rt)
		return sl_drop(skb, SL_DROP_TUNNEL_KEY);
	sl_record_stack_flow(skb, &p, cfg);
	err = sl_set_tunnel(skb, rt, cfg);
	if (err)
		return sl_drop(skb, err);
	sl_count(SL_CNT_ENCAP, skb->len);
	return TC_ACT_OK;
}
