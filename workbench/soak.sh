#!/usr/bin/env bash
# make soak: measure how often the emulated host (L1) dies or hangs while nested guests boot.
# L1 boots nested guests back to back (vmitosis-guest, NUMA-visible and -oblivious in turn, each
# running a short command), BOOTS of them in all; an L1 that dies or hangs is booted again for
# the guests still missing, and counted. The results go to out/soak.json and one line of
# out/soak.txt per soak; out/soak-boots.txt has a line per nested boot, out/soak-vm.log the
# output of every L1 boot, out/soak-diedN*.log the evidence of each dead L1:
#
#   BOOTS=30       nested guest boots in all
#   APPEND=        L1 kernel command line (e.g. kvm_amd.vls=0); vm.sh's knobs apply
#                  (TCG_THREAD=single: one TCG thread for all of L1's vCPUs)
#   GUEST_CMD=true what each guest runs (a shell command line)
#   LABEL=         a name for this soak in the results (default: QEMU version and APPEND)
. "$(dirname "$0")/lib.sh"

BOOTS=${BOOTS:-30}
GUEST_CMD=${GUEST_CMD:-true}
[[ $BOOTS =~ ^[1-9][0-9]*$ ]] || die "BOOTS=$BOOTS: a positive number"
mkdir -p "$OUT"
qver=$("$QEMU" --version | sed -n '1s/.*version \([^ ]*\).*/\1/p')
tcg=; [ "${TCG_THREAD:-multi}" = multi ] || tcg=" tcg,thread=$TCG_THREAD"
[ -z "${TB_SIZE:-}" ] || tcg="$tcg tb-size=$TB_SIZE"
label=${LABEL:-"qemu $qver$tcg${APPEND:+ $APPEND}"}
share=$BUILD/soak-share
rm -rf "$share"
mkdir -p "$share"
: > "$share/boots"

# In L1: the guests still missing, each result appended to the share at once, so that it
# survives an L1 that dies in the next one.
cat > "$share/soak-l1.sh" <<EOF
p=/sys/module/kvm_amd/parameters
echo "vgif=\$(cat \$p/vgif) vls=\$(cat \$p/vls) npt=\$(cat \$p/npt)" > /share/kvm_amd
i=\$(wc -l < /share/boots)
while [ \$i -lt $BOOTS ]; do
	m=visible; [ \$((i % 2)) = 1 ] && m=oblivious
	t0=\$(cut -d' ' -f1 /proc/uptime)
	vmitosis-guest --numa=\$m --timeout 300 -- sh -c '$GUEST_CMD' > /tmp/g.out 2>&1
	rc=\$?
	echo "\$i \$m \$rc \$(awk -v a=\$t0 -v b=\$(cut -d' ' -f1 /proc/uptime) 'BEGIN { printf "%.1f", b - a }')" >> /share/boots
	sync
	[ \$rc = 0 ] || sed 's/^/# /' /tmp/g.out | tail -n 20
	i=\$((i + 1))
done
EOF

start=$(date +%s) l1boots=0 deaths=0 hangs=0
while [ "$(wc -l < "$share/boots")" -lt "$BOOTS" ] && [ $l1boots -lt $(( BOOTS + 5 )) ]; do
	l1boots=$((l1boots + 1))
	say "soak ($label): L1 boot $l1boots, $(wc -l < "$share/boots")/$BOOTS guests so far"
	set +e
	SHARE=$share TIMEOUT=$(( BOOTS * 300 )) CMD="sh /share/soak-l1.sh" "$TOP/workbench/vm.sh" \
		> "$share/vm.out" 2>&1
	rc=$?
	set -e
	{ echo "=== $label: L1 boot $l1boots, vm.sh status $rc, last JIT sample: $(tail -n 1 "$L1LOG-jit.log")"
	  cat "$share/vm.out"; } >> "$OUT/soak-vm.log"
	flushes=$(( ${flushes:-0} + $(tail -n 1 "$L1LOG-jit.log" | sed -n 's/.*tb_flushes \([0-9]*\).*/\1/p' | grep . || echo 0) ))
	[ "$rc" -eq 0 ] && continue
	# 125 is vm.sh's word for an L1 that died or hung; anything else (124: TIMEOUT, a script
	# that failed) is no measurement of L1 and stops the soak.
	[ "$rc" -eq 125 ] || die "vm.sh exited $rc, not an L1 death: see $share/vm.out"
	n=$(wc -l < "$share/boots")
	# The guest that was booting when L1 died counts as one boot, failed with L1.
	echo "$n died-with-l1 125 0" >> "$share/boots"
	if grep -q "no heartbeat" "$share/vm.out"; then hangs=$((hangs + 1)); else deaths=$((deaths + 1)); fi
	cp "$L1LOG-console.log" "$OUT/soak-died$((deaths + hangs)).log"
	cp "$L1LOG-hang-registers.log" "$OUT/soak-died$((deaths + hangs))-registers.log" 2>/dev/null || true
	# QEMU's CPU-reset log: the register state of a triple fault, which prints nothing.
	cp "$L1LOG-qemu.log" "$OUT/soak-died$((deaths + hangs))-qemu.log" 2>/dev/null || true
	cp "$share/vm.out" "$OUT/soak-died$((deaths + hangs))-vm.log"
	cp "$L1LOG-jit.log" "$OUT/soak-died$((deaths + hangs))-jit.log"
	say "L1 died (vm.sh status $rc) in guest boot $n: $(grep -m1 -E 'BUG:|Oops|general protection|Kernel panic|RIP:' \
		"$L1LOG-console.log" || echo "no panic text")"
done
total=$(wc -l < "$share/boots")
# One line per nested boot: number, guest mode, vmitosis-guest's status, seconds.
sed "s|^|$label: |" "$share/boots" >> "$OUT/soak-boots.txt"
l2fail=$(awk '$3 != 0 && $2 != "died-with-l1"' "$share/boots" | wc -l)
secs=$(( $(date +%s) - start ))
kvm=$(cat "$share/kvm_amd" 2>/dev/null || echo "kvm_amd unread")
line="$label ($kvm in L1): $total nested boots, L1 boots $l1boots, L1 deaths $deaths, L1 hangs $hangs, guests failed (L1 alive) $l2fail, TCG flushes ${flushes:-0} (sampled), $secs s"
say "$line"
echo "$line" >> "$OUT/soak.txt"
/usr/bin/python3 - "$OUT/soak.json" "$label" "$qver" "${APPEND:-}" "$total" "$l1boots" "$deaths" \
	"$hangs" "$l2fail" "$secs" "$kvm" <<'EOF'
import json, os, sys
path, label, qver, append = sys.argv[1:5]
total, l1boots, deaths, hangs, l2fail, secs = map(int, sys.argv[5:11])
kvm = sys.argv[11]
runs = json.load(open(path))["soaks"] if os.path.exists(path) else []
runs.append(dict(label=label, qemu=qver, append=append, nested_boots=total, l1_boots=l1boots,
                 l1_deaths=deaths, l1_hangs=hangs, guests_failed=l2fail, seconds=secs,
                 kvm_amd=kvm))
json.dump({"soaks": runs}, open(path, "w"), indent=1)
EOF
