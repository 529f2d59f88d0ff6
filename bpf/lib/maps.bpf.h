/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The pinned maps, declared identically in every object. The agent loads the pod object
 * first and hands its map fds to the others (bpf_map__reuse_fd), so all programs share one
 * set of maps whether pinned (production) or not (datapath tests).
 */
#pragma once

#include "lib/common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SL_MAX_ENDPOINTS);
	__type(key, struct sl_endpoint_key);
	__type(value, struct sl_endpoint);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SL_MAX_IFACES);
	__type(key, __u32);
	__type(value, struct sl_iface);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_ifaces SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SL_MAX_ROUTES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sl_route_key);
	__type(value, struct sl_route);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sl_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SL_CNT_MAX);
	__type(key, __u32);
	__type(value, struct sl_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_metrics SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SL_MAX_STACK_FLOWS);
	__type(key, struct sl_flow_key);
	__type(value, struct sl_flow);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_stack_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SL_MAX_STACK_FRAGS);
	__type(key, struct sl_frag_key);
	__type(value, struct sl_frag);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_stack_frags SEC(".maps");

static __always_inline void sl_count(__u32 id, __u32 bytes)
{
	struct sl_counter *c = bpf_map_lookup_elem(&sl_metrics, &id);

	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

/* Turns a drop reason into a verdict and a counter, in one place. */
static __always_inline int sl_drop(struct __sk_buff *skb, int reason)
{
	sl_count(SL_CNT_DROP(reason), skb->len);
	return TC_ACT_SHOT;
}

/* Link-scope multicast or broadcast on the overlay, which has no link peers to carry it to:
 * discarded, and counted apart from the drops (the stack's own MLD reports are no fault). */
static __always_inline int sl_discard_link_scope(struct __sk_buff *skb)
{
	sl_count(SL_CNT_LINK_SCOPE, skb->len);
	return TC_ACT_SHOT;
}

static __always_inline int sl_to_stack(struct __sk_buff *skb)
{
	sl_count(SL_CNT_TO_STACK, skb->len);
	return TC_ACT_OK;
}

/* A packet of a flow the stack translated: it must go through the stack (conntrack). */
static __always_inline int sl_to_stack_nat(struct __sk_buff *skb)
{
	sl_count(SL_CNT_TO_STACK_NAT, skb->len);
	return TC_ACT_OK;
}

static __always_inline struct sl_config *sl_get_config(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&sl_config, &zero);
}
