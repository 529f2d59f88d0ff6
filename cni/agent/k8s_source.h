// SPDX-License-Identifier: Apache-2.0
// The Kubernetes API node source: list + watch of Nodes over HTTPS (libcurl), from the
// in-cluster service account or a kubeconfig file. See NodeSource for the delivery contract.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "k8s_config.h"
#include "node_source.h"
#include "sluice/result.h"

namespace sluice::agent {

struct K8sSourceOptions {
  std::string kubeconfigPath;  // empty = in-cluster (KUBERNETES_SERVICE_HOST/PORT + service account)
  std::string nodeName;        // this node; only used in log lines
  // A full relist every resyncPeriod guards against missed events (0 = never).
  std::chrono::seconds resyncPeriod{300};
  std::string serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

  // Tuning, defaults suit production; tests shorten them.
  // Server-side watch timeout (timeoutSeconds); 0 = random in [5, 10) minutes like client-go.
  // A watch that delivers no byte for 2x this long is abandoned and reopened.
  std::chrono::seconds watchTimeout{0};
  std::chrono::milliseconds backoffInitial{500};  // first retry delay after a failure
  std::chrono::milliseconds backoffMax{30000};    // cap of the exponential backoff
  std::chrono::seconds requestTimeout{60};        // whole-request limit for list pages
  int listPageSize = 500;                         // `limit` of each list page
};

// Reads and validates the configuration (kubeconfig or in-cluster environment, CA, token)
// up front so that a misconfigured agent fails at start-up with a clear error.
Result<std::unique_ptr<NodeSource>> makeK8sNodeSource(const K8sSourceOptions& opts);

// The same with an already loaded configuration (opts.kubeconfigPath and
// opts.serviceAccountDir are not used).
Result<std::unique_ptr<NodeSource>> makeK8sNodeSourceFromConfig(const K8sSourceOptions& opts, ClusterConfig cfg);

}  // namespace sluice::agent
