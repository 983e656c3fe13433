#!/usr/bin/env bash
# A quick side-by-side of the kernel's vxlan and vtepd on one machine: two
# hosts in namespaces, a container on each host's bridge, VNI 200. For each
# of REPS rounds, alternating: TCP single stream (iperf3, SECONDS s) and ping
# RTT (100 pings), first with kernel vxlan on both hosts, then with vtepd.
# Prints one line per run and the vtepd/kernel ratio of the medians.
# The full harness is `make bench` (bench/); this is its first stone.
set -euo pipefail
bin=${VTEPD:-$(dirname "$0")/../bin/vtepd}
REPS=${REPS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
p=vtq$$
pids=()
tmp=$(mktemp -d)
cleanup() {
	set +e
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
	for n in a b ca cb; do ip netns del "$p-$n" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

declare -A u=([a]=198.18.0.1 [b]=198.18.0.2) c=([a]=198.19.0.1 [b]=198.19.0.2) o=([a]=b [b]=a)
for n in a b ca cb; do ip netns add "$p-$n"; ip -n "$p-$n" link set lo up; done
ip link add "${p}a" netns "$p-a" type veth peer name "${p}b" netns "$p-b"
for h in a b; do
	ip -n "$p-$h" link set "$p$h" name eth0
	ip -n "$p-$h" addr add "${u[$h]}/24" dev eth0
	ip -n "$p-$h" link set eth0 up
	ip -n "$p-$h" link add br0 type bridge
	ip -n "$p-$h" link set br0 up
	ip link add "${p}c" netns "$p-c$h" type veth peer name "${p}v" netns "$p-$h"
	ip -n "$p-c$h" link set "${p}c" name eth0
	ip -n "$p-c$h" link set eth0 mtu 1450 up
	ip -n "$p-c$h" addr add "${c[$h]}/24" dev eth0
	ip -n "$p-$h" link set "${p}v" mtu 1450 master br0 up
	printf '%s[underlay]\nlocal = "%s"\n[metrics]\nlisten = ""\n[[network]]\nvni = 200\nbridge = "br0"\npeers = ["%s"]\n' \
		"${QUEUES:+queues = $QUEUES
}" "${u[$h]}" "${u[${o[$h]}]}" >"$tmp/$h.toml"
done
ip netns exec "$p-cb" iperf3 -s -D -1 >/dev/null 2>&1 || true

up() { # $1 = kernel | vtepd
	for h in a b; do
		if [ "$1" = kernel ]; then
			ip -n "$p-$h" link add vx0 type vxlan id 200 local "${u[$h]}" remote "${u[${o[$h]}]}" dstport 4789 dev eth0
			ip -n "$p-$h" link set vx0 mtu 1450 master br0 up
		else
			ip netns exec "$p-$h" "$bin" -config "$tmp/$h.toml" 2>>"$tmp/$h.log" &
			pids+=($!)
		fi
	done
	for _ in $(seq 50); do ip netns exec "$p-ca" ping -c1 -W1 "${c[b]}" >/dev/null 2>&1 && return; sleep 0.1; done
	echo "overlay ($1) did not come up" >&2; exit 1
}
down() {
	if [ "$1" = kernel ]; then
		for h in a b; do ip -n "$p-$h" link del vx0; done
	else
		for pid in "${pids[@]}"; do kill -TERM "$pid"; wait "$pid" || true; done
		pids=()
	fi
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

for r in $(seq "$REPS"); do
	for mode in kernel vtepd; do
		up "$mode"
		ip netns exec "$p-cb" iperf3 -s -D -1 -p 5201 >/dev/null
		sleep 0.2
		gbps=$(ip netns exec "$p-ca" iperf3 -c "${c[b]}" -t "$SECONDS_PER_RUN" -J | \
			python3 -c 'import json,sys; print("%.3f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))')
		rtt=$(ip netns exec "$p-ca" ping -q -c 100 -i 0.01 "${c[b]}" | awk -F/ '/rtt/ {print $5}')
		echo "$mode $gbps $rtt" | tee -a "$tmp/results"
		down "$mode"
	done
done
echo
printf '%-8s %12s %12s\n' "" "TCP Gbit/s" "ping avg ms"
for mode in kernel vtepd; do
	printf '%-8s %12s %12s\n' "$mode" "$(awk -v m=$mode '$1==m {print $2}' "$tmp/results" | median)" \
		"$(awk -v m=$mode '$1==m {print $3}' "$tmp/results" | median)"
done
k=$(awk '$1=="kernel" {print $2}' "$tmp/results" | median); v=$(awk '$1=="vtepd" {print $2}' "$tmp/results" | median)
kl=$(awk '$1=="kernel" {print $3}' "$tmp/results" | median); vl=$(awk '$1=="vtepd" {print $3}' "$tmp/results" | median)
printf 'ratio vtepd/kernel: TCP %.3f, ping RTT %.2f\n' "$(echo "$v / $k" | bc -l)" "$(echo "$vl / $kl" | bc -l)"
