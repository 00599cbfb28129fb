#!/usr/bin/env bash
# make deb: build Debian packages of the patched kernel for a real server with the kernel's own
# bindeb-pkg. The configuration starts from the running kernel's (or KCONFIG=path), with the
# vMitosis options turned on; the packages land in out/deb/.
. "$(dirname "$0")/lib.sh"

"$TOP/workbench/deps.sh" debhelper   # bindeb-pkg checks debhelper-compat
src=${KCONFIG:-/boot/config-$(uname -r)}
[ -f "$src" ] || die "no kernel configuration to start from: set KCONFIG=/path/to/.config"
O=$BUILD/obj-deb
mkdir -p "$O" "$OUT/deb"
cp "$src" "$O/.config"
kmake() { make -C "$TREE" O="$O" ARCH=x86_64 CC="ccache gcc" -j"${JOBS:-$(nproc)}" "$@"; }
"$TREE/scripts/config" --file "$O/.config" -e NUMA -e NUMA_BALANCING -e KVM -e VMITOSIS \
	-d SYSTEM_TRUSTED_KEYS -d SYSTEM_REVOCATION_KEYS -d DEBUG_INFO_BTF
kmake olddefconfig
kmake LOCALVERSION=-vmitosis KDEB_PKGVERSION="$(base_version | sed 's/-.*//')-vmitosis1" bindeb-pkg
mv "$BUILD"/*.deb "$OUT/deb/" 2>/dev/null || true
say "packages: $(ls "$OUT/deb")"
