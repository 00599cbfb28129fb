#!/usr/bin/env bash
# make run: boot the emulated NUMA server, start a guest in it (NUMA-visible, then
# NUMA-oblivious), and show where the page tables of the host's KVM and of a guest process
# live, node by node, as the running kernels count them. Also written to out/run.txt.
. "$(dirname "$0")/lib.sh"

mkdir -p "$OUT"
NODES=${NODES:-4}
say "booting the emulated ${NODES}-socket server (QEMU TCG, -cpu max, SRAT/SLIT)"
start=$(date +%s)
set +e
BOOT_TIME=1 CMD="vmitosis-pt-placement ${RUN_ARGS:-}" "$TOP/workbench/vm.sh" 2>&1 | tee "$OUT/run.txt"
rc=${PIPESTATUS[0]}
set -e
say "done in $(( $(date +%s) - start )) s; written to out/run.txt"
exit "$rc"
