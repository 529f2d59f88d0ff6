/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * VXLAN in BPF, vxlan mode's fast path. On the wire it is what sluice_vxlan sends and takes
 * (RFC 7348 over IPv4, the kernel's defaults for a collect-metadata device without options):
 *   outer Ethernet | IPv4 (no options, DF clear, TTL 64, ECN from the inner packet) |
 *   UDP (source port from the inner flow hash, destination sl_vxlan_port, checksum 0) |
 *   VXLAN (I flag, VNI) | the pod's frame as it left the pod.
 * Encap: from_pod pushes the headers (bpf_skb_adjust_room, which leaves GSO packets to be
 * segmented as UDP tunnels) and hands the packet to the underlay's neighbour output
 * (bpf_redirect_neigh): no tunnel route lookup per packet, no netfilter pass of the outer packet.
 * Decap: from_tunnel, at the underlay's ingress, strips them off a packet that from_overlay
 * would have delivered into a local pod; everything else goes on to the kernel's UDP socket
 * and sluice_vxlan as before. Either side interoperates with a node using the device path.
 */
#pragma once

#include "lib/l2.h"
#include "lib/maps.bpf.h"
#include "lib/nat.h"
#include "lib/parse.h"
#include "lib/tunnel.h"

/* The VXLAN UDP port (sluice-agent --vxlan-port), set by the loader before the load. */
const volatile __u16 sl_vxlan_port = 8472;

struct sl_vxlanhdr {
	__be32 flags; /* SL_VXLAN_FLAGS */
	__be32 vni;   /* VNI << 8 */
};

#define SL_VXLAN_FLAGS 0x08000000u /* the I flag ("VNI valid"), nothing else */
/* What encapsulation adds behind the outer Ethernet header: IPv4, UDP, VXLAN, inner Ethernet. */
#define SL_VXLAN_OVERHEAD                                                                          \
	(sizeof(struct iphdr) + sizeof(struct udphdr) + sizeof(struct sl_vxlanhdr) + ETH_HLEN)
/* Where the inner frame starts. */
#define SL_VXLAN_INNER_OFF                                                                         \
	(ETH_HLEN + sizeof(struct iphdr) + sizeof(struct udphdr) + sizeof(struct sl_vxlanhdr))
/* udp_flow_src_port()'s range with the default ip_local_port_range, as sluice_vxlan uses it. */
#define SL_VXLAN_SPORT_MIN 32768
#define SL_VXLAN_SPORT_MAX 60999

#define SL_ADJ_ROOM_ENCAP_L2(len) ((__u64)(len) << BPF_ADJ_ROOM_ENCAP_L2_SHIFT)
/* FIXED_GSO: gso_size stays the inner MSS, which sl_fits_overlay checked (without it the kernel
 * would shrink it by the overhead, and it refuses UDP GSO packets). */
#define SL_VXLAN_ENCAP_FLAGS                                                                       \
	(BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP |   \
	 BPF_F_ADJ_ROOM_ENCAP_L2_ETH | SL_ADJ_ROOM_ENCAP_L2(ETH_HLEN))

static __always_inline __u16 sl_csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* Internet checksum of an option-less IPv4 header: what belongs in its check field while that
 * is 0, and 0 for a valid header. */
static __always_inline __u16 sl_ip4_csum(const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < (int)(sizeof(*ip) / 2); i++)
		sum += w[i];
	return sl_csum_fold(sum);
}

/* The outer ECN field as the kernel's tunnels set it (INET_ECN_encapsulate): the inner one,
 * with CE sent as ECT(0). */
static __always_inline __u8 sl_outer_ecn(const struct sl_pkt *p)
{
	__u8 ecn = 0;

	if (p->ip4)
		ecn = p->ip4->tos & 3;
	else if (p->ip6)
		ecn = (p->ip6->flow_lbl[0] >> 4) & 3;
	return ecn == 3 ? 2 : ecn;
}

/* udp_flow_src_port(): spreads flows over the underlay's paths and receive queues. */
static __always_inline __u16 sl_vxlan_sport(struct __sk_buff *skb)
{
	__u32 hash = bpf_get_hash_recalc(skb);

	hash ^= hash << 16;
	return SL_VXLAN_SPORT_MIN +
	       (((__u64)hash * (SL_VXLAN_SPORT_MAX - SL_VXLAN_SPORT_MIN)) >> 32);
}

