/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The single definition of every structure shared between the BPF datapath and the C++
 * userspace (plugin, agent, tests). Compiled by clang -target bpf (after vmlinux.h) and by
 * the C++ compiler (which static_asserts the sizes in cni/lib). Explicit padding, no bool.
 *
 * Bump SL_LAYOUT_VERSION whenever a key/value layout, map type or max_entries changes: the
 * agent refuses to reuse pinned maps of another version (and migrates those it knows).
 */
#pragma once

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define SL_LAYOUT_VERSION 1

/* Pin names, relative to bpfRoot. Object names are <= 15 characters. */
#define SL_MAP_ENDPOINTS "sl_endpoints"
#define SL_MAP_IFACES "sl_ifaces"
#define SL_MAP_ROUTES "sl_routes"
#define SL_MAP_CONFIG "sl_config"
#define SL_MAP_METRICS "sl_metrics"
#define SL_MAP_STACK_FLOWS "sl_stack_flows" /* flows the stack delivered (NAT detection fallback) */
#define SL_MAP_STACK_FRAGS "sl_stack_frags" /* IPv4 fragments of flows sent to the stack */
#define SL_PROG_FROM_POD "sl_from_pod"
#define SL_PROG_FROM_OVERLAY "sl_from_overlay"
#define SL_PROG_TO_OVERLAY "sl_to_overlay" /* egress of sluice_vxlan: tunnel key for stack traffic */
#define SL_PROG_TO_POD "sl_to_pod" /* egress of a pod's host veth: records stack-delivered flows */
#define SL_PROG_FROM_NATIVE "sl_from_native" /* ingress of the underlay, native routing only */
#define SL_PROG_TO_NATIVE "sl_to_native"     /* egress of the underlay, native routing only */
#define SL_PROG_FROM_TUNNEL "sl_from_tunnel" /* ingress of the underlay, vxlan mode: VXLAN decap */

#define SL_MAX_ENDPOINTS 65536
#define SL_MAX_IFACES 16384
#define SL_MAX_ROUTES 16384
#define SL_MAX_STACK_FLOWS 65536
#define SL_MAX_STACK_FRAGS 4096

#define SL_AF_INET 4
#define SL_AF_INET6 6

/* An IPv4 or IPv6 address; IPv4 lives in addr[0] (network byte order), the rest zero. */
struct sl_ip {
	__u8 family; /* SL_AF_INET or SL_AF_INET6 */
	__u8 pad[3];
	__u32 addr[4];
};

/* sl_endpoints: pod address -> where that pod is plugged in on this node. */
struct sl_endpoint_key {
	struct sl_ip ip;
};

#define SL_EP_F_NONE 0u
/* Deliver through the host veth (bpf_redirect to its egress) instead of bpf_redirect_peer, so
 * the veth's root qdisc (a chained bandwidth plugin's ingress limit) sees the traffic. */
#define SL_EP_F_VIA_VETH 0x1u

struct sl_endpoint {
	__u32 ifindex;	   /* host-side veth */
	__u32 flags;	   /* SL_EP_F_* */
	__u8 pod_mac[6];   /* the pod's eth0 */
	__u8 host_mac[6];  /* the host-side veth */
	__u8 pad[4];
	__u64 created_ns;  /* CLOCK_BOOTTIME of the ADD, for GC and inspection */
};

/*
 * sl_ifaces: host veth ifindex -> the addresses its pod may send from (anti-spoofing).
 * One IPv4 and one IPv6 address per pod interface (dual stack = one of each).
 */
#define SL_IFACE_F_HAS_V4 0x1u
#define SL_IFACE_F_HAS_V6 0x2u
/* After the source check, from_pod hands every packet on to the veth's ingress qdisc
 * (TC_ACT_UNSPEC through TCX): a chained bandwidth plugin's egress limit (ingress qdisc, ifb)
 * shapes it, and the stack forwards it. */
#define SL_IFACE_F_QDISC_EGRESS 0x4u
/* No connection the host stack translated has reached this pod from an address from_pod takes
 * the fast way: none of its packets to such an address can belong to one, so from_pod skips the
 * conntrack lookup of the NAT check (lib/nat.h, docs/internals.md). Set by the plugin at ADD;
 * cleared by sl_to_pod (the only way the stack delivers to the pod), and by the agent on every
 * veth whose sl_to_pod it replaces with other code. Never set again. */
#define SL_IFACE_F_UNTRANSLATED 0x8u

struct sl_iface {
	__u32 flags; /* SL_IFACE_F_* */
	__u32 ip4;   /* network byte order */
	__u32 ip6[4];
};

/*
 * sl_routes: LPM trie, remote pod CIDR -> the node that owns it. prefixlen counts the 32
 * bits of family + pad too, so a /24 IPv4 CIDR has prefixlen 32 + 24.
 */
struct sl_route_key {
	__u32 prefixlen;
	__u8 family;
	__u8 pad[3];
	__u32 addr[4];
};

#define SL_ROUTE_KEY_FAMILY_BITS 32

#define SL_ROUTE_F_NONE 0u

struct sl_route {
	__u32 node_ip4; /* underlay address of the owning node, network byte order */
	__u32 flags;	/* SL_ROUTE_F_* */
	__u32 node_ip6[4];
	__u8 node_mac[6]; /* native-routing next hop MAC when known, else zero */
	__u8 pad[2];
};

