// SPDX-License-Identifier: Apache-2.0
#include "source_factory.h"

#include "nodes_file.h"

// The Kubernetes client lives in cni/agent/k8s_* (another part of the team); the agent
// builds without it and says so when asked for it.
#if __has_include("k8s_source.h")
#include "k8s_source.h"
#define SLUICE_AGENT_HAVE_K8S 1
#else
#define SLUICE_AGENT_HAVE_K8S 0
#endif

namespace sluice::agent {

Result<std::unique_ptr<NodeSource>> makeNodeSource(const AgentOptions& opts) {
  if (!opts.nodesFile.empty())
    return std::unique_ptr<NodeSource>(std::make_unique<NodesFileSource>(opts.nodesFile));
#if SLUICE_AGENT_HAVE_K8S
  K8sSourceOptions k;
  k.kubeconfigPath = opts.kubeconfig;
  k.nodeName = opts.nodeName;
  return makeK8sNodeSource(k);
#else
  return Error(CniCode::kPluginNotAvailable,
               std::string("the Kubernetes node source (") +
                   (opts.kubeconfig.empty() ? "in-cluster" : "--kubeconfig " + opts.kubeconfig) +
                   ") is not built into this sluice-agent; use --nodes-file");
#endif
}

}  // namespace sluice::agent
