#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# kvm.tdp_migration with a real guest, in the emulated host of the vMitosis
# test bed: a VM runs on host node 0 (its QEMU and vCPU thread there, its
# memory allocated there), a guest process populates 256 MiB (or
# VMITOSIS_REGION_MB), then the host moves the VM to node 1 as a move between
# sockets does (every QEMU thread re-pinned, migratepages of its memory).
# With tdp_migration on, at least 99%
# of the VM's TDP table pages, every level and the root included, must be on
# node 1 within FOLLOW seconds, the passes that keep running afterwards must
# not make the guest fault (no refaults: they copy, they do not zap), and the
# guest process's data must be intact. With it off, the tables stay on node 0.

DIR=$(dirname "$0")
. "$DIR/../kselftest/ktap_helpers.sh"

PARAM=/sys/module/kvm/parameters/tdp_migration
LINGER=/sys/module/kvm/parameters/tdp_migration_linger
FOLLOW=${FOLLOW:-30}
# The guest process's memory in MiB (the debug pass of make test sets a smaller one).
MB=${VMITOSIS_REGION_MB:-256}

ktap_print_header
if ! command -v vmitosis-guest >/dev/null || [ ! -e /dev/kvm ] ||
   [ "${VMITOSIS_LEVEL:-}" != 1 ]; then
	ktap_skip_all "not in the emulated host (vmitosis-guest, /dev/kvm)"
	exit "$KSFT_SKIP"
fi
if [ ! -w $PARAM ] || [ ! -d /sys/devices/system/node/node1 ]; then
	ktap_skip_all "needs $PARAM and two nodes"
	exit "$KSFT_SKIP"
fi
ktap_set_plan 7

saved=$(cat $PARAM) linger=$(cat $LINGER)
THP=/sys/kernel/mm/transparent_hugepage/enabled
thp=$(sed 's/.*\[\(.*\)\].*/\1/' $THP)
trap 'kill $gpid 2>/dev/null; echo $saved > $PARAM; echo $linger > $LINGER; echo $thp > $THP' EXIT
# 4K mappings in the host too: a few hundred TDP tables rather than a handful.
echo never > $THP

# "ON TOTAL": TDP table pages on node $1 and in all, root included, from tdp_pt_nodes.
tables_on() {
	awk -v n="$1" '/^root [0-9]+ tables level/ {
		for (i = 6; i <= NF; i++) { t += $i; if (i - 6 == n) on += $i } }
		END { printf "%d %d\n", on, t }' "$dir/tdp_pt_nodes"
}

