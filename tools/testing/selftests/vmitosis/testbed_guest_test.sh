#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The nested guest of the vMitosis test bed: vmitosis-guest boots an L2 guest
# with KVM inside the emulated host, NUMA-visible (one guest node per host
# node, vCPUs pinned and memory bound there) or NUMA-oblivious (one node), runs
# a command in it and returns the command's exit status.

DIR=$(dirname "$0")
. "$DIR/../kselftest/ktap_helpers.sh"

ktap_print_header
if ! command -v vmitosis-guest >/dev/null || [ ! -e /dev/kvm ] ||
   [ "${VMITOSIS_LEVEL:-}" != 1 ]; then
	ktap_skip_all "not in the emulated host (vmitosis-guest, /dev/kvm)"
	exit "$KSFT_SKIP"
fi
ktap_set_plan 8

# Every guest is bounded in time; one left behind by an interruption is taken down.
trap 'kill $gpid 2>/dev/null' EXIT
hnodes=$(cat /sys/devices/system/node/online)
nh=$(ls -d /sys/devices/system/node/node[0-9]* | wc -l)

check() {	# check DESCRIPTION EXPECTED ACTUAL
	if [ "$2" = "$3" ]; then
		ktap_test_pass "$1"
	else
		ktap_print_msg "expected '$2', got '$3'"
		ktap_test_fail "$1"
	fi
}

# One NUMA-visible guest does most of the checking, since every nested boot
# takes time: inside it, its node list and testbed_test (every node has CPUs
# and memory, SLIT present); outside, while it runs, the pinning of each vCPU
# thread to its host node's CPUs and the binding of each node's memory to its
# host node (one bind:N mapping per memory backend); at the end, the exit
# status of the command it ran.
# A guest has VMITOSIS_GUEST_TIMEOUT seconds (300) to boot and run its command:
# under the test bed's debug kernel a nested guest takes minutes to boot.
gt=${VMITOSIS_GUEST_TIMEOUT:-300}
share=/tmp/testbed-guest.$$
rm -rf "$share"
mkdir -p "$share"
vmitosis-guest --numa=visible --timeout "$gt" --share "$share" --pidfile "$share/qemu.pid" -- \
	sh -c 'cat /sys/devices/system/node/online > /share/online
	       env VMITOSIS_NODES='"$nh"' '"$DIR"'/testbed_test > /share/testbed.out 2>&1
	       echo $? > /share/testbed.rc
	       touch /share/up
	       while [ ! -e /share/done ]; do sleep 0.2; done
	       exit 7' &
gpid=$!
n=0
while [ ! -e "$share/up" ] && [ $n -lt $((gt * 5)) ] && kill -0 $gpid 2>/dev/null; do
	sleep 0.2
	n=$((n + 1))
done
qpid=$(cat "$share/qemu.pid" 2>/dev/null)
pinned=0 bound=0
for t in /proc/$qpid/task/*; do
	c=$(cat "$t/comm" 2>/dev/null)
	case $c in "CPU "*"/KVM") ;; *) continue ;; esac
	v=${c#CPU }; v=${v%/KVM}
	want=$(cat /sys/devices/system/node/node$v/cpulist)
	have=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "$t/status")
	if [ "$want" = "$have" ]; then
		pinned=$((pinned + 1))
	else
		ktap_print_msg "vCPU $v allowed on $have, host node $v has $want"
	fi
done
for h in $(seq 0 $((nh - 1))); do
	grep -q " bind:$h " "/proc/$qpid/numa_maps" 2>/dev/null && bound=$((bound + 1))
done
touch "$share/done"
wait $gpid
rc=$?
check "visible guest has the host's nodes ($hnodes)" "$hnodes" "$(cat "$share/online" 2>/dev/null)"
[ "$(cat "$share/testbed.rc" 2>/dev/null)" = 0 ] || sed 's/^/# L2: /' "$share/testbed.out"
check "testbed_test passes in the visible guest" 0 "$(cat "$share/testbed.rc" 2>/dev/null)"
check "visible guest: vCPU threads pinned to their host node" "$nh" "$pinned"
check "visible guest: node memory bound to its host node" "$nh" "$bound"
check "guest command exit status is returned" 7 $rc
rm -rf "$share"

out=$(vmitosis-guest --numa=oblivious --timeout "$gt" -- cat /sys/devices/system/node/online)
check "oblivious guest has one node" "0" "$out"

t0=$(cut -d. -f1 /proc/uptime)
vmitosis-guest --numa=oblivious --timeout 30 -- sleep 600
rc=$? took=$(( $(cut -d. -f1 /proc/uptime) - t0 ))
[ $took -lt 120 ] || rc="$rc after $took s"
check "a guest that outlives --timeout is killed, status 124" 124 "$rc"

# A guest that dies before its init runs (here: it has no init, and panics) is
# booted once more; the death is recorded for the run's count, and the second
# one's console is checked for kernel reports all the same.
d=$(mktemp -d /tmp/testbed-died.XXXXXX)
VMITOSIS_GUEST_RETRIES=$d/retries VMITOSIS_GUEST_REPORTS=$d/reports \
	vmitosis-guest --numa=oblivious --cpus 1 --timeout "$gt" \
	--append "rdinit=/nonexistent init=/nonexistent" -- true 2> "$d/err"
rc=$?
n=$(cat "$d/retries" 2>/dev/null | wc -l)
[ -s "$d/reports" ] || n="$n, its console not checked"
[ "$rc" = 125 ] || sed 's/^/# /' "$d/err" | tail -n 5
check "a guest that dies before init is booted once more, then status 125" "125 1" "$rc $n"
rm -rf "$d"

ktap_finished
