#!/usr/bin/env bash
# Configure (tinyconfig + workbench/kernel.config) and build the kernel out of tree in build/obj.
# VARIANT=debug: the debug kernel, with workbench/kernel-debug.config on top, in build/obj-debug.
. "$(dirname "$0")/lib.sh"

SRC=${SRC:-$TREE}
JOBS=${JOBS:-$(nproc)}
case ${VARIANT:-} in
"")    O=${O:-$OBJ}; FRAGS=("$TOP/workbench/kernel.config") ;;
debug) O=${O:-$OBJ_DEBUG}
       FRAGS=("$TOP/workbench/kernel.config" "$TOP/workbench/kernel-debug.config") ;;
*)     die "VARIANT=$VARIANT: only debug is known" ;;
esac
mkdir -p "$O"

kmake() { make -s -C "$SRC" O="$O" ARCH=x86_64 CC="ccache gcc" HOSTCC="ccache gcc" -j"$JOBS" "$@"; }

# Reconfigure when the fragment or any Kconfig file changed.
cfgstamp=$O/.vmitosis-config
want=$({ cat "${FRAGS[@]}"; find "$SRC" -name 'Kconfig*' -not -path '*/.git/*' | sort | xargs cat; } |
	sha1sum | cut -d' ' -f1)
if [ ! -f "$O/.config" ] || [ "$(cat "$cfgstamp" 2>/dev/null)" != "$want" ]; then
	say "configuring: tinyconfig + ${FRAGS[*]#$TOP/}"
	kmake tinyconfig >/dev/null
	"$SRC/scripts/kconfig/merge_config.sh" -m -O "$O" "$O/.config" "${FRAGS[@]}" >/dev/null
	kmake olddefconfig >/dev/null
	# Every option of the fragment must have survived (a typo or a missing dependency otherwise).
	bad=$(cat "${FRAGS[@]}" | grep -E '^(CONFIG_[A-Z0-9_]+=|# CONFIG_[A-Z0-9_]+ is not set)' | while read -r l; do
		case $l in
		"# "*) sym=${l#\# }; sym=${sym%% *}
		       ! grep -q "^$sym=" "$O/.config" || echo "$l" ;;
		*)     grep -qxF "$l" "$O/.config" || echo "$l" ;;
		esac
	done)
	# (Not checked while bisecting a series whose early patches lack some options.)
	[ -z "$bad" ] || [ "${CHECK_FRAGMENT:-1}" = 0 ] || die "kernel.config options that did not survive olddefconfig:
$bad"
	echo "$want" > "$cfgstamp"
fi

say "building the kernel in ${O#$TOP/} ($JOBS jobs, ccache)"
start=$(date +%s)
kmake bzImage
say "kernel built in $(( $(date +%s) - start )) s: ${O#$TOP/}/arch/x86/boot/bzImage"
