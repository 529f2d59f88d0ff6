/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Flows the host stack translated (kube-proxy DNAT to a Service backend, masquerade) must keep
 * going through the stack in both directions, or conntrack never undoes the translation: a
 * backend's reply redirected straight into the client pod still carries the backend's address.
 *
 * Two ways to tell, chosen per packet by sl_nat_method():
 *  - conntrack: bpf_skb_ct_lookup() on the packet's own tuple; an entry with NAT status bits
 *    (in either direction) sends the packet to the stack. Declared __weak and guarded by
 *    bpf_ksym_exists(), so the object still loads on kernels without the kfunc.
 *  - flow records: where the stack hands a packet to a pod (egress of its host veth,
 *    sl_to_pod) or to the overlay (egress of sluice_vxlan, sl_to_overlay), the flow is recorded
 *    in sl_stack_flows under the tuple its replies carry; from_pod and from_overlay send
 *    packets with a record to the stack. Traffic redirected by us never passes those egress
 *    hooks, so plain pod-to-pod flows are never recorded.
 */
#pragma once

#include "lib/maps.bpf.h"
#include "lib/parse.h"

#ifdef SL_TEST_NO_CT_KFUNC
/* Tests only (tests/bpf builds pod_noct with it): names no kernel exports stand in for a kernel
 * without the kfunc, to prove the object still loads and falls back to flow records. */
#define bpf_skb_ct_lookup sl_test_absent_ct_lookup
#define bpf_ct_release sl_test_absent_ct_release
#endif

extern struct nf_conn *bpf_skb_ct_lookup(struct __sk_buff *skb_ctx, struct bpf_sock_tuple *bpf_tuple,
					 __u32 tuple__sz, struct bpf_ct_opts *opts, __u32 opts__sz) __ksym __weak;
extern void bpf_ct_release(struct nf_conn *ct) __ksym __weak;

