/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Header parsing with a bounds-checked cursor. Every pointer handed out here is valid only
 * until the next helper that can move packet data; callers re-parse after such calls.
 */
#pragma once

#include "lib/common.h"

struct sl_pkt {
	void *data;
	void *end;
	struct ethhdr *eth;
	__u16 proto;	   /* host order EtherType */
	struct iphdr *ip4; /* set when proto == ETH_P_IP and the header is sane */
	struct ipv6hdr *ip6;
	__u32 l3_len;	   /* bytes of L3 header (IPv4 incl. options, IPv6 fixed header) */
	__u8 l4_proto;	   /* IPv4 protocol; IPv6: the fixed header's next header */
	__u8 is_frag;	   /* IPv4 fragment (first or later) */
	__u8 ip6_ext;	   /* IPv6 with extension headers (fragments included): l4_proto is one */
	__u8 pad;
};

/*
 * IPv6 extension headers (RFC 8200 section 4, IANA's list): hop-by-hop, routing, fragment, AH,
 * destination options, mobility, HIP, shim6. Behind any of them the upper-layer header is out of
 * sight of a fixed-offset parse, fragments after the first have none at all.
 */
static __always_inline int sl_ip6_is_ext(__u8 nexthdr)
{
	return nexthdr == 0 || nexthdr == 43 || nexthdr == 44 || nexthdr == 51 || nexthdr == 60 ||
	       nexthdr == 135 || nexthdr == 139 || nexthdr == 140;
}

/* 0 on success, SL_DROP_MALFORMED for truncated or invalid IP headers. Non-IP frames parse
 * fine with ip4 == ip6 == NULL. The Ethernet header is at `off` (a constant): 0, or the inner
 * frame of a VXLAN packet. */
static __always_inline int sl_parse_at(struct __sk_buff *skb, struct sl_pkt *p, __u32 off)
{
	p->data = (void *)(long)skb->data;
	p->end = (void *)(long)skb->data_end;
	p->ip4 = NULL;
	p->ip6 = NULL;
	p->l3_len = 0;
	p->l4_proto = 0;
	p->is_frag = 0;
	p->ip6_ext = 0;

	p->eth = p->data + off;
	if ((void *)(p->eth + 1) > p->end)
		return SL_DROP_MALFORMED;
	p->proto = bpf_ntohs(p->eth->h_proto);

	if (p->proto == ETH_P_IP) {
		struct iphdr *ip = (void *)(p->eth + 1);
		__u32 hl;

		if ((void *)(ip + 1) > p->end)
			return SL_DROP_MALFORMED;
		if (ip->version != 4 || ip->ihl < 5)
			return SL_DROP_MALFORMED;
		hl = ip->ihl * 4;
		if ((void *)ip + hl > p->end)
			return SL_DROP_MALFORMED;
		if (bpf_ntohs(ip->tot_len) < hl)
			return SL_DROP_MALFORMED;
		p->ip4 = ip;
		p->l3_len = hl;
		p->l4_proto = ip->protocol;
		p->is_frag = (bpf_ntohs(ip->frag_off) & (IP_MF | IP_OFFSET)) != 0;
	} else if (p->proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = (void *)(p->eth + 1);

		if ((void *)(ip6 + 1) > p->end)
			return SL_DROP_MALFORMED;
		if (ip6->version != 6)
			return SL_DROP_MALFORMED;
		p->ip6 = ip6;
		p->l3_len = sizeof(*ip6);
		p->l4_proto = ip6->nexthdr;
		p->ip6_ext = sl_ip6_is_ext(ip6->nexthdr);
	}
	return 0;
}

static __always_inline int sl_parse(struct __sk_buff *skb, struct sl_pkt *p)
{
	return sl_parse_at(skb, p, 0);
}

static __always_inline void sl_ip_from4(struct sl_ip *out, __u32 addr)
{
	__builtin_memset(out, 0, sizeof(*out));
	out->family = SL_AF_INET;
	out->addr[0] = addr;
}

static __always_inline void sl_ip_from6(struct sl_ip *out, const struct in6_addr *a)
{
	__builtin_memset(out, 0, sizeof(*out));
	out->family = SL_AF_INET6;
	__builtin_memcpy(out->addr, a, 16);
}

/* IPv6 link-local (fe80::/10) or unspecified: neighbour discovery and DAD use these. */
static __always_inline int sl_ip6_is_local_scope(const struct in6_addr *a)
{
	__u32 w0 = bpf_ntohl(a->in6_u.u6_addr32[0]);

	if ((w0 & 0xffc00000) == 0xfe800000)
		return 1;
	return (a->in6_u.u6_addr32[0] | a->in6_u.u6_addr32[1] | a->in6_u.u6_addr32[2] |
		a->in6_u.u6_addr32[3]) == 0;
}

/*
 * Link-scope destinations: IPv4 224.0.0.0/24 and the limited broadcast, IPv6 multicast of
 * interface- or link-local scope. The stack sends such packets on any up device, sluice_vxlan
 * included: with IPv6 forwarding on, it joins the all-routers groups and reports them in MLD
 * (to ff02::16) whatever the device's NOARP.
 */
static __always_inline int sl_link_scope_dst(const struct sl_pkt *p)
{
	if (p->ip4)
		return (p->ip4->daddr & bpf_htonl(0xffffff00)) == bpf_htonl(0xe0000000) ||
		       p->ip4->daddr == 0xffffffff;
	return p->ip6 && p->ip6->daddr.in6_u.u6_addr8[0] == 0xff &&
	       (p->ip6->daddr.in6_u.u6_addr8[1] & 0x0f) <= 2;
}

static __always_inline int sl_ip6_nonzero(const __u32 *a)
{
	return (a[0] | a[1] | a[2] | a[3]) != 0;
}

static __always_inline int sl_ip6_eq(const struct in6_addr *a, const __u32 *b)
{
	return a->in6_u.u6_addr32[0] == b[0] && a->in6_u.u6_addr32[1] == b[1] &&
	       a->in6_u.u6_addr32[2] == b[2] && a->in6_u.u6_addr32[3] == b[3];
}
