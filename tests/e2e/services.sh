#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ClusterIP Services through kube-proxy-style NAT on every node, iptables-nft mode (KUBE-SERVICES,
# KUBE-SVC-* with statistic-mode random load balancing, KUBE-SEP-* DNAT, KUBE-MARK-MASQ and
# KUBE-POSTROUTING masquerade, KUBE-FORWARD) and nftables mode (table ip kube-proxy, numgen
# vmaps). One backend on the client's node, one on another node. The client reaches the Service
# IP over TCP (1,000 short connections, all must succeed, both backends serve) and UDP (every
# reply carries the Service IP as its source), a long TCP transfer from each backend is checked
# by hash, and the host and a backend (hairpin) reach it through kube-proxy's masquerade. In a
# dual-stack cluster an IPv6 ClusterIP Service too (ip6tables, the same two backends by their
# IPv6 addresses): TCP from the client and the host, replies always from the Service address.
#
# Run with the datapath's NAT detection by the conntrack kfunc (agent default on this kernel)
# and by flow records (--nat-detect records), in the agents' vxlan or native mode (SLUICE_MODE);
# a control run with the detection off
# (--nat-detect off) must break: replies of the backends reach the client with their own
# addresses and TCP connections to the Service fail.
source "$(dirname "$0")/lib.sh"

SVC=10.96.0.10         # the load-balanced Service: tcp 80 -> 8080, udp 53 -> 5353
SVC_LOCAL=10.96.0.11   # tcp 81 -> 8081 on the local backend only (bulk transfer)
SVC_REMOTE=10.96.0.12  # tcp 81 -> 8081 on the remote backend only (bulk transfer)
CLUSTER_CIDR=10.244.0.0/16
SVC6=fd00:10:96::10    # dual stack: the load-balanced Service over IPv6, tcp 80 -> 8080
CLUSTER_CIDR6=fd00:10:244::/48
CONNS=${SERVICES_CONNS:-1000}
BULK_MIB=${SERVICES_BULK_MIB:-64}
# SERVICES_NFTABLES=0 leaves out the nftables-mode rounds (the datapath meets the same
# conntrack NAT either way; the native-routing variant runs iptables mode only, for CI time).

e2e_up --nodes 2 --pods-per-node 2

CLIENT_NS=$(pns 1 1)
CLIENT_IP=$(pod_ip 1 1)
LOCAL_NAME=pod-1-2
LOCAL_NS=$(pns 1 2)
LOCAL_IP=$(pod_ip 1 2)
REMOTE_NAME=pod-2-1
REMOTE_NS=$(pns 2 1)
REMOTE_IP=$(pod_ip 2 1)
echo "client $CLIENT_IP (node-1), backends $LOCAL_IP (node-1), $REMOTE_IP (node-2), Service $SVC" >&2

# ---- backends ------------------------------------------------------------------------------
# Each backend answers on tcp 8080 with its name, on udp 5353 with its name and the query, and
# on tcp 8081 with its name followed by the bulk file.
head -c $((BULK_MIB * 1048576)) /dev/urandom >"$CROOT/bulk.bin"
BULK_SHA=$(sha256sum <"$CROOT/bulk.bin" | cut -d' ' -f1)
cat >"$CROOT/backend.py" <<'PY'
import os, socket, sys, threading
name, bulk, ready = sys.argv[1], sys.argv[2], sys.argv[3]

def listener(port, family=socket.AF_INET):
    s = socket.socket(family)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
    s.listen(1024)
    return s

def names(s):
    while True:
        c, _ = s.accept()
        try:
            c.sendall(name.encode() + b"\n")
        except OSError:
            pass
        c.close()

def bulk_sender(s):
    while True:
        c, _ = s.accept()
        def send(c=c):
            try:
                c.sendall(name.encode() + b"\n")
                with open(bulk, "rb") as f:
                    c.sendfile(f)
                c.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            c.close()
        threading.Thread(target=send, daemon=True).start()

def udp(u):
    while True:
        data, addr = u.recvfrom(2048)
        u.sendto(name.encode() + b" " + data, addr)

u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("0.0.0.0", 5353))
servers = [(names, listener(8080)), (names, listener(8080, socket.AF_INET6)), (bulk_sender, listener(8081)), (udp, u)]
for fn, sock in servers:
    threading.Thread(target=fn, args=(sock,), daemon=True).start()
open(ready, "w").close()
threading.Event().wait()
PY

