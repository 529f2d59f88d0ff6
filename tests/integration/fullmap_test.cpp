// SPDX-License-Identifier: Apache-2.0
// Full maps: when sl_ifaces or sl_endpoints has no room left, ADD answers the map-full CNI
// error naming the map, creates nothing, and works again once there is room.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "harness.h"

namespace sluice::itest::fullmap {
namespace {

constexpr const char* kSubnet = "10.244.1.0/24";

// Fills a pinned hash map with keys no pod uses until the kernel says E2BIG; returns them.
template <typename K, typename V, typename MakeKey>
std::vector<K> fill(int fd, MakeKey makeKey) {
  std::vector<K> added;
  V v{};
  for (uint32_t i = 0;; ++i) {
    K k = makeKey(i);
    if (bpf_map_update_elem(fd, &k, &v, BPF_NOEXIST) != 0) {
      EXPECT_EQ(errno, E2BIG) << "filling stopped for another reason: " << std::strerror(errno);
      break;
    }
    added.push_back(k);
  }
  return added;
}

template <typename K>
void drain(int fd, const std::vector<K>& keys) {
  for (const K& k : keys) EXPECT_EQ(bpf_map_delete_elem(fd, &k), 0);
}

// Fills `map` to capacity, then: ADD answers code 105 naming the map, leaves nothing once
// the filler is removed, and the same pod is added for real afterwards.
template <typename K, typename V, typename MakeKey>
void expectFullMapRefusesAdd(Node& node, const std::string& map, size_t capacity, MakeKey makeKey) {
  json conf = node.pluginConf("1.0.0", kNet, node.sluiceIpam(kSubnet));
  int fd = node.openPinned(map);
  ASSERT_GE(fd, 0) << map;
  auto keys = fill<K, V>(fd, makeKey);
  EXPECT_EQ(keys.size(), capacity);

  Pod pod = node.makePod("a");
  ProcResult r = node.add(pod, conf);
  EXPECT_TRUE(isCniError(r, 105)) << r.describe();
  EXPECT_NE(r.out.find(map + " is full"), std::string::npos) << r.out;
  drain(fd, keys);
  ::close(fd);
  EXPECT_TRUE(node.nothingLeft(kNet, {pod}));

  ASSERT_NO_FATAL_FAILURE(node.addOk(pod, conf));
  EXPECT_TRUE(node.del(pod, conf).ok());
  EXPECT_TRUE(node.nothingLeft(kNet, {pod}));
}

using FullMapTest = NodeTest;

TEST_F(FullMapTest, FullIfacesMapIsAClearErrorAndLeavesNothing) {
  // ifindexes far above any this test's veths get
  expectFullMapRefusesAdd<uint32_t, sl_iface>(node_, "sl_ifaces", SL_MAX_IFACES,
                                              [](uint32_t i) { return 0x40000000u + i; });
}

TEST_F(FullMapTest, FullEndpointsMapIsAClearErrorAndLeavesNothing) {
  // 100.64.0.0/10 addresses: never in this test's pod range
  expectFullMapRefusesAdd<sl_endpoint_key, sl_endpoint>(node_, "sl_endpoints", SL_MAX_ENDPOINTS, [](uint32_t i) {
    sl_endpoint_key k{};
    k.ip.family = SL_AF_INET;
    k.ip.addr[0] = htonl(0x64400000u + i);
    return k;
  });
}

}  // namespace
}  // namespace sluice::itest::fullmap
