#!/usr/bin/env bash
# Boot the emulated NUMA host (L1) under QEMU TCG and run CMD in it; exit with CMD's status.
# Without CMD: an interactive shell on the serial console (exit it to power off).
#
#   NODES=4        NUMA nodes (sockets), each with its own CPUs and memory
#   CPUS=1         CPUs per node
#   MEM=4G         memory in all, split evenly over the nodes
#   DIST=21        SLIT distance between two nodes (local is 10)
#   APPEND=        extra kernel command line
#   CMD=           command to run (a shell command line)
#   SHARE=         host directory shared with L1 as /share (default: a fresh one, removed)
#   TIMEOUT=0      kill the emulated host after so many seconds (exit 124)
#   BOOT_TIME=1    print the boot time of L1 on stderr
#   HANG=300       stop L1 when its init's heartbeat (every 10 s) is older than so many seconds;
#                  it ends like an L1 that died (exit 125)
#   VARIANT=       debug: boot the debug kernel (make kernel-debug) as L1 and as its guests
#   TCG_THREAD=multi  TCG's vCPU threads: multi (one host thread per vCPU) or single (one for
#                  all, round robin), to tell emulation races apart from the rest (make soak)
#   TB_SIZE=       TCG's translation buffer in MiB (QEMU's default: 1024); a small one makes
#                  QEMU flush its translated code often, which kicks every vCPU (README: Known)
#   L1LOG=build/l1 where L1's logs go: L1LOG-console.log (its kernel console, shown when it
#                  dies), -qemu.log (QEMU's CPU resets), -jit.log, -hang-registers.log and
#                  -death-registers.log; two emulated hosts at once need two (make test does)
. "$(dirname "$0")/lib.sh"

NODES=${NODES:-4} CPUS=${CPUS:-1} MEM=${MEM:-4G} DIST=${DIST:-21}
APPEND=${APPEND:-} CMD=${CMD:-} TIMEOUT=${TIMEOUT:-0} BOOT_TIME=${BOOT_TIME:-0} HANG=${HANG:-300}
TCG_THREAD=${TCG_THREAD:-multi}
case $TCG_THREAD in single|multi) ;; *) die "TCG_THREAD=$TCG_THREAD: single or multi";; esac
TB_SIZE=${TB_SIZE:-}
[ -z "$TB_SIZE" ] || [[ $TB_SIZE =~ ^[1-9][0-9]*$ ]] || die "TB_SIZE=$TB_SIZE: MiB, a positive number"

case $MEM in *[Gg]) memmb=$(( ${MEM%[Gg]} * 1024 ));; *[Mm]) memmb=${MEM%[Mm]};; *) die "MEM=$MEM: use e.g. 4G or 3072M";; esac
[[ $NODES =~ ^[1-9][0-9]*$ && $CPUS =~ ^[1-9][0-9]*$ ]] || die "NODES and CPUS must be positive integers"
nodemb=$(( memmb / NODES ))
[ $nodemb -ge 256 ] || die "MEM=$MEM leaves less than 256M per node"

case ${VARIANT:-} in
"")    KOBJ=$OBJ initrd=$BUILD/initramfs-l1.cpio ;;
debug) KOBJ=$OBJ_DEBUG initrd=$BUILD/initramfs-l1-debug.cpio ;;
*)     die "VARIANT=$VARIANT: only debug is known" ;;
esac
for f in "$KOBJ/arch/x86/boot/bzImage" "$initrd"; do
	[ -f "$f" ] || die "$f missing: run make image${VARIANT:+-$VARIANT} (or make vm, which does)"
done

if [ -n "${SHARE:-}" ]; then
	share=$SHARE; mkdir -p "$share"
else
	share=$(mktemp -d "$BUILD/vmshare.XXXXXX")
	trap 'rm -rf "$share"' EXIT
fi
rm -f "$share/cmd" "$share/rc" "$share/booted" "$share/heartbeat"