start_backend() {  # start_backend <netns> <name>
  ip netns exec "$1" python3 "$CROOT/backend.py" "$2" "$CROOT/bulk.bin" "$CROOT/ready.$2" &
  E2E_BG_PIDS+=($!)
}
start_backend "$LOCAL_NS" "$LOCAL_NAME"
start_backend "$REMOTE_NS" "$REMOTE_NAME"
backends_ready() { [[ -e $CROOT/ready.$LOCAL_NAME && -e $CROOT/ready.$REMOTE_NAME ]]; }
check "backends listening" within 10000 backends_ready

# ---- the client ----------------------------------------------------------------------------
# client.py tcp N IP PORT | udp N IP PORT | bulk IP PORT: one JSON line on stdout.
cat >"$CROOT/client.py" <<'PY'
import hashlib, json, socket, sys
mode = sys.argv[1]
out = {}
if mode == "tcp":
    n, ip, port = int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    ok, fail, names, errors = 0, 0, {}, {}
    for i in range(n):
        if fail >= 20 and ok == 0:  # broken: do not wait out every remaining timeout
            fail += n - i
            break
        try:
            with socket.create_connection((ip, port), timeout=float(sys.argv[5]) if len(sys.argv) > 5 else 5) as c:
                peer = c.getpeername()[0]
                data = b""
                while not data.endswith(b"\n"):
                    chunk = c.recv(64)
                    if not chunk:
                        break
                    data += chunk
            name = data.decode().strip()
            if not name or peer != ip:
                raise OSError("no answer" if not name else "peer " + peer)
            names[name] = names.get(name, 0) + 1
            ok += 1
        except OSError as e:
            fail += 1
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
    out = {"ok": ok, "fail": fail, "names": names, "errors": errors}
elif mode == "udp":
    n, ip, port = int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    answered, sources, names = 0, {}, {}
    for i in range(n):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # unconnected: sees any source
        u.settimeout(2)
        u.bind(("0.0.0.0", 0))
        q = b"q%d" % i
        u.sendto(q, (ip, port))
        try:
            data, src = u.recvfrom(2048)
            answered += 1
            key = "%s:%d" % src
            sources[key] = sources.get(key, 0) + 1
            name, _, echo = data.partition(b" ")
            if echo == q:
                names[name.decode()] = names.get(name.decode(), 0) + 1
        except OSError:
            pass
        u.close()
    out = {"sent": n, "answered": answered, "sources": sources, "names": names}
elif mode == "bulk":
    ip, port = sys.argv[2], int(sys.argv[3])
    h, total, head = hashlib.sha256(), 0, b""
    with socket.create_connection((ip, port), timeout=20) as c:
        while not head.endswith(b"\n"):
            b = c.recv(1)
            if not b:
                break
            head += b
        while True:
            chunk = c.recv(1 << 16)
            if not chunk:
                break
            h.update(chunk)
            total += len(chunk)
    out = {"name": head.decode().strip(), "bytes": total, "sha256": h.hexdigest()}
print(json.dumps(out))
PY

client() { ip netns exec "$CLIENT_NS" python3 "$CROOT/client.py" "$@"; }
# jq_py <json> <python expression over d (the JSON) and E (the environment)>
jq_py() { python3 -c "import json,os,sys; d=json.loads(sys.argv[1]); E=os.environ; print($2)" "$1"; }
export SVC LOCAL_NAME LOCAL_IP REMOTE_NAME REMOTE_IP

