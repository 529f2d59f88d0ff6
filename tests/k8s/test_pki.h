// SPDX-License-Identifier: Apache-2.0
// A throwaway PKI made at test time with the OpenSSL API: a CA, a server certificate for
// 127.0.0.1 signed by it, and a client certificate (kubelet-style identity) signed by it.
#pragma once

#include <string>

namespace sluice::k8stest {

struct TestPki {
  std::string caCertPem;
  std::string caKeyPem;
  std::string serverCertPem;
  std::string serverKeyPem;
  std::string clientCertPem;  // CN = clientCommonName, O = system:nodes
  std::string clientKeyPem;
  std::string clientCommonName;
};

// Aborts the test (via gtest fatal failure in the caller's check) if OpenSSL fails: the
// returned PKI has empty fields then.
TestPki makeTestPki(const std::string& caName, const std::string& clientCommonName = "system:node:kind-worker");

std::string base64Encode(const std::string& data);

}  // namespace sluice::k8stest
