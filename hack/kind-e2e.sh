#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Sluice on a real Kubernetes: a kind cluster without a default CNI (hack/kind/cluster.yaml),
# the image built from our Dockerfile and loaded into it, the chart installed, then a
# connectivity suite: pod<->pod on one node and across nodes, host->pod, a ClusterIP Service,
# a NodePort from every node, a hostPort from every node (portmap chained after sluice through
# the chart's chain value), DNS through CoreDNS, pod -> a server outside the cluster (a
# container on kind's docker network: nothing leaves the machine), and a rolling restart of
# the agent under continuous traffic that must lose nothing.
# On failure, agent logs and `sluice-agent status|routes|endpoints|counters` from every node go
# to the artifacts directory. Needs docker, kind, helm and kubectl (helm and kubectl come from
# hack/install-helm.sh).
#
# Usage: hack/kind-e2e.sh [--keep] [--dry-run] [--name CLUSTER] [--image NAME:TAG]
#                         [--artifacts DIR] [--no-build]
#   --keep       leave the cluster (and the outside-world container) running afterwards
#   --dry-run    print every command instead of running it; needs none of the tools
#   --no-build   use an --image already built
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=sluice-e2e
IMAGE=sluice:e2e
ARTIFACTS=""
KEEP=0
DRY_RUN=0
BUILD=1
RELEASE=sluice
SYSTEM_NS=kube-system
TEST_NS=sl-e2e
KIND_CONFIG=hack/kind/cluster.yaml
CHART_VALUES=hack/kind/values.yaml
WORKLOADS=hack/kind/e2e-workloads.yaml
TEST_IMAGE=busybox:1.36.1
NODE_PORT=30980
HOST_PORT=18080  # the server pods' hostPort (hack/kind/e2e-workloads.yaml)
CLUSTER_CIDR=10.244.0.0/16
TIMEOUT=300s

usage() { sed -n '14,18p' "$0" | sed 's/^# \{0,1\}//'; }

while (($#)); do
  case "$1" in
    --keep) KEEP=1 ;;
    --dry-run) DRY_RUN=1 ;;
    --no-build) BUILD=0 ;;
    --name) CLUSTER=${2:?--name needs a value}; shift ;;
    --image) IMAGE=${2:?--image needs a value}; shift ;;
    --artifacts) ARTIFACTS=${2:?--artifacts needs a value}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "kind-e2e: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