# ---- kube-proxy's rules ----------------------------------------------------------------------
# iptables-nft mode, as kube-proxy writes it (chain names are kube-proxy's hash form).
iptables_rules() {
  cat <<EOF
*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SVC-SLUICEHTTPSVC0001 - [0:0]
:KUBE-SVC-SLUICEDNSSVC00001 - [0:0]
:KUBE-SVC-SLUICEBULKLOCAL01 - [0:0]
:KUBE-SVC-SLUICEBULKREMOTE1 - [0:0]
:KUBE-SEP-SLUICEHTTPLOCAL01 - [0:0]
:KUBE-SEP-SLUICEHTTPREMOTE1 - [0:0]
:KUBE-SEP-SLUICEDNSLOCAL001 - [0:0]
:KUBE-SEP-SLUICEDNSREMOTE01 - [0:0]
:KUBE-SEP-SLUICEBULKLOCAL01 - [0:0]
:KUBE-SEP-SLUICEBULKREMOTE1 - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SERVICES -d $SVC/32 -p tcp -m comment --comment "default/sluice-svc:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-SLUICEHTTPSVC0001
-A KUBE-SERVICES -d $SVC/32 -p udp -m comment --comment "default/sluice-svc:dns cluster IP" -m udp --dport 53 -j KUBE-SVC-SLUICEDNSSVC00001
-A KUBE-SERVICES -d $SVC_LOCAL/32 -p tcp -m comment --comment "default/bulk-local:bulk cluster IP" -m tcp --dport 81 -j KUBE-SVC-SLUICEBULKLOCAL01
-A KUBE-SERVICES -d $SVC_REMOTE/32 -p tcp -m comment --comment "default/bulk-remote:bulk cluster IP" -m tcp --dport 81 -j KUBE-SVC-SLUICEBULKREMOTE1
-A KUBE-SVC-SLUICEHTTPSVC0001 ! -s $CLUSTER_CIDR -d $SVC/32 -p tcp -m comment --comment "default/sluice-svc:http cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ
-A KUBE-SVC-SLUICEHTTPSVC0001 -m comment --comment "default/sluice-svc:http -> $LOCAL_IP:8080" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-SLUICEHTTPLOCAL01
-A KUBE-SVC-SLUICEHTTPSVC0001 -m comment --comment "default/sluice-svc:http -> $REMOTE_IP:8080" -j KUBE-SEP-SLUICEHTTPREMOTE1
-A KUBE-SEP-SLUICEHTTPLOCAL01 -s $LOCAL_IP/32 -m comment --comment "default/sluice-svc:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-SLUICEHTTPLOCAL01 -p tcp -m comment --comment "default/sluice-svc:http" -m tcp -j DNAT --to-destination $LOCAL_IP:8080
-A KUBE-SEP-SLUICEHTTPREMOTE1 -s $REMOTE_IP/32 -m comment --comment "default/sluice-svc:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-SLUICEHTTPREMOTE1 -p tcp -m comment --comment "default/sluice-svc:http" -m tcp -j DNAT --to-destination $REMOTE_IP:8080
-A KUBE-SVC-SLUICEDNSSVC00001 ! -s $CLUSTER_CIDR -d $SVC/32 -p udp -m comment --comment "default/sluice-svc:dns cluster IP" -m udp --dport 53 -j KUBE-MARK-MASQ
-A KUBE-SVC-SLUICEDNSSVC00001 -m comment --comment "default/sluice-svc:dns -> $LOCAL_IP:5353" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-SLUICEDNSLOCAL001
-A KUBE-SVC-SLUICEDNSSVC00001 -m comment --comment "default/sluice-svc:dns -> $REMOTE_IP:5353" -j KUBE-SEP-SLUICEDNSREMOTE01
-A KUBE-SEP-SLUICEDNSLOCAL001 -s $LOCAL_IP/32 -m comment --comment "default/sluice-svc:dns" -j KUBE-MARK-MASQ
-A KUBE-SEP-SLUICEDNSLOCAL001 -p udp -m comment --comment "default/sluice-svc:dns" -m udp -j DNAT --to-destination $LOCAL_IP:5353
-A KUBE-SEP-SLUICEDNSREMOTE01 -s $REMOTE_IP/32 -m comment --comment "default/sluice-svc:dns" -j KUBE-MARK-MASQ
-A KUBE-SEP-SLUICEDNSREMOTE01 -p udp -m comment --comment "default/sluice-svc:dns" -m udp -j DNAT --to-destination $REMOTE_IP:5353
-A KUBE-SVC-SLUICEBULKLOCAL01 ! -s $CLUSTER_CIDR -d $SVC_LOCAL/32 -p tcp -m comment --comment "default/bulk-local:bulk cluster IP" -m tcp --dport 81 -j KUBE-MARK-MASQ
-A KUBE-SVC-SLUICEBULKLOCAL01 -m comment --comment "default/bulk-local:bulk -> $LOCAL_IP:8081" -j KUBE-SEP-SLUICEBULKLOCAL01
-A KUBE-SEP-SLUICEBULKLOCAL01 -s $LOCAL_IP/32 -m comment --comment "default/bulk-local:bulk" -j KUBE-MARK-MASQ
-A KUBE-SEP-SLUICEBULKLOCAL01 -p tcp -m comment --comment "default/bulk-local:bulk" -m tcp -j DNAT --to-destination $LOCAL_IP:8081
-A KUBE-SVC-SLUICEBULKREMOTE1 ! -s $CLUSTER_CIDR -d $SVC_REMOTE/32 -p tcp -m comment --comment "default/bulk-remote:bulk cluster IP" -m tcp --dport 81 -j KUBE-MARK-MASQ
-A KUBE-SVC-SLUICEBULKREMOTE1 -m comment --comment "default/bulk-remote:bulk -> $REMOTE_IP:8081" -j KUBE-SEP-SLUICEBULKREMOTE1
-A KUBE-SEP-SLUICEBULKREMOTE1 -s $REMOTE_IP/32 -m comment --comment "default/bulk-remote:bulk" -j KUBE-MARK-MASQ
-A KUBE-SEP-SLUICEBULKREMOTE1 -p tcp -m comment --comment "default/bulk-remote:bulk" -m tcp -j DNAT --to-destination $REMOTE_IP:8081
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FORWARD - [0:0]
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
EOF
}