# run_case 1|0: boot the VM on node 0, move it to node 1, check where its tables are.
run_case() {
	em=$1
	follows="at least 99% of the TDP tables follow the VM to node 1 within $FOLLOW s"
	echo "$em" > $PARAM
	# Passes for 40 s after the move rather than 10: the refault check below needs them.
	echo 200 > $LINGER
	share=/tmp/ept-migration-guest.$$
	rm -rf "$share"
	mkdir -p "$share"
	vmitosis-guest --numa=oblivious --cpus 1 --mem 640M --host-nodes 0 --timeout 400 \
		--share "$share" --pidfile "$share/qemu.pid" -- \
		sh -c 'vmitosis_mem --size '"$MB"'M --no-thp --hold > /tmp/mem.out 2>&1 &
		       while ! grep -q ready /tmp/mem.out; do sleep 0.2; done
		       touch /share/up
		       while [ ! -e /share/done ]; do sleep 0.2; done
		       kill $!; wait $!' &
	gpid=$!
	n=0
	while [ ! -e "$share/up" ] && [ $n -lt 1500 ] && kill -0 $gpid 2>/dev/null; do
		sleep 0.2
		n=$((n + 1))
	done
	qpid=$(cat "$share/qemu.pid" 2>/dev/null)
	dir=$(ls -d /sys/kernel/debug/kvm/"$qpid"-* 2>/dev/null | head -n1)
	# No guest, no VM to look at: this case's tests fail, once each.
	if [ ! -e "$share/up" ] || [ -z "$dir" ]; then
		ktap_print_msg "the guest did not come up: $(ls "$share"), VM: '$dir'"
		ktap_test_fail "tdp_migration=$em: all TDP tables on node 0 before the move"
		if [ "$em" = 1 ]; then
			ktap_test_fail "$follows"
			ktap_test_fail "no refaults while the tables are rescanned"
		else
			ktap_test_fail "with tdp_migration=0 the TDP tables stay on node 0"
		fi
		ktap_test_fail "tdp_migration=$em: the guest's $MB MiB are intact"
		kill "$gpid" 2>/dev/null
		wait "$gpid"
		rm -rf "$share"
		return
	fi

	set -- $(tables_on 0)
	if [ "$2" -gt 0 ] && [ "$1" -eq "$2" ]; then
		ktap_test_pass "tdp_migration=$em: all $2 TDP tables on node 0 before the move"
	else
		ktap_print_msg "guest up: $(ls "$share"), VM: '$dir', tables on node 0: $*"
		ktap_test_fail "tdp_migration=$em: all TDP tables on node 0 before the move"
	fi

	for t in /proc/"$qpid"/task/*; do
		taskset -p -c "$(cat /sys/devices/system/node/node1/cpulist)" "${t##*/}" > /dev/null
	done
	migratepages "$qpid" 0 1
	s=0
	while [ $s -lt $FOLLOW ]; do
		set -- $(tables_on 1)
		[ "$2" -gt 0 ] && [ "$1" -eq "$2" ] && break
		sleep 1
		s=$((s + 1))
	done
	set -- $(tables_on 1)
	if [ "$em" = 1 ]; then
		stats=$(grep -E '^(level|roots_migrated|max_lock)' "$dir/tdp_migrate" | tr '\n' ' ')
		ktap_print_msg "$1 of $2 TDP tables on node 1 after $s s; $stats"
		if [ "$2" -gt 0 ] && [ $(( $1 * 100 )) -ge $(( $2 * 99 )) ]; then
			ktap_test_pass "$follows"
		else
			ktap_test_fail "$follows"
		fi
		# Passes go on for a while (tdp_migration_linger): the idle guest must not fault.
		# The first touch of a page since migratepages moved it faults whatever the
		# tables do, and the guest's periodic work (writeback every 5 s, say) touches
		# some of its pages only now and then: 10 s for that first.
		f0=$(cat "$dir/pf_fixed")
		sleep 10
		f1=$(cat "$dir/pf_fixed")
		p1=$(awk '/^passes/ { print $2 }' "$dir/tdp_migrate")
		sleep 5
		f2=$(cat "$dir/pf_fixed")
		p2=$(awk '/^passes/ { print $2 }' "$dir/tdp_migrate")
		ktap_print_msg "$((f1 - f0)) guest page faults in 10 s after the move"
		ktap_print_msg "then $((p2 - p1)) passes, $((f2 - f1)) guest page faults in 5 s"
		if [ $((p2 - p1)) -ge 5 ] && [ $((f2 - f1)) -lt 64 ]; then
			ktap_test_pass "no refaults while the tables are rescanned"
		else
			ktap_test_fail "no refaults while the tables are rescanned"
		fi
	else
		ktap_print_msg "$1 of $2 TDP tables on node 1 after $s s"
		if [ "$1" -eq 0 ]; then
			ktap_test_pass "with tdp_migration=0 the TDP tables stay on node 0"
		else
			ktap_test_fail "with tdp_migration=0 the TDP tables stay on node 0"
		fi
	fi

	touch "$share/done"
	wait $gpid
	rc=$?
	if [ $rc -eq 0 ]; then
		ktap_test_pass "tdp_migration=$em: the guest's $MB MiB are intact"
	else
		ktap_print_msg "guest exit $rc: $(tail -n 3 "$share/console.log" 2>/dev/null)"
		ktap_test_fail "tdp_migration=$em: the guest's $MB MiB are intact"
	fi
	rm -rf "$share"
}

run_case 1
FOLLOW=10
run_case 0
ktap_finished
