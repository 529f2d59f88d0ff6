// SPDX-License-Identifier: Apache-2.0
// Masquerade for pod traffic leaving the cluster CIDR: one nftables table of our own
// ("ip sluice"), replaced atomically in one nft transaction.
#pragma once

#include <string>

#include "sluice/net/ip.h"
#include "sluice/result.h"

namespace sluice::agent {

// The nft script that (re)creates table ip sluice.
std::string masqueradeRuleset(const net::Cidr& clusterCidr, const std::string& overlayDev);

// Applies it with `nft -f -`. kPluginNotAvailable when nft is not installed.
Status applyMasquerade(const net::Cidr& clusterCidr, const std::string& overlayDev);

}  // namespace sluice::agent