# nftables mode (kube-proxy --proxy-mode nftables): table ip kube-proxy, a verdict map from
# (daddr, proto, port) to per-service chains, numgen random load balancing to endpoint chains.
nftables_rules() {
  local svc_http=service-SLHTTP01-default/sluice-svc/tcp/http
  local svc_dns=service-SLDNS001-default/sluice-svc/udp/dns
  local svc_bl=service-SLBULKL1-default/bulk-local/tcp/bulk
  local svc_br=service-SLBULKR1-default/bulk-remote/tcp/bulk
  local ep_http_l=endpoint-SLEPHL01-default/sluice-svc/tcp/http__$LOCAL_IP/8080
  local ep_http_r=endpoint-SLEPHR01-default/sluice-svc/tcp/http__$REMOTE_IP/8080
  local ep_dns_l=endpoint-SLEPDL01-default/sluice-svc/udp/dns__$LOCAL_IP/5353
  local ep_dns_r=endpoint-SLEPDR01-default/sluice-svc/udp/dns__$REMOTE_IP/5353
  local ep_bl=endpoint-SLEPBL01-default/bulk-local/tcp/bulk__$LOCAL_IP/8081
  local ep_br=endpoint-SLEPBR01-default/bulk-remote/tcp/bulk__$REMOTE_IP/8081
  cat <<EOF
add table ip kube-proxy
add chain ip kube-proxy mark-for-masquerade
add chain ip kube-proxy masquerading
add chain ip kube-proxy services
add chain ip kube-proxy forward
add chain ip kube-proxy filter-forward { type filter hook forward priority -110 ; }
add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }
add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }
add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }
add chain ip kube-proxy $svc_http
add chain ip kube-proxy $svc_dns
add chain ip kube-proxy $svc_bl
add chain ip kube-proxy $svc_br
add chain ip kube-proxy $ep_http_l
add chain ip kube-proxy $ep_http_r
add chain ip kube-proxy $ep_dns_l
add chain ip kube-proxy $ep_dns_r
add chain ip kube-proxy $ep_bl
add chain ip kube-proxy $ep_br
add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; }
add rule ip kube-proxy mark-for-masquerade mark set mark or 0x4000
add rule ip kube-proxy masquerading mark and 0x4000 == 0 return
add rule ip kube-proxy masquerading mark set mark xor 0x4000
add rule ip kube-proxy masquerading masquerade fully-random
add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
add rule ip kube-proxy forward ct state invalid drop
add rule ip kube-proxy filter-forward jump forward
add rule ip kube-proxy nat-prerouting jump services
add rule ip kube-proxy nat-output jump services
add rule ip kube-proxy nat-postrouting jump masquerading
add rule ip kube-proxy $svc_http ip daddr $SVC tcp dport 80 ip saddr != $CLUSTER_CIDR jump mark-for-masquerade
add rule ip kube-proxy $svc_http numgen random mod 2 vmap { 0 : goto $ep_http_l , 1 : goto $ep_http_r }
add rule ip kube-proxy $ep_http_l ip saddr $LOCAL_IP jump mark-for-masquerade
add rule ip kube-proxy $ep_http_l meta l4proto tcp dnat to $LOCAL_IP:8080
add rule ip kube-proxy $ep_http_r ip saddr $REMOTE_IP jump mark-for-masquerade
add rule ip kube-proxy $ep_http_r meta l4proto tcp dnat to $REMOTE_IP:8080
add rule ip kube-proxy $svc_dns ip daddr $SVC udp dport 53 ip saddr != $CLUSTER_CIDR jump mark-for-masquerade
add rule ip kube-proxy $svc_dns numgen random mod 2 vmap { 0 : goto $ep_dns_l , 1 : goto $ep_dns_r }
add rule ip kube-proxy $ep_dns_l ip saddr $LOCAL_IP jump mark-for-masquerade
add rule ip kube-proxy $ep_dns_l meta l4proto udp dnat to $LOCAL_IP:5353
add rule ip kube-proxy $ep_dns_r ip saddr $REMOTE_IP jump mark-for-masquerade
add rule ip kube-proxy $ep_dns_r meta l4proto udp dnat to $REMOTE_IP:5353
add rule ip kube-proxy $svc_bl ip daddr $SVC_LOCAL tcp dport 81 ip saddr != $CLUSTER_CIDR jump mark-for-masquerade
add rule ip kube-proxy $svc_bl goto $ep_bl
add rule ip kube-proxy $ep_bl ip saddr $LOCAL_IP jump mark-for-masquerade
add rule ip kube-proxy $ep_bl meta l4proto tcp dnat to $LOCAL_IP:8081
add rule ip kube-proxy $svc_br ip daddr $SVC_REMOTE tcp dport 81 ip saddr != $CLUSTER_CIDR jump mark-for-masquerade
add rule ip kube-proxy $svc_br goto $ep_br
add rule ip kube-proxy $ep_br ip saddr $REMOTE_IP jump mark-for-masquerade
add rule ip kube-proxy $ep_br meta l4proto tcp dnat to $REMOTE_IP:8081
add element ip kube-proxy service-ips { $SVC . tcp . 80 : goto $svc_http }
add element ip kube-proxy service-ips { $SVC . udp . 53 : goto $svc_dns }
add element ip kube-proxy service-ips { $SVC_LOCAL . tcp . 81 : goto $svc_bl }
add element ip kube-proxy service-ips { $SVC_REMOTE . tcp . 81 : goto $svc_br }
EOF
}