ARTIFACTS=${ARTIFACTS:-$PWD/build-kind-e2e/$CLUSTER}
OUTSIDE=$CLUSTER-outside
KCTX=kind-$CLUSTER
IMAGE_REPO=${IMAGE%:*}
IMAGE_TAG=${IMAGE##*:}
if [[ "$IMAGE_REPO" == "$IMAGE" || -z "$IMAGE_TAG" ]]; then
  echo "kind-e2e: --image must be NAME:TAG, got '$IMAGE'" >&2
  exit 2
fi

log() { printf '\n== %s\n' "$*" >&2; }
die() { echo "kind-e2e: FAIL: $*" >&2; exit 1; }

# Every command that touches docker, kind or the cluster goes through run or capture, so
# --dry-run prints exactly what a real run executes, on the script's stdout (fd 3) even where
# the command's own output is captured or redirected.
exec 3>&1
print_cmd() {
  local out="+" a
  for a in "$@"; do out+=" $(printf '%q' "$a")"; done
  printf '%s\n' "$out"
}
run() {
  if ((DRY_RUN)); then print_cmd "$@" >&3; return 0; fi
  print_cmd "$@" >&2
  "$@"
}
# capture DRY_VALUE CMD...: the command's stdout; under --dry-run prints the command and
# yields DRY_VALUE so the rest of the script can go on with plausible placeholders.
capture() {
  local dry_value=$1
  shift
  if ((DRY_RUN)); then print_cmd "$@" >&3; printf '%s\n' "$dry_value"; return 0; fi
  "$@"
}
kubectl_() { run kubectl --context "$KCTX" "$@"; }
kcapture() { local v=$1; shift; capture "$v" kubectl --context "$KCTX" "$@"; }

check_eq() {  # check_eq WHAT EXPECTED ACTUAL
  ((DRY_RUN)) && return 0
  [[ "$2" == "$3" ]] || die "$1: expected '$2', got '$3'"
  echo "ok: $1" >&2
}

# ---- preflight -------------------------------------------------------------------------
preflight() {
  ((DRY_RUN)) && return 0
  local t
  for t in docker kind; do
    command -v "$t" >/dev/null 2>&1 || die "'$t' is not installed (kind: go install sigs.k8s.io/kind@v0.27.0)"
  done
  if ! command -v helm >/dev/null 2>&1 || ! command -v kubectl >/dev/null 2>&1; then
    if [[ $EUID -eq 0 ]]; then bash hack/install-helm.sh
    else die "helm/kubectl missing: sudo bash hack/install-helm.sh"; fi
  fi
  docker info >/dev/null 2>&1 || die "the docker daemon is not reachable"
}

# ---- diagnostics and cleanup -----------------------------------------------------------
collect_diagnostics() {
  log "collecting diagnostics into $ARTIFACTS"
  if ((DRY_RUN == 0)); then mkdir -p "$ARTIFACTS"; fi
  local pods pod node cmd
  pods=$(kcapture "$RELEASE-agent-1 <node>" -n "$SYSTEM_NS" get pods \
           -l "app.kubernetes.io/instance=$RELEASE,app.kubernetes.io/component=agent" \
           -o jsonpath='{range .items[*]}{.metadata.name} {.spec.nodeName}{"\n"}{end}' 2>/dev/null || true)
  while read -r pod node; do
    [[ -n "$pod" ]] || continue
    for cmd in "logs $pod -c agent" "logs $pod -c agent --previous" "logs $pod -c load-datapath" \
               "logs $pod -c install-cni-bin"; do
      # shellcheck disable=SC2086  # cmd is a fixed word list
      kcapture "" -n "$SYSTEM_NS" $cmd >"$(artifact "$node.${cmd%% *}.$(tr ' ' '_' <<<"${cmd#* }").log")" 2>&1 || true
    done
    for cmd in status routes endpoints nodes counters; do
      kcapture "" -n "$SYSTEM_NS" exec "$pod" -c agent -- sluice-agent "$cmd" \
        >"$(artifact "$node.sluice-agent-$cmd.txt")" 2>&1 || true
    done
    capture "" docker exec "$node" cat /etc/cni/net.d/10-sluice.conflist \
      >"$(artifact "$node.conflist.json")" 2>&1 || true
    capture "" docker exec "$node" ip -d link show sluice_vxlan >"$(artifact "$node.vxlan.txt")" 2>&1 || true
    capture "" docker exec "$node" ip route >"$(artifact "$node.routes.txt")" 2>&1 || true
  done <<<"$pods"
  kcapture "" get nodes -o wide >"$(artifact nodes.txt)" 2>&1 || true
  kcapture "" get pods -A -o wide >"$(artifact pods.txt)" 2>&1 || true
  kcapture "" get events -A --sort-by=.lastTimestamp >"$(artifact events.txt)" 2>&1 || true
  kcapture "" -n "$SYSTEM_NS" describe daemonset "$RELEASE" >"$(artifact daemonset.txt)" 2>&1 || true
  run kind export logs "$ARTIFACTS/kind" --name "$CLUSTER" >/dev/null 2>&1 || true
}
artifact() { if ((DRY_RUN)); then echo /dev/null; else echo "$ARTIFACTS/$1"; fi; }

cleanup() {
  local rc=$?
  set +e
  if ((rc != 0)); then collect_diagnostics; fi
  if ((KEEP)); then
    log "--keep: cluster $CLUSTER left running (kubectl --context $KCTX ...); remove with: kind delete cluster --name $CLUSTER; docker rm -f $OUTSIDE"
  else
    log "tearing down"
    run docker rm -f "$OUTSIDE" >/dev/null 2>&1
    run kind delete cluster --name "$CLUSTER"
  fi
  if ((rc == 0)); then log "kind-e2e: PASS"; else log "kind-e2e: FAIL (exit $rc), artifacts in $ARTIFACTS"; fi
  exit "$rc"
}

# ---- cluster, image, chart -------------------------------------------------------------
bring_up() {
  log "cluster $CLUSTER"
  run kind create cluster --name "$CLUSTER" --config "$KIND_CONFIG" --wait 0s
  if ((BUILD)); then
    log "image $IMAGE"
    local version source
    version=$(capture "dry-run" git describe --always --dirty 2>/dev/null || echo dev)
    source=$(capture "dry-run" git config --get remote.origin.url 2>/dev/null || echo unset)
    run docker build -t "$IMAGE" --build-arg "VERSION=$version" --build-arg "SOURCE_URL=$source" -f Dockerfile .
  fi
  run kind load docker-image "$IMAGE" --name "$CLUSTER"
  run docker pull "$TEST_IMAGE"
  run kind load docker-image "$TEST_IMAGE" --name "$CLUSTER"

  log "chart"
  run helm upgrade --install "$RELEASE" charts/sluice --kube-context "$KCTX" --namespace "$SYSTEM_NS" \
    --set "image.repository=$IMAGE_REPO" --set "image.tag=$IMAGE_TAG" --set image.pullPolicy=Never \
    --set "clusterCIDR=$CLUSTER_CIDR" --values "$CHART_VALUES"
  kubectl_ -n "$SYSTEM_NS" rollout status "daemonset/$RELEASE" --timeout="$TIMEOUT"
  kubectl_ wait --for=condition=Ready nodes --all --timeout="$TIMEOUT"
  kubectl_ -n "$SYSTEM_NS" rollout status deployment/coredns --timeout="$TIMEOUT"

  log "test workloads"
  kubectl_ apply -f "$WORKLOADS"
  kubectl_ -n "$TEST_NS" rollout status daemonset/server --timeout="$TIMEOUT"
  kubectl_ -n "$TEST_NS" rollout status daemonset/client --timeout="$TIMEOUT"
  run docker run -d --name "$OUTSIDE" --network kind "$TEST_IMAGE" \
    sh -c 'mkdir -p /www && echo outside > /www/index.html && exec httpd -f -p 8080 -h /www'
}

# "name ip node" per line for the pods with label app=$1.
pods_of() {
  local ds=${1#sl-e2e-}
  local dry="$ds-a 10.244.1.10 $CLUSTER-worker
$ds-b 10.244.2.10 $CLUSTER-worker2
$ds-c 10.244.0.10 $CLUSTER-control-plane"
  kcapture "$dry" -n "$TEST_NS" get pods -l "app=$1" \
    -o jsonpath='{range .items[*]}{.metadata.name} {.status.podIP} {.spec.nodeName}{"\n"}{end}'
}

# http_from_pod POD URL: the body, via busybox wget with a timeout.
http_from_pod() {
  kcapture "<body>" -n "$TEST_NS" exec "$1" -- wget -q -O - -T 5 "$2"
}

# ---- the suite ---------------------------------------------------------------------------
pod_to_pod() {
  log "pod -> pod (same node and across nodes) and host -> pod"
  local c cip cnode s sip snode got
  while read -r c cip cnode; do
    while read -r s sip snode; do
      got=$(http_from_pod "$c" "http://$sip:8080/")
      check_eq "$c ($cnode) -> $s ($snode) http" "$s" "$got"
      kcapture "" -n "$TEST_NS" exec "$c" -- ping -c 2 -W 2 "$sip" >/dev/null \
        || die "$c ($cnode) -> $s ($snode): ping failed"
    done <<<"$SERVERS"
    got=$(capture "<body>" docker exec "$cnode" curl -sf --max-time 5 "http://$(first_other_server_ip "$cnode"):8080/")
    [[ -n "$got" ]] || die "host $cnode -> a pod on another node: no answer"
    : "$cip"
  done <<<"$CLIENTS"
}

first_other_server_ip() {
  local s sip snode
  while read -r s sip snode; do
    if [[ "$snode" != "$1" ]]; then echo "$sip"; return 0; fi
  done <<<"$SERVERS"
  die "no server pod on a node other than $1"
}

# node_internal_ip NODE: the node's InternalIP address.
node_internal_ip() {
  kcapture "172.18.0.2" get node "$1" -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}'
}

services() {
  log "ClusterIP Service, DNS, NodePort"
  local c cip cnode svc_ip got i node node_ip
  svc_ip=$(kcapture "10.96.0.100" -n "$TEST_NS" get service web -o jsonpath='{.spec.clusterIP}')
  while read -r c cip cnode; do
    kcapture "" -n "$TEST_NS" exec "$c" -- nslookup kubernetes.default.svc.cluster.local >/dev/null \
      || die "$c ($cnode): DNS lookup through CoreDNS failed"
    for i in 1 2 3 4; do
      got=$(http_from_pod "$c" "http://web.$TEST_NS.svc.cluster.local/")
      ((DRY_RUN)) || grep -q '^server-' <<<"$got" || die "$c ($cnode) -> Service by name (try $i): '$got'"
      got=$(http_from_pod "$c" "http://$svc_ip/")
      ((DRY_RUN)) || grep -q '^server-' <<<"$got" || die "$c ($cnode) -> ClusterIP $svc_ip (try $i): '$got'"
    done
    echo "ok: $c ($cnode) -> ClusterIP Service by name and IP, DNS" >&2
    : "$cip"
  done <<<"$CLIENTS"
  for node in $NODES; do
    node_ip=$(node_internal_ip "$node")
    local from
    for from in $NODES; do
      got=$(capture "server-x" docker exec "$from" curl -sf --max-time 5 "http://$node_ip:$NODE_PORT/")
      ((DRY_RUN)) || grep -q '^server-' <<<"$got" || die "NodePort $node_ip:$NODE_PORT from $from: '$got'"
    done
    echo "ok: NodePort on $node from every node" >&2
  done
}

# hostPort through the chained portmap: each node's address at HOST_PORT reaches the server
# pod on that node, from every node (the node itself included).
host_ports() {
  log "hostPort (portmap chained after sluice)"
  local node node_ip from got want
  for node in $NODES; do
    node_ip=$(node_internal_ip "$node")
    want=$(awk -v n="$node" '$3 == n {print $1; exit}' <<<"$SERVERS")
    ((DRY_RUN)) || [[ -n "$want" ]] || die "no server pod on $node for its hostPort"
    for from in $NODES; do
      got=$(capture "$want" docker exec "$from" curl -sf --max-time 5 "http://$node_ip:$HOST_PORT/")
      check_eq "hostPort $node_ip:$HOST_PORT ($node) from $from" "$want" "$got"
    done
  done
}

outside_world() {
  log "pod -> outside the cluster (masquerade)"
  local outside_ip c cip cnode got
  outside_ip=$(capture "172.18.0.100" docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$OUTSIDE")
  while read -r c cip cnode; do
    got=$(http_from_pod "$c" "http://$outside_ip:8080/")
    check_eq "$c ($cnode) -> outside $outside_ip" "outside" "$got"
    : "$cip"
  done <<<"$CLIENTS"
}

rolling_restart_under_traffic() {
  log "rolling restart of the agent under traffic"
  local c cip cnode same_ip cross_ip
  read -r c cip cnode < <(grep -- "$CLUSTER-worker\$" <<<"$CLIENTS" || head -1 <<<"$CLIENTS")
  same_ip=$(awk -v n="$cnode" '$3 == n {print $2; exit}' <<<"$SERVERS")
  cross_ip=$(first_other_server_ip "$cnode")
  [[ -n "$same_ip" && -n "$cross_ip" ]] || die "no server pods to send traffic to"
  # One request and one ping to a same-node and a cross-node pod every 0.2 s until told to
  # stop (bounded to 1500 rounds), then one summary line. Expanded inside the pod.
  # shellcheck disable=SC2016
  local loop='i=0; lost=0; rm -f /tmp/sl-stop
while [ ! -e /tmp/sl-stop ] && [ $i -lt 1500 ]; do
  for ip in '"$same_ip $cross_ip"'; do
    wget -q -O /dev/null -T 2 "http://$ip:8080/" || { lost=$((lost+1)); echo "lost http $ip round $i"; }
    ping -c 1 -W 2 "$ip" >/dev/null || { lost=$((lost+1)); echo "lost ping $ip round $i"; }
  done
  i=$((i+1)); sleep 0.2
done
echo "rounds=$i lost=$lost"'
  local traffic_log=/dev/null
  if ((DRY_RUN == 0)); then mkdir -p "$ARTIFACTS"; traffic_log=$ARTIFACTS/restart-traffic.log; fi
  local traffic_pid=""
  if ((DRY_RUN)); then
    kubectl_ -n "$TEST_NS" exec "$c" -- sh -c "$loop"
  else
    kubectl_ -n "$TEST_NS" exec "$c" -- sh -c "$loop" >"$traffic_log" 2>&1 &
    traffic_pid=$!
  fi
  # Some rounds before the restart, so a loop that never got going is not mistaken for one
  # that lost nothing.
  ((DRY_RUN)) || sleep 5
  kubectl_ -n "$SYSTEM_NS" rollout restart "daemonset/$RELEASE"
  kubectl_ -n "$SYSTEM_NS" rollout status "daemonset/$RELEASE" --timeout="$TIMEOUT"
  ((DRY_RUN)) || sleep 5
  kubectl_ -n "$TEST_NS" exec "$c" -- touch /tmp/sl-stop
  ((DRY_RUN)) && return 0
  wait "$traffic_pid" || die "the traffic loop in $c failed (see $traffic_log)"
  local summary rounds lost
  summary=$(grep '^rounds=' "$traffic_log" | tail -1)
  rounds=$(sed -n 's/^rounds=\([0-9]*\) .*/\1/p' <<<"$summary")
  lost=$(sed -n 's/.* lost=\([0-9]*\)$/\1/p' <<<"$summary")
  [[ -n "$rounds" && -n "$lost" ]] || die "no summary from the traffic loop (see $traffic_log)"
  ((rounds >= 20)) || die "the traffic loop ran only $rounds rounds"
  ((lost == 0)) || die "$lost of $((rounds * 4)) probes lost during the agent's rolling restart (see $traffic_log)"
  echo "ok: $((rounds * 4)) probes (http+ping, same node and cross node) during the restart, none lost" >&2
}

main() {
  preflight
  if ((DRY_RUN == 0)); then mkdir -p "$ARTIFACTS"; fi
  trap cleanup EXIT
  bring_up
  NODES=$(kcapture "$CLUSTER-control-plane $CLUSTER-worker $CLUSTER-worker2" get nodes \
            -o jsonpath='{.items[*].metadata.name}')
  SERVERS=$(pods_of sl-e2e-server)
  CLIENTS=$(pods_of sl-e2e-client)
  ((DRY_RUN)) || (($(wc -l <<<"$SERVERS") >= 3)) || die "expected a server pod on each of 3 nodes"
  pod_to_pod
  services
  host_ports
  outside_world
  rolling_restart_under_traffic
  log "after the restart: pod -> pod again"
  pod_to_pod
}

main
