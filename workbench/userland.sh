#!/usr/bin/env bash
# Build the user-space payload of the test bed into build/payload, statically linked:
#   selftests/vmitosis/   the project's kselftests (tools/testing/selftests/vmitosis)
#   selftests/kselftest/  the kselftest shell helpers
#   selftests/kvm/        the upstream KVM selftests named in workbench/kvm-selftests.list
#   selftests/mm/         the upstream mm selftests named in workbench/mm-selftests.list
#   bin/                  the helpers of the test bed
. "$(dirname "$0")/lib.sh"

ST=$TREE/tools/testing/selftests
P=$BUILD/payload
hdr=$OBJ/usr
JOBS=${JOBS:-$(nproc)}

make -s -C "$TREE" O="$OBJ" ARCH=x86_64 headers_install INSTALL_HDR_PATH="$hdr" >/dev/null

rm -rf "$P.new"
mkdir -p "$P.new/selftests" "$P.new/bin"
sm() { make -s -j"$JOBS" CC="ccache gcc" KHDR_INCLUDES="-isystem $hdr/include" "$@"; }

mkdir -p "$BUILD/selftests/vmitosis" "$BUILD/selftests/kvm"
sm -C "$ST/vmitosis" OUTPUT="$BUILD/selftests/vmitosis" LDFLAGS=-static
sm -C "$ST/vmitosis" OUTPUT="$BUILD/selftests/vmitosis" LDFLAGS=-static \
	INSTALL_PATH="$P.new/selftests/vmitosis" install >/dev/null
cp -a "$ST/kselftest" "$P.new/selftests/kselftest"
for t in vmitosis_mem vmitosis_gups; do ln -s "../selftests/vmitosis/$t" "$P.new/bin/$t"; done

sm -C "$ST/kvm" OUTPUT="$BUILD/selftests/kvm" INSTALL_HDR_PATH="$hdr" EXTRA_CFLAGS=-static
mkdir -p "$P.new/selftests/kvm"
grep -v '^[[:space:]]*\(#\|$\)' "$TOP/workbench/kvm-selftests.list" | while read -r t _; do
	[ -x "$BUILD/selftests/kvm/$t" ] || die "KVM selftest $t was not built"
	mkdir -p "$P.new/selftests/kvm/$(dirname "$t")"
	cp "$BUILD/selftests/kvm/$t" "$P.new/selftests/kvm/$t"
done
cp "$TOP/workbench/kvm-selftests.list" "$P.new/selftests/kvm/list"

mkdir -p "$BUILD/selftests/mm" "$P.new/selftests/mm"
mm_tests=$(grep -v '^[[:space:]]*\(#\|$\)' "$TOP/workbench/mm-selftests.list" | cut -d' ' -f1 | sort -u)
# migration and ksm_tests link libnuma (the Makefile adds -lnuma): statically, Debian's libnuma.a.
[ -f /usr/include/numa.h ] && [ -f /usr/lib/x86_64-linux-gnu/libnuma.a ] ||
	die "libnuma-dev is missing (numa.h, libnuma.a): run make deps"
# ARCH=x86_64: only then does the Makefile define protection_keys_64.
# shellcheck disable=SC2046
sm -C "$ST/mm" ARCH=x86_64 OUTPUT="$BUILD/selftests/mm" EXTRA_CFLAGS=-static \
	$(for t in $mm_tests; do echo "$BUILD/selftests/mm/$t"; done)
for t in $mm_tests; do
	[ -x "$BUILD/selftests/mm/$t" ] || die "mm selftest $t was not built"
	# (grep without -q: with pipefail, its early exit would hide a match behind SIGPIPE)
	if readelf -l "$BUILD/selftests/mm/$t" | grep 'program interpreter' > /dev/null; then
		die "mm selftest $t is not linked statically"
	fi
	cp "$BUILD/selftests/mm/$t" "$P.new/selftests/mm/$t"
done
cp "$TOP/workbench/mm-selftests.list" "$P.new/selftests/mm/list"

rm -rf "$P"
mv "$P.new" "$P"
say "payload: $(du -sm "$P" | cut -f1) MiB in ${P#$TOP/}"
