/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Includes, constants vmlinux.h does not carry (macros), and the verdict/counter plumbing. */
#pragma once

#include "vmlinux.h"

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "sluice/maps.h"

#define TC_ACT_UNSPEC (-1) /* through TCX: on to the next program, then the tc qdisc */
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define TC_ACT_REDIRECT 7

#define ETH_ALEN 6
#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define ETH_P_IPV6 0x86DD

#define IPPROTO_ICMPV6_NR 58
#define IP_MF 0x2000
#define IP_OFFSET 0x1FFF

#define SL_TUNNEL_TTL 64

#ifndef likely
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif

char LICENSE[] SEC("license") = "Dual BSD/GPL";
