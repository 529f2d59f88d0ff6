// SPDX-License-Identifier: Apache-2.0
// The YAML subset reader (parseYamlSubset) and the kubeconfig built on it (parseKubeconfig,
// with a base directory that does not exist: nothing is read from disk).
// Invariants: YAML errors are kDecodeFailure and name a line of the input; a document that
// was read, written back as one-line JSON (which the subset reads as a flow collection or a
// quoted scalar), reads back the same; kubeconfig errors are kDecodeFailure/kInvalidConfig,
// and an accepted kubeconfig has an https:// server and credentials.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "k8s_config.h"
#include "k8s_yaml.h"

namespace {

using namespace sluice;
using namespace sluice::agent;
using nlohmann::json;

size_t lineCount(std::string_view s) {
  size_t n = 1;
  for (char c : s) n += c == '\n';
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto doc = parseYamlSubset(in);
  if (!doc.ok()) {
    SL_FUZZ_CHECK_ERROR(doc.error(), CniCode::kDecodeFailure);
    const std::string& m = doc.error().message();
    SL_FUZZ_CHECK(m.rfind("YAML line ", 0) == 0, m);
    const long line = std::strtol(m.c_str() + 10, nullptr, 10);
    SL_FUZZ_CHECK(line >= 1 && static_cast<size_t>(line) <= lineCount(in), m);
  } else {
    std::string text;
    bool utf8 = true;
    try {
      text = doc->dump();
    } catch (const json::exception&) {
      utf8 = false;  // raw bytes that are not UTF-8 have no JSON spelling
    }
    if (utf8) {
      auto back = parseYamlSubset(text);
      SL_FUZZ_CHECK(back.ok(), "its own JSON spelling does not read: " + text + ": " +
                                   (back.ok() ? std::string() : back.error().message()));
      SL_FUZZ_CHECK(*back == *doc, "its own JSON spelling reads differently: " + text + " vs " + back->dump());
    }
  }

  auto cfg = parseKubeconfig(in, "/nonexistent/sluice-fuzz");
  if (!cfg.ok()) {
    SL_FUZZ_CHECK_ERROR(cfg.error(), CniCode::kDecodeFailure, CniCode::kInvalidConfig);
    return 0;
  }
  SL_FUZZ_CHECK(cfg->server.rfind("https://", 0) == 0, cfg->server);
  SL_FUZZ_CHECK(cfg->hasToken() || cfg->hasClientCert(), "a kubeconfig without credentials was accepted");
  SL_FUZZ_CHECK(!(cfg->insecureSkipTlsVerify && (!cfg->caFile.empty() || !cfg->caData.empty())),
                "a CA together with insecure-skip-tls-verify");
  for (const std::string* f : {&cfg->caFile, &cfg->tokenFile, &cfg->clientCertFile, &cfg->clientKeyFile})
    SL_FUZZ_CHECK(f->empty() || (*f)[0] == '/', "a relative path not resolved against the base: " + *f);
  return 0;
}