# Virtual GIF: with QEMU 7.2's TCG emulation of it, L1 crashed (RIP 0 after HLT or
# kvm_vcpu_block, corrupted stack) in 2 of 2 full test runs while nested guests booted, so L1
# boots with kvm_amd.vgif=0 there (KVM then emulates GIF itself, as on CPUs without vGIF). With
# QEMU 10.0 it is the other way round (make soak, 2026-12-03; README: Known): vgif=0 lost L1 4
# times in 30 nested boots, vgif=1 none in 30, and boots faster; KVM's default stays.
# A QEMU unpacked outside /usr (make qemu-7.2) loads its modules (TCG among them) from its tree.
qroot=$(dirname "$(dirname "$(readlink -f "$(command -v "$QEMU")")")")
[ "$qroot" = /usr ] || [ ! -d "$qroot/lib/x86_64-linux-gnu/qemu" ] ||
	export QEMU_MODULE_DIR=$qroot/lib/x86_64-linux-gnu/qemu
qemu_major=$("$QEMU" --version | sed -n '1s/.*version \([0-9]*\)\..*/\1/p')
vgif=; [ "${qemu_major:-0}" -ge 10 ] || vgif=kvm_amd.vgif=0
ncpu=$(( NODES * CPUS ))
args=(-accel "tcg,thread=$TCG_THREAD${TB_SIZE:+,tb-size=$TB_SIZE}" -cpu max -nodefaults -no-reboot -display none
      -smp "$ncpu,sockets=$NODES,cores=$CPUS,threads=1" -m "$(( nodemb * NODES ))M"
      -kernel "$KOBJ/arch/x86/boot/bzImage" -initrd "$initrd"
      -append "console=ttyS0 loglevel=7 log_buf_len=16M panic=-1 vmitosis.level=1 $vgif $APPEND"
      -virtfs "local,path=$share,mount_tag=vmshare,security_model=none,id=vmshare")
for ((i = 0; i < NODES; i++)); do
	args+=(-object "memory-backend-ram,id=m$i,size=${nodemb}M"
	       -numa "node,nodeid=$i,cpus=$(( i * CPUS ))-$(( i * CPUS + CPUS - 1 )),memdev=m$i")
done
for ((i = 0; i < NODES; i++)); do
	for ((j = 0; j < NODES; j++)); do
		[ $i -ne $j ] && args+=(-numa "dist,src=$i,dst=$j,val=$DIST")
	done
done

if [ -z "$CMD" ]; then
	exec "$QEMU" "${args[@]}" -serial mon:stdio
fi

printf '%s\n' "$CMD" > "$share/cmd"
# ttyS0 (the kernel console) goes to a log, ttyS1 (CMD's output) to stdout. QEMU logs CPU
# resets (a triple fault pauses L1, see below) to another.
console=$L1LOG-console.log
# A reset or a power-off pauses L1 instead of ending QEMU, with its registers as they were: a
# triple fault (a silent death, README: Known) is dumped before QEMU is told to quit.
a=()
for w in "${args[@]}"; do
	if [ "$w" = -no-reboot ]; then a+=(-action reboot=shutdown,shutdown=pause); else a+=("$w"); fi
done
args=("${a[@]}")
args+=(-d cpu_reset -D "$L1LOG-qemu.log" -pidfile "$share/qemu.pid"
       -monitor "unix:$share/monitor.sock,server=on,wait=off")
rm -f "$share/qemu.pid" "$share/monitor.sock" "$L1LOG-hang-registers.log" \
	"$L1LOG-death-registers.log"
# TCG's flushes of its translated code, sampled every 10 s: each one kicks every vCPU, the
# event that makes QEMU deliver an interrupt it injected into L2 a second time (README: Known).
jitlog=$L1LOG-jit.log
: > "$jitlog"
# Where each vCPU of an L1 that hangs is, before it is stopped.
cpu_dump() {
	say "its vCPUs (registers in $L1LOG-hang-registers.log):"
	/usr/bin/python3 "$TOP/workbench/cpu-dump.py" "$share/monitor.sock" "$KOBJ/System.map" \
		"$L1LOG-hang-registers.log" >&2 || true
}
: > "$console"
t0=$(date +%s.%N)
tmo=(); [ "$TIMEOUT" -gt 0 ] && tmo=(timeout "$TIMEOUT")
{ st=0; "${tmo[@]}" "$QEMU" "${args[@]}" -serial "file:$console" -serial stdio \
	< /dev/null || st=$?; echo "$st" > "$share/qemu.status"; } 2>&1 | sed -u 's/\r$//' &