/*
 * skb->mark bit with which from_pod hands its native-routing redirects to the underlay's egress
 * (sl_to_native), which clears it: there it tells our redirects from packets the stack routed,
 * which flow records must see. Set only while flow records are the NAT detection in use; it
 * lives between two of our programs and no netfilter hook runs in between.
 */
#define SL_MARK_NATIVE 0x20000000u

/* sl_config: array of one entry, written by the agent. */
#define SL_MODE_VXLAN 0u
#define SL_MODE_NATIVE 1u

/*
 * How from_pod and from_overlay find the flows whose replies must go back through the stack
 * (kube-proxy DNAT, masquerade): by default the conntrack lookup kfunc where the kernel has
 * it, else flow records (sl_stack_flows) made where the stack hands traffic to a pod or to
 * the overlay. Replies of such flows are never redirected or encapsulated directly.
 */
#define SL_CFG_F_NAT_RECORDS 0x1u /* use flow records even where the kfunc exists */
#define SL_CFG_F_NAT_OFF 0x2u	  /* no detection at all: only for tests' control runs */

struct sl_config {
	__u32 layout_version; /* SL_LAYOUT_VERSION of whoever created the maps */
	__u32 mode;	      /* SL_MODE_* */
	__u32 node_ip4;	      /* this node's underlay address, network byte order */
	__u32 overlay_ifindex; /* sluice_vxlan, 0 while it does not exist */
	__u32 vni;
	__u32 underlay_ifindex; /* native routing */
	__u32 flags;	       /* SL_CFG_F_* */
	__u32 overlay_mtu; /* IP MTU of sluice_vxlan (native: of the underlay): larger frames go
			    * to the stack, which answers "fragmentation needed" */
	__u32 node_ip6[4];
};

/*
 * sl_metrics: per-CPU array indexed by SL_CNT_*; verdicts first, then one slot per drop
 * reason (SL_CNT_DROP_BASE + -reason).
 */
struct sl_counter {
	__u64 packets;
	__u64 bytes;
};

enum sl_counter_id {
	SL_CNT_REDIRECT_LOCAL = 0, /* bpf_redirect_peer into a local pod */
	SL_CNT_ENCAP = 1,	   /* tunnel key set, redirected to sluice_vxlan (the device path) */
	SL_CNT_DECAP = 2,	   /* from sluice_vxlan into a local pod (the device path) */
	SL_CNT_TO_STACK = 3,	   /* TC_ACT_OK: services, host, outside */
	SL_CNT_NATIVE = 4,	   /* bpf_redirect_neigh to the underlay */
	SL_CNT_TO_STACK_NAT = 5,   /* TC_ACT_OK: a reply (or more) of a flow the stack translated */
	SL_CNT_NATIVE_IN = 6,	   /* from the underlay into a local pod (native routing) */
	SL_CNT_ENCAP_DIRECT = 7,   /* VXLAN headers pushed in BPF, bpf_redirect_neigh to the underlay */
	SL_CNT_DECAP_DIRECT = 8,   /* VXLAN stripped at the underlay's ingress, into a local pod */
	SL_CNT_LINK_SCOPE = 9,	   /* link-scope multicast/broadcast the stack sent on sluice_vxlan
				    * (its own MLD reports): the overlay has no link peers, discarded */
	SL_CNT_DROP_BASE = 16,
	SL_CNT_MAX = 64,
};

/* Drop reasons: negative codes shared with userspace (metrics labels in cni/lib). */
enum sl_drop_reason {
	SL_DROP_SPOOFED_SRC = -1,  /* source address is not the pod's own */
	SL_DROP_UNKNOWN_IFACE = -2, /* packet on a veth with no identity entry */
	SL_DROP_MALFORMED = -3,	   /* truncated or invalid headers */
	SL_DROP_TTL_EXCEEDED = -4,
	SL_DROP_NO_CONFIG = -5,
	SL_DROP_TUNNEL_KEY = -6, /* bpf_skb_set_tunnel_key failed */
	SL_DROP_REDIRECT = -7,	 /* a redirect helper refused */
	SL_DROP_FRAG_NEEDED = -8,
	SL_DROP_NO_ROUTE = -9, /* stack traffic on sluice_vxlan for an address no node owns */
	SL_DROP_MAX_REASON = 9,
};

#define SL_CNT_DROP(reason) (SL_CNT_DROP_BASE + (-(reason)))

/*
 * sl_stack_flows (LRU hash): a flow the host stack delivered to a pod (egress of its host
 * veth) or to the overlay (egress of sluice_vxlan), keyed by the tuple its replies carry:
 * src/dst and ports swapped. Only written while flow records are the NAT detection in use.
 */
struct sl_flow_key {
	__u8 family; /* SL_AF_INET or SL_AF_INET6 */
	__u8 proto;  /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP */
	__u16 pad;
	__u16 sport; /* network byte order */
	__u16 dport;
	__u32 saddr[4];
	__u32 daddr[4];
};

struct sl_flow {
	__u64 seen_ns; /* bpf_ktime_get_ns() of the last packet that refreshed the record */
	__u32 ifindex; /* where it was recorded: a host veth or sluice_vxlan */
	__u32 pad;
};

/*
 * sl_stack_frags (LRU hash): an IPv4 datagram whose first fragment went to the stack for NAT
 * reasons; its later fragments (no ports to look up) follow it there.
 */
struct sl_frag_key {
	__u32 saddr; /* network byte order */
	__u32 daddr;
	__u16 id;
	__u8 proto;
	__u8 pad;
};

struct sl_frag {
	__u64 seen_ns;
};