program_iptables() {
  local i
  for i in 1 2; do
    iptables_rules | ip netns exec "$(nns "$i")" iptables-restore --noflush || return 1
  done
}
remove_iptables() {
  local i t
  for i in 1 2; do
    for t in nat filter; do
      ip netns exec "$(nns "$i")" iptables -t "$t" -F || return 1
      ip netns exec "$(nns "$i")" iptables -t "$t" -X || return 1
    done
  done
}
program_nftables() {
  local i
  for i in 1 2; do nftables_rules | ip netns exec "$(nns "$i")" nft -f - || return 1; done
}
# No DNAT left behind: a Service packet must not reach a backend after the rules are gone.
remove_nftables() {
  local i
  for i in 1 2; do ip netns exec "$(nns "$i")" nft delete table ip kube-proxy || return 1; done
}

# The IPv6 Service as kube-proxy's ip6tables mode writes it (its IPv6 instance has chains of the
# same names in ip6tables).
ip6tables_rules() {
  cat <<EOF
*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SVC-SLUICEHTTPSVC0006 - [0:0]
:KUBE-SEP-SLUICEHTTPLOCAL06 - [0:0]
:KUBE-SEP-SLUICEHTTPREMOTE6 - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SERVICES -d $SVC6/128 -p tcp -m comment --comment "default/sluice-svc6:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-SLUICEHTTPSVC0006
-A KUBE-SVC-SLUICEHTTPSVC0006 ! -s $CLUSTER_CIDR6 -d $SVC6/128 -p tcp -m comment --comment "default/sluice-svc6:http cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ
-A KUBE-SVC-SLUICEHTTPSVC0006 -m comment --comment "default/sluice-svc6:http -> [$LOCAL_IP6]:8080" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-SLUICEHTTPLOCAL06
-A KUBE-SVC-SLUICEHTTPSVC0006 -m comment --comment "default/sluice-svc6:http -> [$REMOTE_IP6]:8080" -j KUBE-SEP-SLUICEHTTPREMOTE6
-A KUBE-SEP-SLUICEHTTPLOCAL06 -s $LOCAL_IP6/128 -m comment --comment "default/sluice-svc6:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-SLUICEHTTPLOCAL06 -p tcp -m comment --comment "default/sluice-svc6:http" -m tcp -j DNAT --to-destination [$LOCAL_IP6]:8080
-A KUBE-SEP-SLUICEHTTPREMOTE6 -s $REMOTE_IP6/128 -m comment --comment "default/sluice-svc6:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-SLUICEHTTPREMOTE6 -p tcp -m comment --comment "default/sluice-svc6:http" -m tcp -j DNAT --to-destination [$REMOTE_IP6]:8080
COMMIT
EOF
}
program_ip6tables() {
  local i
  for i in 1 2; do
    ip6tables_rules | ip netns exec "$(nns "$i")" ip6tables-restore --noflush || return 1
  done
}
remove_ip6tables() {
  local i
  for i in 1 2; do
    ip netns exec "$(nns "$i")" ip6tables -t nat -F || return 1
    ip netns exec "$(nns "$i")" ip6tables -t nat -X || return 1
  done
}

