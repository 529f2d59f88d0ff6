// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * sluice_vxlan, a collect-metadata VXLAN device, and the underlay's ingress in vxlan mode.
 * from_overlay (ingress, decapsulated): a local endpoint → L2 rewrite + bpf_redirect_peer;
 *   an inner source inside another node's pod CIDR must come from that node's address.
 *   Replies of flows this node's stack translated (lib/nat.h) go to the stack instead.
 * from_tunnel (the underlay's ingress): the same decision on a VXLAN packet before the kernel
 *   sees it; what from_overlay would deliver is decapsulated in BPF (lib/vxlan.h) and goes
 *   straight in, everything else goes on to the kernel and sluice_vxlan untouched.
 * to_overlay (egress): packets the stack routed here (host → remote pod, Service DNAT to a
 *   remote backend) get their tunnel key from the same routes map; redirected ones carry it.
 *   Stack-routed flows are recorded while flow records are the NAT detection in use.
 *   Link-scope multicast the stack emits there (MLD reports) is discarded, counted apart
 *   from the drops; any other address no node owns is a drop (no_route).
 */
#include "lib/common.h"
#include "lib/l2.h"
#include "lib/maps.bpf.h"
#include "lib/nat.h"
#include "lib/parse.h"
#include "lib/tunnel.h"
#include "lib/vxlan.h"

SEC("tc")
int sl_from_overlay(struct __sk_buff *skb)
{
	struct bpf_tunnel_key tk = {};
	struct sl_endpoint *ep = NULL;
	__u32 outer_src = 0;
	struct sl_pkt p;
	int err;

	err = sl_parse(skb, &p);
	if (err)
		return sl_drop(skb, err);
	if (!p.ip4 && !p.ip6)
		return sl_to_stack(skb);

	/* Without metadata there is no outer header to hold against the inner one. A
	 * collect-metadata device always attaches it, so this only happens in tests. */
	if (bpf_skb_get_tunnel_key(skb, &tk, sizeof(tk), 0) == 0)
		outer_src = bpf_htonl(tk.remote_ipv4);
	err = sl_decap_verdict(skb, &p, outer_src, sl_get_config(), &ep);
	if (err < 0)
		return sl_drop(skb, err);
	sl_to_this_host(skb);
	if (err == SL_DECAP_STACK_NAT)
		return sl_to_stack_nat(skb);
	if (err != SL_DECAP_DELIVER || !ep)
		return sl_to_stack(skb);
	/* parse pointers are still valid: neither the tunnel-key read nor the NAT check moves
	 * packet data */
	return sl_deliver_local(skb, &p, ep, SL_CNT_DECAP);
}

/*
 * The underlay's ingress in vxlan mode. The device is the node's own network: what is not a
 * VXLAN packet for a local pod that from_overlay would deliver passes on untouched and
 * uncounted (TC_ACT_UNSPEC), to later programs and then the kernel's UDP socket and
 * sluice_vxlan, where from_overlay decides and counts as before.
 */
SEC("tc")
int sl_from_tunnel(struct __sk_buff *skb)
{
	struct sl_endpoint *ep = NULL;
	struct sl_config *cfg;
	__u32 outer_src = 0;
	struct sl_pkt p;

	if (skb->pkt_type != SL_PACKET_HOST)
		return TC_ACT_UNSPEC;
	cfg = sl_get_config();
	if (!cfg || cfg->mode != SL_MODE_VXLAN || !sl_vxlan_ours(skb, cfg, &outer_src))
		return TC_ACT_UNSPEC;
	if (sl_parse_at(skb, &p, SL_VXLAN_INNER_OFF) || (!p.ip4 && !p.ip6))
		return TC_ACT_UNSPEC;
	if (sl_decap_verdict(skb, &p, outer_src, cfg, &ep) != SL_DECAP_DELIVER || !ep)
		return TC_ACT_UNSPEC;
	/*
	 * Kernel 6.18's bpf_skb_adjust_room() leaves skb->encapsulation and the UDP tunnel GSO bits
	 * of a GSO packet set (only bpf-next's BPF_F_ADJ_ROOM_DECAP_L4_UDP clears them, as the
	 * kernel's tunnel receive path does). A pod receiving the packet never looks at them, but a
	 * qdisc may segment it: through the host veth (a bandwidth limit), the device path it is.
	 */
	if (skb->gso_size && (ep->flags & SL_EP_F_VIA_VETH))
		return TC_ACT_UNSPEC;
	return sl_vxlan_decap(skb, &p, ep);
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
		return sl_drop(skb, SL_DROP_NO_ROUTE); /* no remote node for non-IP */

	cfg = sl_get_config();
	if (!cfg)
		return sl_drop(skb, SL_DROP_NO_CONFIG);
	rt = sl_route_lookup(&dst);
	if (!rt) {
		if (sl_link_scope_dst(&p))
			return sl_discard_link_scope(skb);
		return sl_drop(skb, SL_DROP_NO_ROUTE);
	}
	sl_record_stack_flow(skb, &p, cfg);
	err = sl_set_tunnel(skb, rt, cfg);
	if (err)
		return sl_drop(skb, err);
	sl_count(SL_CNT_ENCAP, skb->len);
	return TC_ACT_OK;
}
