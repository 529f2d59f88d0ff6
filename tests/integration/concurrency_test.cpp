// SPDX-License-Identifier: Apache-2.0
// A node starting and stopping many pods at once: 50 concurrent ADDs get 50 distinct
// addresses and every pod is reachable; 50 concurrent DELs leave nothing.
#include <set>
#include <thread>

#include "harness.h"

namespace sluice::itest::concurrency {
namespace {

constexpr const char* kSubnet = "10.244.2.0/24";
constexpr int kPods = 50;

using ConcurrencyTest = NodeTest;

TEST_F(ConcurrencyTest, FiftyConcurrentAddsThenFiftyConcurrentDels) {
  json conf = node_.pluginConf("1.0.0", kNet, node_.sluiceIpam(kSubnet));
  conf["logLevel"] = "info";
  std::vector<Pod> pods;
  for (int i = 0; i < kPods; ++i) pods.push_back(node_.makePod("p" + std::to_string(i)));
  ASSERT_FALSE(HasFailure());

  std::vector<ProcResult> adds(kPods);
  {
    std::vector<std::thread> ts;
    for (int i = 0; i < kPods; ++i) ts.emplace_back([&, i] { adds[i] = node_.add(pods[i], conf); });
    for (auto& t : ts) t.join();
  }
  std::set<std::string> ips;
  for (int i = 0; i < kPods; ++i) {
    ASSERT_TRUE(adds[i].ok()) << "ADD #" << i << "\n" << adds[i].describe();
    json res = json::parse(adds[i].out, nullptr, false);
    ASSERT_TRUE(res.is_object() && res.contains("ips") && !res["ips"].empty()) << adds[i].out;
    pods[i].result = res;
    pods[i].ip = stripPrefix(res["ips"][0]["address"]);
    EXPECT_TRUE(inSubnet(pods[i].ip, kSubnet)) << pods[i].ip;
    ips.insert(pods[i].ip);
  }
  EXPECT_EQ(ips.size(), static_cast<size_t>(kPods)) << "addresses handed out twice";
  EXPECT_EQ(node_.ipamReservations(kNet).size(), static_cast<size_t>(kPods));
  EXPECT_EQ(node_.endpointEntries().size(), static_cast<size_t>(kPods));
  EXPECT_EQ(node_.ifaceEntries().size(), static_cast<size_t>(kPods));
  EXPECT_EQ(node_.endpointRecordFiles().size(), static_cast<size_t>(kPods));

  // Every pod reaches its neighbour in the ring (so every pod sends and receives).
  std::vector<int> reached(kPods, 0);
  {
    std::vector<std::thread> ts;
    for (int i = 0; i < kPods; ++i)
      ts.emplace_back([&, i] { reached[i] = node_.ping(pods[i].netnsName, pods[(i + 1) % kPods].ip, 2); });
    for (auto& t : ts) t.join();
  }
  for (int i = 0; i < kPods; ++i)
    EXPECT_TRUE(reached[i]) << pods[i].netnsName << " (" << pods[i].ip << ") cannot reach " << pods[(i + 1) % kPods].ip;

  std::vector<ProcResult> dels(kPods);
  {
    std::vector<std::thread> ts;
    for (int i = 0; i < kPods; ++i) ts.emplace_back([&, i] { dels[i] = node_.del(pods[i], conf); });
    for (auto& t : ts) t.join();
  }
  for (int i = 0; i < kPods; ++i) EXPECT_TRUE(dels[i].ok()) << "DEL #" << i << "\n" << dels[i].describe();
  EXPECT_TRUE(node_.nothingLeft(kNet, pods));
}

}  // namespace
}  // namespace sluice::itest::concurrency
