#!/usr/bin/env bash
# make run: boot the emulated NUMA server, start a guest in it (NUMA-visible, then
# NUMA-oblivious), and show where the page tables of the host's KVM and of a guest process
# live, node by node, as the running kernels count them. Also written to out/run.txt.
. "$(dirname "$0")/lib.sh"

mkdir -p "$OUT"
NODES=${NODES:-4}
say "booting the emulated ${NODES}-socket server (QEMU TCG, -cpu max, SRAT/SLIT)"
start=$(date +%s)
share=$BUILD/run-share
rm -rf "$share"
set +e
SHARE=$share BOOT_TIME=1 CMD="vmitosis-pt-placement ${RUN_ARGS:-}" "$TOP/workbench/vm.sh" 2>&1 |
	tee "$OUT/run.txt"
rc=${PIPESTATUS[0]}
set -e

# The two-dimensional walk of every page of the guest process, replayed from the dumps taken
# while it held its memory: per host socket, how many gPT and ePT accesses are local.
for d in "$share"/walks/*/; do
	[ -f "$d/gpt.dump" ] || continue
	{
		echo
		echo "== 2D page walks of the guest process, NUMA-$(basename "$d") guest (tools/vmitosis/walk_locality.py)"
		/usr/bin/python3 "$TREE/tools/vmitosis/walk_locality.py" --gpt "$d/gpt.dump" \
			--ept "$d/ept.dump" --sockets "$NODES" | sed 's/^/  /'
	} | tee -a "$OUT/run.txt"
done
if [ -d "$share/walks" ]; then
	/usr/bin/python3 "$TOP/workbench/report.py" "$share/walks" "$NODES" "$OUT" \
		"$TREE/tools/vmitosis" && say "report: out/report.md, out/report.json, out/report.png"
fi
say "done in $(( $(date +%s) - start )) s; written to out/run.txt"
exit "$rc"
