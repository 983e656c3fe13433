#!/usr/bin/env bash
# The seed article's Docker experiment, with vtepd in place of
# `ip link add vxlan_docker type vxlan id 200 ...`: two "hosts" (network
# namespaces) joined by an underlay link, each with a bridge (their
# "docker0"), a "container" on it, and a vtepd that joins the bridge as a
# TAP port and carries VNI 200 to the other host.
#
#   container-a 198.19.0.1 ── br0 ── vtepd ═ VXLAN 200 over 198.18.0.1 ⇄ 198.18.0.2 ═ vtepd ── br0 ── 198.19.0.2 container-b
#
# Everything lives in namespaces named vtdemo<PID>-*; they and the two
# daemons are removed on exit, also on failure or Ctrl-C.
# KEEP=1 keeps the overlay up until Enter is pressed, for a look around.
set -euo pipefail

bin=${VTEPD:-$(dirname "$0")/../bin/vtepd}
[ -x "$bin" ] || { echo "demo: $bin missing; run make build" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "demo: needs root (network namespaces); try sudo make demo" >&2; exit 1; }

p=vtdemo$$
hosts=(a b)
declare -A underlay=([a]=198.18.0.1 [b]=198.18.0.2)
declare -A inner=([a]=198.19.0.1 [b]=198.19.0.2)
declare -A peer=([a]=b [b]=a)
pids=()
tmp=$(mktemp -d)

cleanup() {
	set +e
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
	for h in "${hosts[@]}"; do
		ip netns del "$p-$h" 2>/dev/null
		ip netns del "$p-c$h" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
get() { ip netns exec "$p-$1" curl -sf --max-time 5 "http://127.0.0.1:9476$2"; }

step "underlay: two hosts joined by a veth, ${underlay[a]} <-> ${underlay[b]}"
for h in "${hosts[@]}"; do
	ip netns add "$p-$h"
	ip netns add "$p-c$h"
	ip -n "$p-$h" link set lo up
	ip -n "$p-c$h" link set lo up
done
ip link add "${p}a" netns "$p-a" type veth peer name "${p}b" netns "$p-b"
for h in "${hosts[@]}"; do
	ip -n "$p-$h" link set "$p$h" name eth0
	ip -n "$p-$h" addr add "${underlay[$h]}/24" dev eth0
	ip -n "$p-$h" link set eth0 up
done

step "each host: bridge br0 and a container at 198.19.0.x/24 with MTU 1450 (1500 - 50 bytes of VXLAN over IPv4)"
for h in "${hosts[@]}"; do
	ip -n "$p-$h" link add br0 type bridge
	ip -n "$p-$h" link set br0 up
	ip link add "${p}c" netns "$p-c$h" type veth peer name "${p}v" netns "$p-$h"
	ip -n "$p-c$h" link set "${p}c" name eth0
	ip -n "$p-c$h" link set eth0 mtu 1450 up
	ip -n "$p-c$h" addr add "${inner[$h]}/24" dev eth0
	ip -n "$p-$h" link set "${p}v" mtu 1450 master br0 up
done

step "vtepd on each host: VNI 200, port 4789, flooding to the other host"
for h in "${hosts[@]}"; do
	cat >"$tmp/$h.toml" <<TOML
state_dir = ""                     # a demo keeps nothing across runs

[underlay]
local = "${underlay[$h]}"
port = 4789

[metrics]
listen = "127.0.0.1:9476"

[admin]
socket = "$tmp/$h.sock"

[[network]]
name = "demo"
vni = 200
bridge = "br0"
tap = "vtep200"
peers = ["${underlay[${peer[$h]}]}"]
accept_from = ["198.18.0.0/24"]    # only our hosts may send into this network
TOML
	echo "--- host $h: $tmp/$h.toml"
	cat "$tmp/$h.toml"
	ip netns exec "$p-$h" "$bin" -config "$tmp/$h.toml" 2>"$tmp/$h.log" &
	pids+=($!)
done
for h in "${hosts[@]}"; do
	for _ in $(seq 50); do get "$h" /healthz >/dev/null 2>&1 && break; sleep 0.1; done
	get "$h" /healthz >/dev/null || { echo "vtepd on host $h did not start:"; cat "$tmp/$h.log"; exit 1; }
done
ip -n "$p-a" -d link show vtep200 | head -3

step "container a -> container b (ARP is flooded, the reply is learned)"
ip netns exec "$p-ca" ping -c 3 -i 0.2 -W 2 "${inner[b]}"
step "container b -> container a"
ip netns exec "$p-cb" ping -c 3 -i 0.2 -W 2 "${inner[a]}"
step "a 1450-byte IP packet with DF set crosses: the overlay MTU is 1450"
ip netns exec "$p-ca" ping -c 2 -i 0.2 -W 2 -M do -s 1422 "${inner[b]}"

step "host a: learned FDB (vtepctl fdb show); container b's eth0 is $(ip -n "$p-cb" -br link show eth0 | awk '{print $3}')"
"$(dirname "$bin")/vtepctl" -s "$tmp/a.sock" fdb show
step "host a: per-peer counters (vtepctl peers)"
"$(dirname "$bin")/vtepctl" -s "$tmp/a.sock" peers
step "host a: metrics (GET /metrics, non-zero vtep_* series)"
get a /metrics | grep '^vtep_' | grep -v ' 0$'

if [ "${KEEP:-0}" = 1 ]; then
	step "KEEP=1: namespaces $p-{a,b,ca,cb} are up; try: sudo ip netns exec $p-ca ping ${inner[b]}"
	read -r -p "Press Enter to tear down. " _
fi
step "tearing down"
