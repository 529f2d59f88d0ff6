// SPDX-License-Identifier: Apache-2.0
// The coverage-guided variant of tests/bpf/datapath_fuzz_test.cpp: each input is a frame
// (after 4 bytes choosing the map scenario, the veth and the GSO size) run through the real
// sl_from_pod with BPF_PROG_TEST_RUN and compared with the reference model
// (tests/bpf/datapath_model.h): verdict, output bytes, counters, tunnel key. libFuzzer sees
// the model's branches, which mirror the program's, so coverage steers it to new decisions.
// Needs root; runs in network and mount namespaces of its own (veths die with it).
#include <sched.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "datapath_model.h"
#include "fuzz_check.h"
#include "sluice/log.h"

namespace {

using namespace sluice::test::model;

std::unique_ptr<Runner> g_runner;
std::vector<State> g_states;
int g_applied = -1;

// How much of the work reached the kernel, printed at exit.
struct Report {
  ~Report() {
    if (g_runner)
      std::fprintf(stderr, "fuzz_datapath: %llu frames run, %llu refused by the test run, %llu tunnel keys checked\n",
                   static_cast<unsigned long long>(g_runner->ran()), static_cast<unsigned long long>(g_runner->refused()),
                   static_cast<unsigned long long>(g_runner->tunnelsChecked()));
  }
} g_report;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (unshare(CLONE_NEWNET | CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    std::fprintf(stderr, "fuzz_datapath: private namespaces: %s (needs root)\n", std::strerror(errno));
    std::exit(1);
  }
  sluice::setupLogging({.file = "", .level = "warn", .context = "fuzz-datapath", .toStderr = true});
  auto r = Runner::create();
  if (!r.ok()) {
    std::fprintf(stderr, "fuzz_datapath: %s\n", r.error().describe().c_str());
    std::exit(1);
  }
  g_runner = std::move(r).value();
  for (unsigned i = 0; i < kFuzzScenarios; ++i) g_states.push_back(scenario(i, g_runner->ifindexes()));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // BPF_PROG_TEST_RUN takes one page at most (less headroom and shared info).
  if (size > 2048) return 0;
  const FuzzCase c = fuzzCase(data, size, g_runner->ifindexes());
  if (static_cast<int>(c.scenario) != g_applied) {
    auto st = g_runner->apply(g_states[c.scenario]);
    SL_FUZZ_CHECK(st.ok(), st.ok() ? "" : st.error().describe());
    g_applied = static_cast<int>(c.scenario);
  }
  const std::string mismatch = g_runner->check(g_states[c.scenario], c.frame);
  SL_FUZZ_CHECK(mismatch.empty(), "scenario " + std::to_string(c.scenario) + ": " + mismatch);
  return 0;
}