/* libbpf >= 1.2 has it; Debian's 1.1 does not. */
#ifndef bpf_ksym_exists
#define bpf_ksym_exists(sym)                                                                     \
	({                                                                                       \
		_Static_assert(!__builtin_constant_p(!!sym), #sym " should be marked as __weak"); \
		!!sym;                                                                           \
	})
#endif

/* The first bpf_ct_opts layout (no zone fields): every kernel with the kfunc accepts it, and
 * it looks up the default zone, which is kube-proxy's. */
#define SL_CT_OPTS_SZ 12
#define SL_CT_CURRENT_NETNS (-1)
#define SL_IPS_NAT_MASK (IPS_SRC_NAT | IPS_DST_NAT)

/* A record is rewritten at most this often per flow (the LRU lookup refreshes it anyway). */
#define SL_FLOW_REFRESH_NS 1000000000ull

enum sl_nat_method {
	SL_NAT_NONE = 0,
	SL_NAT_CONNTRACK = 1,
	SL_NAT_RECORDS = 2,
};

/* What the NAT check decided about a packet that would otherwise take the fast path. */
enum sl_nat_verdict {
	SL_NAT_FAST = 0,      /* no translation involved: redirect/encapsulate as usual */
	SL_NAT_STACK = 1,     /* cannot tell (ICMP error, unparsable L4): let the stack decide */
	SL_NAT_TRANSLATED = 2 /* a flow the stack translated */
};

static __always_inline int sl_nat_method(const struct sl_config *cfg)
{
	__u32 flags = cfg ? cfg->flags : 0;

	if (flags & SL_CFG_F_NAT_OFF)
		return SL_NAT_NONE;
	if (!(flags & SL_CFG_F_NAT_RECORDS) && bpf_ksym_exists(bpf_skb_ct_lookup) &&
	    bpf_ksym_exists(bpf_ct_release))
		return SL_NAT_CONNTRACK;
	return SL_NAT_RECORDS;
}

static __always_inline int sl_l4_has_ports(__u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

/*
 * The packet's own tuple. 1: filled in; 0: no ports to key on (other protocols, IPv4
 * fragments after the first); SL_DROP_MALFORMED: the L4 header is cut short.
 */
static __always_inline int sl_flow_key_of(const struct sl_pkt *p, struct sl_flow_key *k)
{
	__u16 *ports;
	__u32 hl;

	if (!sl_l4_has_ports(p->l4_proto))
		return 0;
	__builtin_memset(k, 0, sizeof(*k));
	k->proto = p->l4_proto;
	if (p->ip4) {
		if (bpf_ntohs(p->ip4->frag_off) & IP_OFFSET)
			return 0;
		hl = p->ip4->ihl * 4;
		k->family = SL_AF_INET;
		k->saddr[0] = p->ip4->saddr;
		k->daddr[0] = p->ip4->daddr;
	} else if (p->ip6) {
		hl = sizeof(struct ipv6hdr);
		k->family = SL_AF_INET6;
		__builtin_memcpy(k->saddr, &p->ip6->saddr, 16);
		__builtin_memcpy(k->daddr, &p->ip6->daddr, 16);
	} else {
		return 0;
	}
	ports = (void *)p->eth + ETH_HLEN + hl;
	if ((void *)(ports + 2) > p->end)
		return SL_DROP_MALFORMED;
	k->sport = ports[0];
	k->dport = ports[1];
	return 1;
}

/* The tuple the replies of k's flow carry. */
static __always_inline void sl_flow_key_reverse(const struct sl_flow_key *k, struct sl_flow_key *r)
{
	r->family = k->family;
	r->proto = k->proto;
	r->pad = 0;
	r->sport = k->dport;
	r->dport = k->sport;
	__builtin_memcpy(r->saddr, k->daddr, sizeof(r->saddr));
	__builtin_memcpy(r->daddr, k->saddr, sizeof(r->daddr));
}

/* ICMP errors quote a packet of some flow; the stack translates the quote of a NATed one. */
static __always_inline int sl_is_icmp_error(const struct sl_pkt *p)
{
	__u8 *type;
	__u32 hl;

	if (p->ip4 && p->l4_proto == IPPROTO_ICMP) {
		if (bpf_ntohs(p->ip4->frag_off) & IP_OFFSET)
			return 0;
		hl = p->ip4->ihl * 4;
	} else if (p->ip6 && p->l4_proto == IPPROTO_ICMPV6_NR) {
		hl = sizeof(struct ipv6hdr);
	} else {
		return 0;
	}
	type = (void *)p->eth + ETH_HLEN + hl;
	if ((void *)(type + 1) > p->end)
		return 0;
	if (p->ip4)
		return *type == 3 || *type == 4 || *type == 5 || *type == 11 || *type == 12;
	return *type < 128; /* ICMPv6 errors are types 1..127 */
}

/* Whether conntrack holds a translated connection with this tuple (either direction). */
static __always_inline int sl_ct_translated(struct __sk_buff *skb, const struct sl_flow_key *k)
{
	struct bpf_ct_opts opts = {};
	struct bpf_sock_tuple t = {};
	struct nf_conn *ct;
	int nat;

	if (k->proto != IPPROTO_TCP && k->proto != IPPROTO_UDP)
		return -1; /* the kfunc knows TCP and UDP only */
	opts.netns_id = SL_CT_CURRENT_NETNS;
	opts.l4proto = k->proto;
	if (k->family == SL_AF_INET) {
		t.ipv4.saddr = k->saddr[0];
		t.ipv4.daddr = k->daddr[0];
		t.ipv4.sport = k->sport;
		t.ipv4.dport = k->dport;
		ct = bpf_skb_ct_lookup(skb, &t, sizeof(t.ipv4), &opts, SL_CT_OPTS_SZ);
	} else {
		__builtin_memcpy(t.ipv6.saddr, k->saddr, 16);
		__builtin_memcpy(t.ipv6.daddr, k->daddr, 16);
		t.ipv6.sport = k->sport;
		t.ipv6.dport = k->dport;
		ct = bpf_skb_ct_lookup(skb, &t, sizeof(t.ipv6), &opts, SL_CT_OPTS_SZ);
	}
	if (!ct)
		return 0;
	nat = (ct->status & SL_IPS_NAT_MASK) != 0;
	bpf_ct_release(ct);
	return nat;
}

static __always_inline void sl_frag_key_of(const struct sl_pkt *p, struct sl_frag_key *f)
{
	f->saddr = p->ip4->saddr;
	f->daddr = p->ip4->daddr;
	f->id = p->ip4->id;
	f->proto = p->l4_proto;
	f->pad = 0;
}

/*
 * For a packet from_pod or from_overlay would redirect or encapsulate: does it belong to a
 * flow the stack translated? Packet data is read, never written. `untranslated`: the packet
 * comes from a pod whose SL_IFACE_F_UNTRANSLATED promise holds, so conntrack holds no
 * translated connection with its TCP or UDP tuple (it is on its way the fast way).
 */
static __always_inline int sl_nat_check(struct __sk_buff *skb, const struct sl_pkt *p,
					const struct sl_config *cfg, int untranslated)
{
	int method = sl_nat_method(cfg);
	struct sl_flow_key key;
	struct sl_frag_key fk;
	int ret, nat;

	if (method == SL_NAT_NONE)
		return SL_NAT_FAST;
	if (sl_is_icmp_error(p))
		return SL_NAT_STACK;
	/* IPv4 fragments after the first carry no ports: they follow their first fragment. */
	if (p->ip4 && (bpf_ntohs(p->ip4->frag_off) & IP_OFFSET)) {
		sl_frag_key_of(p, &fk);
		return bpf_map_lookup_elem(&sl_stack_frags, &fk) ? SL_NAT_TRANSLATED : SL_NAT_FAST;
	}

	ret = sl_flow_key_of(p, &key);
	if (ret == 0)
		return SL_NAT_FAST;
	if (ret < 0)
		return SL_NAT_STACK;
	if (method == SL_NAT_CONNTRACK) {
		if (untranslated && (key.proto == IPPROTO_TCP || key.proto == IPPROTO_UDP))
			return SL_NAT_FAST;
		nat = sl_ct_translated(skb, &key);
		if (nat < 0)
			return SL_NAT_STACK; /* SCTP: conntrack cannot be asked, the stack can */
	} else {
		nat = bpf_map_lookup_elem(&sl_stack_flows, &key) != NULL;
	}
	if (!nat)
		return SL_NAT_FAST;

	if (p->is_frag) { /* the first fragment: its followers go the same way */
		struct sl_frag v = { .seen_ns = bpf_ktime_get_ns() };

		sl_frag_key_of(p, &fk);
		bpf_map_update_elem(&sl_stack_frags, &fk, &v, BPF_ANY);
	}
	return SL_NAT_TRANSLATED;
}

/*
 * The gate in front of from_pod's and from_overlay's fast paths: non-zero when the packet goes
 * to the stack instead, with *act the (counted) TC action to return for it.
 */
static __always_inline int sl_nat_diverts(struct __sk_buff *skb, const struct sl_pkt *p,
					  const struct sl_config *cfg, int untranslated, int *act)
{
	switch (sl_nat_check(skb, p, cfg, untranslated)) {
	case SL_NAT_FAST:
		return 0;
	case SL_NAT_TRANSLATED:
		*act = sl_to_stack_nat(skb);
		return 1;
	default:
		*act = sl_to_stack(skb);
		return 1;
	}
}

/*
 * Egress of a host veth, for a packet the stack delivers to the pod behind it (an IP packet,
 * parsed, without IPv6 extension headers): whether it belongs to a connection the stack
 * translated. Its reverse tuple is the one conntrack files that connection under in the other
 * direction (after DNAT to a backend, or SNAT to the node, the delivered packet's tuple,
 * reversed, is the reply tuple; for a reply delivered to the client, the original tuple).
 * Non-zero too for what conntrack cannot be asked about (a cut-short or SCTP transport header,
 * a kernel without the kfunc); zero for protocols without ports, which the NAT check does not
 * key on either.
 */
static __always_inline int sl_delivery_translated(struct __sk_buff *skb, const struct sl_pkt *p)
{
	struct sl_flow_key key, rev;
	int ret;

	if (p->ip4 && (bpf_ntohs(p->ip4->frag_off) & IP_OFFSET))
		return 0; /* its first fragment carried the ports */
	ret = sl_flow_key_of(p, &key);
	if (ret <= 0)
		return ret < 0;
	if (!bpf_ksym_exists(bpf_skb_ct_lookup) || !bpf_ksym_exists(bpf_ct_release))
		return 1; /* conntrack cannot be asked */
	sl_flow_key_reverse(&key, &rev);
	return sl_ct_translated(skb, &rev) != 0;
}

/*
 * Egress of a host veth or of sluice_vxlan, for packets the stack routed there: remember the
 * flow so that its replies come back through the stack. Only while flow records are in use.
 */
static __always_inline void sl_record_stack_flow(struct __sk_buff *skb, const struct sl_pkt *p,
						 const struct sl_config *cfg)
{
	struct sl_flow_key key, rev;
	struct sl_flow *f, v = {};
	__u64 now;

	if (sl_nat_method(cfg) != SL_NAT_RECORDS)
		return;
	if (sl_flow_key_of(p, &key) <= 0)
		return;
	sl_flow_key_reverse(&key, &rev);
	now = bpf_ktime_get_ns();
	f = bpf_map_lookup_elem(&sl_stack_flows, &rev);
	if (f && now - f->seen_ns < SL_FLOW_REFRESH_NS && f->ifindex == skb->ifindex)
		return;
	v.seen_ns = now;
	v.ifindex = skb->ifindex;
	bpf_map_update_elem(&sl_stack_flows, &rev, &v, BPF_ANY);
}