# Packets that reach the client from a pod address (a backend's reply that escaped the reverse
# translation): counted in the client's own netns (IPv6: from_pods6).
ip netns exec "$CLIENT_NS" nft -f - <<EOF
table inet sluice_e2e {
  counter from_pods {}
  counter from_pods6 {}
  chain in {
    type filter hook prerouting priority -300; policy accept;
    ip saddr $CLUSTER_CIDR counter name from_pods
    ip6 saddr $CLUSTER_CIDR6 counter name from_pods6
  }
}
EOF
from_pods() {  # from_pods [from_pods6]
  ip netns exec "$CLIENT_NS" nft -j list counter inet sluice_e2e "${1:-from_pods}" | python3 -c 'import json,sys
for o in json.load(sys.stdin)["nftables"]:
    if "counter" in o: print(o["counter"]["packets"])'
}

# Entries in a node's flow records (sl_stack_flows).
flow_records() {
  bpftool -j map dump pinned "$(bpf_root "$1")/sl_stack_flows" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
}

# Flow records on a node whose reply source is <ip>: flows the node's stack sent towards it.
records_from() {  # records_from <node> <ip>
  bpftool -j map dump pinned "$(bpf_root "$1")/sl_stack_flows" | python3 -c '
import ipaddress, json, sys
want = int(ipaddress.IPv4Address(sys.argv[1])).to_bytes(4, "big")
n = 0
for e in json.load(sys.stdin):
    key = bytes(int(b, 16) for b in e["key"])
    n += key[0] == 4 and key[8:12] == want  # family, then saddr[0] (struct sl_flow_key)
print(n)' "$2"
}
# The counter of cross-node packets from_pod sends the fast way.
FAST_OUT=encap_direct
native_mode && FAST_OUT=native

# The NAT detection a node's datapath uses, as the CLI reports it.
nat_detection() {
  agent_cli status "$1" -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["config"]["natDetection"])'
}
both_nodes_detect() { [[ $(nat_detection 1) == "$1" && $(nat_detection 2) == "$1" ]]; }

restart_agents() {  # restart_agents <extra agent flags>
  local i
  for i in 1 2; do SLUICE_AGENT_ARGS="$1" bash "$CLUSTER" restart-agent "$i" >&2 || return 1; done
}