/*
 * Encapsulates p towards rt's node and sends it out of the underlay. TC_ACT_REDIRECT when sent;
 * 0 when the packet, unchanged, must take the device path instead (the node has no IPv4
 * address, no underlay yet, or the kernel refused the headroom); a drop reason when it was
 * changed and then could not be sent.
 */
static __always_inline int sl_vxlan_encap(struct __sk_buff *skb, const struct sl_pkt *p,
					  const struct sl_route *rt, const struct sl_config *cfg)
{
	struct bpf_redir_neigh nh = {};
	struct ethhdr inner, *eth, *ieth;
	struct sl_vxlanhdr *vx;
	struct udphdr *udp;
	struct iphdr *ip;
	void *end;
	__u32 len;
	__u16 sport, id;
	__u8 ecn;

	if (!rt->node_ip4 || !cfg->node_ip4 || !cfg->underlay_ifindex || !sl_vxlan_port)
		return 0;
	__builtin_memcpy(&inner, p->eth, sizeof(inner));
	ecn = sl_outer_ecn(p);
	sport = sl_vxlan_sport(skb);
	/* DF is clear, so a hop with a smaller MTU may fragment: the ID matters as in
	 * ip_select_ident() */
	id = (__u16)bpf_get_prandom_u32();
	if (bpf_skb_adjust_room(skb, SL_VXLAN_OVERHEAD, BPF_ADJ_ROOM_MAC, SL_VXLAN_ENCAP_FLAGS))
		return 0;

	/* p's pointers are stale from here on */
	eth = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	ip = (void *)(eth + 1);
	udp = (void *)(ip + 1);
	vx = (void *)(udp + 1);
	ieth = (void *)(vx + 1);
	if ((void *)(ieth + 1) > end)
		return SL_DROP_MALFORMED;
	len = skb->len - ETH_HLEN;

	/* The outer MACs stay the pod frame's: bpf_redirect_neigh writes the real ones. */
	eth->h_proto = bpf_htons(ETH_P_IP);
	*(__u8 *)ip = 0x45; /* version 4, no options */
	ip->tos = ecn;
	ip->tot_len = bpf_htons(len <= 0xffff ? len : 0); /* 0 beyond 64 KiB, as iph_set_totlen() */
	ip->id = id;
	ip->frag_off = 0;
	ip->ttl = SL_TUNNEL_TTL;
	ip->protocol = IPPROTO_UDP;
	ip->check = 0;
	ip->saddr = cfg->node_ip4;
	ip->daddr = rt->node_ip4;
	ip->check = sl_ip4_csum(ip);
	len -= sizeof(*ip);
	udp->source = bpf_htons(sport);
	udp->dest = bpf_htons(sl_vxlan_port);
	udp->len = bpf_htons(len <= 0xffff ? len : 0);
	udp->check = 0;
	vx->flags = bpf_htonl(SL_VXLAN_FLAGS);
	vx->vni = bpf_htonl(cfg->vni << 8);
	__builtin_memcpy(ieth, &inner, sizeof(inner));

	nh.nh_family = 2; /* AF_INET */
	nh.ipv4_nh = rt->node_ip4;
	if (bpf_redirect_neigh(cfg->underlay_ifindex, &nh, sizeof(nh), 0) != TC_ACT_REDIRECT)
		return SL_DROP_REDIRECT;
	return TC_ACT_REDIRECT;
}

/*
 * Whether from_tunnel may take the frame: IPv4 without options or fragmentation, with a valid
 * header checksum and consistent lengths, to this node's address, no congestion mark (the
 * kernel carries CE over to the inner packet), our UDP port with checksum 0 (a non-zero one is
 * the stack's to verify: the device path of other nodes sets one), exactly the I flag and our
 * VNI. The outer source goes to *src. Anything else is the kernel's, whatever it is.
 */
