// SPDX-License-Identifier: Apache-2.0
#include "sluice/cni/hash.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <random>
#include <string>

namespace sluice::cni {
namespace {

TEST(Sha256, KnownAnswers) {
  // FIPS 180-4 / NIST CAVS examples.
  EXPECT_EQ(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256Hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklm"
                      "nopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

TEST(Sha256, MillionAsInUnevenChunks) {
  Sha256 h;
  std::string chunk(997, 'a');
  size_t left = 1000000;
  while (left > 0) {
    size_t n = std::min(left, chunk.size());
    h.update(chunk.data(), n);
    left -= n;
  }
  auto d = h.finish();
  EXPECT_EQ(toHex(d.data(), d.size()),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// Every length around the padding boundaries (55/56/63/64 bytes and multiples), fed in one
// piece and byte by byte, against OpenSSL.
TEST(Sha256, MatchesOpenSslForEveryLengthUpTo300) {
  std::mt19937 rng(42);
  for (size_t len = 0; len <= 300; ++len) {
    std::string data(len, '\0');
    for (auto& c : data) c = static_cast<char>(rng());
    unsigned char ref[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), ref);
    const std::string want = toHex(ref, sizeof(ref));
    EXPECT_EQ(sha256Hex(data), want) << "length " << len;
    Sha256 bytewise;
    for (char c : data) bytewise.update(&c, 1);
    auto d = bytewise.finish();
    EXPECT_EQ(toHex(d.data(), d.size()), want) << "bytewise, length " << len;
  }
}

TEST(HostVethName, IsSlPlusElevenHexOfTheAttachmentHash) {
  // printf 'abc/eth0' | sha256sum -> 538f587a23655f38...
  EXPECT_EQ(hostVethName("abc", "eth0"), "sl538f587a236");
  EXPECT_EQ(hostVethName("abc", "eth0").size(), 13u);
  EXPECT_NE(hostVethName("abc", "eth0"), hostVethName("abc", "eth1"));
  EXPECT_NE(hostVethName("abc", "eth0"), hostVethName("abd", "eth0"));
}

}  // namespace
}  // namespace sluice::cni