# ---- one passing run -----------------------------------------------------------------------
services_work() {  # services_work <label>
  local label=$1 out nat0 nat1 fp0 fp1
  nat0=$(counter 1 to_stack_nat)
  fp0=$(from_pods)

  out=$(client tcp "$CONNS" "$SVC" 80)
  echo "  $label tcp: $out" >&2
  check "$label: $CONNS short TCP connections to the Service all succeed" \
    test "$(jq_py "$out" 'd["ok"]')" -eq "$CONNS"
  check "$label: both backends served (local and remote)" \
    test "$(jq_py "$out" 'int(d["names"].get(E["LOCAL_NAME"], 0) > 0 and d["names"].get(E["REMOTE_NAME"], 0) > 0)')" -eq 1

  out=$(client udp 200 "$SVC" 53)
  echo "  $label udp: $out" >&2
  check "$label: every UDP query answered" test "$(jq_py "$out" 'd["answered"]')" -eq 200
  check "$label: every UDP reply comes from the Service address $SVC:53" \
    test "$(jq_py "$out" 'int(list(d["sources"]) == [E["SVC"] + ":53"])')" -eq 1
  check "$label: UDP answered by both backends" \
    test "$(jq_py "$out" 'int(len(d["names"]) == 2)')" -eq 1

  local svc who
  for svc in "$SVC_LOCAL:local" "$SVC_REMOTE:remote"; do
    who=${svc#*:}
    out=$(client bulk "${svc%:*}" 81)
    echo "  $label bulk ($who backend): $out" >&2
    check "$label: $BULK_MIB MiB from the $who backend through the Service, sha256 matches" \
      test "$(jq_py "$out" 'd["sha256"]')" = "$BULK_SHA"
  done

  out=$(ip netns exec "$(nns 1)" python3 "$CROOT/client.py" tcp 50 "$SVC" 80)
  echo "  $label host: $out" >&2
  check "$label: node-1's host reaches the Service (kube-proxy masquerade)" test "$(jq_py "$out" 'd["ok"]')" -eq 50
  out=$(ip netns exec "$LOCAL_NS" python3 "$CROOT/client.py" tcp 50 "$SVC" 80)
  echo "  $label hairpin: $out" >&2
  check "$label: a backend reaches the Service, itself included (hairpin masquerade)" \
    test "$(jq_py "$out" 'int(d["ok"] == 50 and d["names"].get(E["LOCAL_NAME"], 0) > 0)')" -eq 1

  nat1=$(counter 1 to_stack_nat)
  fp1=$(from_pods)
  check "$label: node-1 sent replies of translated flows to the stack (to_stack_nat $nat0 -> $nat1)" \
    test $((nat1 - nat0)) -ge "$CONNS"
  check "$label: no packet reached the client from a pod address ($((fp1 - fp0)))" test "$fp1" -eq "$fp0"
}

# ---- the control run: detection off must break -----------------------------------------
services_break() {  # services_break <label>
  local label=$1 out fp0 fp1
  fp0=$(from_pods)
  out=$(client tcp 10 "$SVC" 80 1)
  echo "  $label tcp: $out" >&2
  check "$label: without NAT detection no TCP connection to the Service succeeds" \
    test "$(jq_py "$out" 'd["ok"]')" -eq 0
  out=$(client udp 20 "$SVC" 53)
  echo "  $label udp: $out" >&2
  check "$label: without NAT detection UDP replies carry the backends' addresses, not $SVC" \
    test "$(jq_py "$out" 'int(d["answered"] > 0 and all(s.split(":")[0] in (E["LOCAL_IP"], E["REMOTE_IP"]) for s in d["sources"]))')" -eq 1
  fp1=$(from_pods)
  check "$label: the client saw packets from pod addresses ($((fp1 - fp0)))" test "$fp1" -gt "$fp0"
}

# Real nodes have a default route; ours reach the Service range through the underlay, so that
# the host's own connections get as far as kube-proxy's OUTPUT DNAT.
for i in 1 2; do ip -n "$(nns "$i")" route add 10.96.0.0/12 via 198.18.0.254; done

bad_nat_flag() {
  local out rc=0
  out=$("$AGENT" --nat-detect bogus status 2>&1) || rc=$?
  [[ $rc -eq 2 && $out == *"--nat-detect: expected auto, conntrack, records or off"* ]]
}
check "sluice-agent refuses an unknown --nat-detect with a clear error" bad_nat_flag

echo "== kube-proxy iptables mode, NAT detection by conntrack (agent default)" >&2
check "iptables-nft rules programmed on both nodes" program_iptables
check "both nodes detect NAT by conntrack (the kfunc) by default" both_nodes_detect conntrack
services_work "iptables/conntrack"
# The client's Service replies come from the Service address; the local backend's connections
# came from the client pod, translated: only the backend's promise ended (its replies were
# looked up, and went to the stack, above).
check "iptables/conntrack: the local backend's untranslated promise ended ($(promise 1 2))" \
  test "$(promise 1 2)" = ended
check "iptables/conntrack: the client's untranslated promise held ($(promise 1 1))" test "$(promise 1 1)" = held
check "iptables/conntrack: no flow records made (the kfunc decided) on node-1 ($(flow_records 1)) and node-2 ($(flow_records 2))" \
  test "$(flow_records 1)" -eq 0 -a "$(flow_records 2)" -eq 0

if ipv6_cluster; then
  echo "== IPv6 ClusterIP Service, kube-proxy ip6tables mode, NAT detection by conntrack" >&2
  LOCAL_IP6=$(pod_ip6 1 2)
  REMOTE_IP6=$(pod_ip6 2 1)
  for i in 1 2; do ip -n "$(nns "$i")" -6 route add fd00:10:96::/108 via fd00:198:18::254; done
  check "ip6tables-nft rules programmed on both nodes" program_ip6tables
  fp0=$(from_pods from_pods6)
  out=$(client tcp 200 "$SVC6" 80)
  echo "  ip6tables tcp: $out" >&2
  check "IPv6: 200 short TCP connections to [$SVC6]:80 all succeed" test "$(jq_py "$out" 'd["ok"]')" -eq 200
  check "IPv6: both backends served (local and remote)" \
    test "$(jq_py "$out" 'int(d["names"].get(E["LOCAL_NAME"], 0) > 0 and d["names"].get(E["REMOTE_NAME"], 0) > 0)')" -eq 1
  fp1=$(from_pods from_pods6)
  check "IPv6: no packet reached the client from a pod IPv6 address ($((fp1 - fp0)))" test "$fp1" -eq "$fp0"
  ping_ok "$LOCAL_NS" "$(pod_ip6 1 1)" 2
  check "control: the client does count a pod's IPv6 packets ($fp1 -> $(from_pods from_pods6))" \
    test "$(from_pods from_pods6)" -gt "$fp1"
  out=$(ip netns exec "$(nns 1)" python3 "$CROOT/client.py" tcp 50 "$SVC6" 80)
  echo "  ip6tables host: $out" >&2
  check "IPv6: node-1's host reaches the Service (kube-proxy masquerade)" test "$(jq_py "$out" 'd["ok"]')" -eq 50
  check "ip6tables rules removed" remove_ip6tables
fi

echo "== kube-proxy iptables mode, NAT detection by flow records" >&2
check "agents restarted with --nat-detect records" restart_agents "--nat-detect records"
check "both nodes detect NAT by flow records" both_nodes_detect records
services_work "iptables/records"
check "iptables/records: node-1 recorded the flows its stack delivered ($(flow_records 1))" \
  test "$(flow_records 1)" -gt 0
check "iptables/records: ... and those it routed to the remote backend, where they left the node ($(records_from 1 "$REMOTE_IP"))" \
  test "$(records_from 1 "$REMOTE_IP")" -gt 0
# Plain pod-to-pod connections to the same backend pod take the fast way out (from_pod's
# redirect carries its tunnel key, or in native mode its mark, past the egress program) and are
# never recorded: their replies keep the fast way in too. (On a port of its own: a direct
# connection that happens to reuse the client port of a Service connection just closed to the
# same backend port meets that connection's conntrack entry on its way back, a limit of taking
# only the replies through the stack, which is not what this checks.)
ip netns exec "$REMOTE_NS" python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 9090)); s.listen(64); open(sys.argv[2], "w").close()
while True:
    c, _ = s.accept(); c.sendall(sys.argv[1].encode() + b"\n"); c.close()' "$REMOTE_NAME" "$CROOT/ready.direct" &