static __always_inline int sl_vxlan_ours(struct __sk_buff *skb, const struct sl_config *cfg,
					 __u32 *src)
{
	struct ethhdr *eth = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	struct sl_vxlanhdr *vx = (void *)(udp + 1);
	__u32 len = skb->len - ETH_HLEN;

	if ((void *)(vx + 1) > end)
		return 0;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || *(__u8 *)ip != 0x45 ||
	    ip->protocol != IPPROTO_UDP)
		return 0;
	if (!cfg->node_ip4 || ip->daddr != cfg->node_ip4)
		return 0;
	if ((ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) || (ip->tos & 3) == 3)
		return 0;
	/* tot_len 0 only on a GSO packet beyond 64 KiB */
	if (ip->tot_len ? bpf_ntohs(ip->tot_len) != len || bpf_ntohs(udp->len) != len - sizeof(*ip)
			: !skb->gso_size)
		return 0;
	if (sl_ip4_csum(ip) != 0)
		return 0;
	if (udp->dest != bpf_htons(sl_vxlan_port) || udp->check != 0)
		return 0;
	if (vx->flags != bpf_htonl(SL_VXLAN_FLAGS) || vx->vni != bpf_htonl(cfg->vni << 8))
		return 0;
	*src = ip->saddr;
	return 1;
}

enum sl_decap_verdict {
	SL_DECAP_DELIVER = 0, /* into *ep's pod */
	SL_DECAP_STACK = 1,
	SL_DECAP_STACK_NAT = 2, /* a flow the stack translated */
};

/*
 * from_overlay's decision on a decapsulated packet p that came from node address outer_src
 * (network order; 0: unknown): an sl_decap_verdict, or a drop reason for an inner source in
 * another node's pod CIDR. from_tunnel takes exactly what this delivers. Reads packet data,
 * never writes it.
 */
static __always_inline int sl_decap_verdict(struct __sk_buff *skb, const struct sl_pkt *p,
					    __u32 outer_src, const struct sl_config *cfg,
					    struct sl_endpoint **ep)
{
	struct sl_endpoint_key key;
	struct sl_route *rt = NULL;
	struct sl_ip src;

	if (p->ip4) {
		sl_ip_from4(&key.ip, p->ip4->daddr);
		sl_ip_from4(&src, p->ip4->saddr);
	} else if (p->ip6) {
		sl_ip_from6(&key.ip, &p->ip6->daddr);
		sl_ip_from6(&src, &p->ip6->saddr);
	} else {
		return SL_DECAP_STACK;
	}
	if (outer_src)
		rt = sl_route_lookup(&src);
	if (rt && rt->node_ip4 && rt->node_ip4 != outer_src)
		return SL_DROP_SPOOFED_SRC;
	if (p->ip6 && p->ip6_ext)
		return SL_DECAP_STACK; /* as from_pod: the stack forwards what the NAT check cannot
					  see */
	*ep = bpf_map_lookup_elem(&sl_endpoints, &key);
	if (!*ep)
		return SL_DECAP_STACK;
	switch (sl_nat_check(skb, p, cfg, 0)) {
	case SL_NAT_FAST:
		return SL_DECAP_DELIVER;
	case SL_NAT_TRANSLATED:
		return SL_DECAP_STACK_NAT;
	default:
		return SL_DECAP_STACK;
	}
}

/*
 * Strips the headers off a frame sl_vxlan_ours() took, whose inner packet p is for ep, and
 * delivers it (decap_direct). TC_ACT_UNSPEC, the frame unchanged, when the kernel refuses.
 */
static __always_inline int sl_vxlan_decap(struct __sk_buff *skb, struct sl_pkt *p,
					  const struct sl_endpoint *ep)
{
	__u64 flags = BPF_F_ADJ_ROOM_FIXED_GSO; /* gso_size is the inner MSS already */
	__be16 proto = p->eth->h_proto;
	void *end;

	flags |= p->ip6 ? BPF_F_ADJ_ROOM_DECAP_L3_IPV6 : BPF_F_ADJ_ROOM_DECAP_L3_IPV4;
	if (bpf_skb_adjust_room(skb, -(__s32)SL_VXLAN_OVERHEAD, BPF_ADJ_ROOM_MAC, flags))
		return TC_ACT_UNSPEC;
	/* the outer Ethernet header now fronts the inner packet; only p->eth is used from here */
	p->eth = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	if ((void *)(p->eth + 1) > end)
		return sl_drop(skb, SL_DROP_MALFORMED);
	p->eth->h_proto = proto;
	return sl_deliver_local(skb, p, ep, SL_CNT_DECAP_DIRECT);
}
