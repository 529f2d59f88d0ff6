// SPDX-License-Identifier: Apache-2.0
// A small SHA-256 (FIPS 180-4) so that the plugin needs no crypto library: it names host-side
// veths after a hash of (container ID, ifname).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::cni {

class Sha256 {
 public:
  using Digest = std::array<uint8_t, 32>;

  Sha256();
  Sha256& update(const void* data, size_t len);
  Sha256& update(std::string_view s) { return update(s.data(), s.size()); }
  // Finishes the hash; the object must not be updated afterwards.
  Digest finish();

 private:
  void block(const uint8_t* p);

  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};
  size_t bufLen_ = 0;
  uint64_t totalLen_ = 0;
};

Sha256::Digest sha256(std::string_view data);
std::string toHex(const uint8_t* data, size_t len);
std::string sha256Hex(std::string_view data);

// Host-side veth of an attachment: "sl" + the first 11 hex chars of SHA-256("<cid>/<ifname>").
std::string hostVethName(std::string_view containerId, std::string_view ifname);

}  // namespace sluice::cni
