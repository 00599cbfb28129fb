#!/usr/bin/env bash
# make run: boot the emulated NUMA server and run the scenarios of vmitosis-pt-placement in it
# (thin-migrated and wide, in a NUMA-visible and a NUMA-oblivious guest, with GUPS 4K, GUPS THP
# and memcached; baseline, thin-migrated with gPT and ePT migration on, and wide and thin-migrated
# with ePT replication on). Each run's page-table dumps come back through the share; the 2D walks are
# replayed here with tools/vmitosis/walk_locality.py and summed up in out/report.{md,json,png}.
# The console output is also written to out/run.txt.
#
# RUNS selects runs (SCENARIO.GUEST.WORKLOAD[.CONFIG], see vmitosis-pt-placement); RUN_ARGS are passed to
# it (e.g. --size 128M). When the emulated host dies without an exit status (QEMU's nested SVM
# under TCG does, now and then: see README), it is booted again for the runs still missing.
. "$(dirname "$0")/lib.sh"

mkdir -p "$OUT"
NODES=${NODES:-4}
if [ -z "${RUNS:-}" ]; then
	RUNS=
	for sg in thin-migrated.visible thin-migrated.oblivious wide.visible wide.oblivious; do
		for w in gups-4k gups-thp memcached; do RUNS="$RUNS $sg.$w"; done
	done
	# The features, where they change something: thin-migrated.
	for g in visible oblivious; do
		for w in gups-4k memcached; do RUNS="$RUNS thin-migrated.$g.$w.ept-migration"; done
	done
	for c in gpt-migration gpt-migration+ept-migration; do
		for w in gups-4k memcached; do RUNS="$RUNS thin-migrated.visible.$w.$c"; done
		RUNS="$RUNS thin-migrated.oblivious.gups-4k.$c"
	done
	# ePT replication, where one ePT cannot be local: wide runs, and the thin-migrated
	# visible guest whose ePT upper levels map every node.
	for g in visible oblivious; do
		for w in gups-4k memcached; do RUNS="$RUNS wide.$g.$w.ept-replication"; done
	done
	for w in gups-4k memcached; do
		RUNS="$RUNS thin-migrated.visible.$w.gpt-migration+ept-replication"
	done
fi
start=$(date +%s)
share=$BUILD/run-share
rm -rf "$share" "$OUT"/report.*
: > "$OUT/run.txt"
attempt=0 rc=0
while :; do
	todo=
	for r in $RUNS; do [ -f "$share/walks/$r/meta" ] || todo="$todo $r"; done
	[ -n "$todo" ] || break
	attempt=$((attempt + 1))
	if [ $attempt -gt 4 ]; then
		say "giving up after 4 boots of the emulated host; missing:$todo"
		rc=1
		break
	fi
	say "booting the emulated ${NODES}-socket server (QEMU TCG, -cpu max, SRAT/SLIT) for $(echo $todo | wc -w) runs, $(( $(date +%s) - start )) s so far"
	# A run takes 35-80 s; one that makes no progress for 15 minutes hangs in a way the
	# heartbeat of vm.sh does not see (L1's init alive, a nested guest stuck): boot again.
	( last=-1 since=$(date +%s)
	  while sleep 10; do
		n=$(find "$share/walks" -name meta 2>/dev/null | wc -l)
		if [ "$n" -ne "$last" ]; then
			last=$n since=$(date +%s)
		elif [ $(( $(date +%s) - since )) -ge 900 ] && [ -s "$share/qemu.pid" ]; then
			say "no run finished for 900 s: stopping the emulated host"
			kill "$(cat "$share/qemu.pid")" 2>/dev/null
			break
		fi
	  done ) &
	watchdog=$!
	set +e
	SHARE=$share BOOT_TIME=1 CMD="vmitosis-pt-placement --elapsed $(( $(date +%s) - start )) --runs '${todo# }' ${RUN_ARGS:-}" \
		"$TOP/workbench/vm.sh" 2>&1 | tee -a "$OUT/run.txt"
	rc=${PIPESTATUS[0]}
	kill "$watchdog" 2>/dev/null
	wait "$watchdog" 2>/dev/null
	set -e
	# Only a host that died gets another boot; a run that failed in the guest is a result.
	[ "$rc" -eq 125 ] || break
	cp "$L1LOG-console.log" "$OUT/run-died$attempt.log"
	cp "$L1LOG-hang-registers.log" "$OUT/run-died$attempt-registers.log" 2>/dev/null || true
	say "the emulated host died (console kept in out/run-died$attempt.log); booting it again"
done

# The two-dimensional walk of every page of each run's guest process, replayed from the dumps
# taken while it held its memory: per host socket, how many gPT and ePT accesses are local.
if [ -d "$share/walks" ]; then
	say "replaying the 2D page walks ($(( $(date +%s) - start )) s so far)"
	/usr/bin/python3 "$TOP/workbench/report.py" "$share/walks" "$NODES" "$OUT" \
		"$TREE/tools/vmitosis" | tee -a "$OUT/run.txt"
	say "report: out/report.md, out/report.json, out/report.png"
fi
say "done in $(( $(date +%s) - start )) s; written to out/run.txt"
exit "$rc"