E2E_BG_PIDS+=($!)
direct_ready() { [[ -e $CROOT/ready.direct ]]; }
within 10000 direct_ready || true
rf0=$(records_from 1 "$REMOTE_IP")
x0=$(counter 1 "$FAST_OUT")
out=$(client tcp 50 "$REMOTE_IP" 9090)
rf1=$(records_from 1 "$REMOTE_IP")
x1=$(counter 1 "$FAST_OUT")
check "iptables/records: 50 direct connections to the remote backend succeed ($out)" test "$(jq_py "$out" 'd["ok"]')" -eq 50
check "iptables/records: ... sent the fast way ($FAST_OUT $x0 -> $x1) and not recorded ($rf0 -> $rf1)" \
  test $((x1 - x0)) -ge 100 -a "$rf1" -eq "$rf0"

echo "== control: NAT detection off" >&2
check "agents restarted with --nat-detect off" restart_agents "--nat-detect off"
check "both nodes detect no NAT" both_nodes_detect off
services_break "iptables/off"

check "iptables rules removed" remove_iptables
if [[ ${SERVICES_NFTABLES:-1} == 1 ]]; then
  echo "== kube-proxy nftables mode" >&2
  check "nftables rules programmed on both nodes" program_nftables
  check "agents restarted with the default NAT detection" restart_agents ""
  check "both nodes back to conntrack" both_nodes_detect conntrack
  services_work "nftables/conntrack"
  check "agents restarted with --nat-detect records" restart_agents "--nat-detect records"
  services_work "nftables/records"
  check "nftables rules removed" remove_nftables
fi

# Plain pod-to-pod traffic keeps the fast path next to all this.
r0=$(counter 1 redirect_local)
ping_ok "$CLIENT_NS" "$LOCAL_IP" 5
r1=$(counter 1 redirect_local)
check "pod-to-pod on the same node still redirected ($r0 -> $r1)" test $((r1 - r0)) -ge 10

e2e_done