qpid=$!
booted= panicked= hung= tick=0
while kill -0 $qpid 2>/dev/null; do
	tick=$((tick + 1))
	if [ $((tick % 100)) = 0 ] && [ -S "$share/monitor.sock" ]; then
		j=$(/usr/bin/python3 "$TOP/workbench/cpu-dump.py" --jit "$share/monitor.sock" 2>/dev/null) &&
			echo "$(( $(date +%s) - ${t0%.*} )) s: $j" >> "$jitlog"
	fi
	# A panicking L1 may hang instead of resetting (nested SVM under TCG, see README): give it
	# 20 s to reset, then stop it; it ends like any L1 that died without an exit status.
	# (Checked once a second: the console of a debug kernel grows to megabytes.)
	if [ $((tick % 10)) = 5 ] && grep -q "Kernel panic - not syncing" "$console" 2>/dev/null; then
		[ -n "$panicked" ] || panicked=$(date +%s)
		if [ -z "$hung" ] && [ $(( $(date +%s) - panicked )) -ge 20 ] && [ -s "$share/qemu.pid" ]; then
			hung=1
			say "the emulated host panicked and hangs: stopping it"
			cpu_dump
			kill "$(cat "$share/qemu.pid")" 2>/dev/null || true
		fi
	fi
	# A silent hang (no panic, QEMU busy) was seen once: the heartbeat tells.
	if [ -n "$booted" ] && [ -z "$hung" ] && [ -f "$share/heartbeat" ] &&
	   [ $(( $(date +%s) - $(stat -c %Y "$share/heartbeat") )) -ge "$HANG" ]; then
		hung=1
		say "no heartbeat from the emulated host for $HANG s: it hangs; stopping it"
		cpu_dump
		kill "$(cat "$share/qemu.pid")" 2>/dev/null || true
	fi
	# Paused by a power-off (the exit status is there) or by a reset: a triple fault.
	if [ $((tick % 20)) = 0 ] && [ -S "$share/monitor.sock" ] &&
	   st=$(/usr/bin/python3 "$TOP/workbench/cpu-dump.py" --status "$share/monitor.sock" 2>/dev/null) &&
	   [ "$st" = "paused (shutdown)" ]; then
		if [ ! -f "$share/rc" ]; then
			say "the emulated host reset itself (QEMU: $(grep -c 'Triple fault' "$L1LOG-qemu.log" 2>/dev/null) triple faults); its vCPUs at the fault (registers in $L1LOG-death-registers.log):"
			/usr/bin/python3 "$TOP/workbench/cpu-dump.py" "$share/monitor.sock" "$KOBJ/System.map" \
				"$L1LOG-death-registers.log" >&2 || true
		fi
		/usr/bin/python3 "$TOP/workbench/cpu-dump.py" --quit "$share/monitor.sock" 2>/dev/null || true
		sleep 1
	fi
	if [ -z "$booted" ] && [ -s "$share/booted" ]; then
		booted=$(date +%s.%N)
		[ "$BOOT_TIME" = 1 ] && say "L1 booted in $(echo "$booted - $t0" | bc | xargs printf '%.1f') s (kernel up $(cat "$share/booted") s at init)"
	fi
	sleep 0.1
done
wait $qpid || true
[ "$(cat "$share/qemu.status" 2>/dev/null)" = 124 ] && { say "emulated host killed after TIMEOUT=$TIMEOUT s"; exit 124; }
if [ ! -f "$share/rc" ]; then
	say "the emulated host stopped without an exit status (QEMU status $(cat "$share/qemu.status" 2>/dev/null)); the end of its console ($console):"
	tail -n 40 "$console" >&2
	resets=$(grep -c "CPU Reset" "$L1LOG-qemu.log" 2>/dev/null || true)
	say "QEMU logged $resets CPU resets ($L1LOG-qemu.log; one per CPU at power-on)"
	exit 125
fi
exit "$(cat "$share/rc")"
