#!/usr/bin/env bash
# make qemu-7.2: Debian 12's own QEMU (7.2, from bookworm's main archive), unpacked into
# build/qemu-7.2 next to the installed one (10.0 from backports), to measure the emulated host
# with it (vm.sh points QEMU_MODULE_DIR at its modules): `make soak QEMU=build/qemu-7.2/usr/bin/qemu-system-x86_64` (README: Known). Its
# option ROMs are its own, SeaBIOS and iPXE the installed ones.
. "$(dirname "$0")/lib.sh"

dest=$BUILD/qemu-7.2
bin=$dest/usr/bin/qemu-system-x86_64
if [ -x "$bin" ] && [ -d "$dest/usr/lib/x86_64-linux-gnu/qemu" ]; then
	say "QEMU 7.2: $bin"; exit 0
fi
ver=$(apt-cache policy qemu-system-x86 | grep -o '1:7\.2[^ ]*' | head -n 1)
[ -n "$ver" ] || die "Debian's archive no longer serves qemu-system-x86 7.2 (apt-cache policy qemu-system-x86)"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
chmod 777 "$tmp"	# apt's download user writes there
# The emulator, its modules (TCG is one) from qemu-system-common, its option ROMs from
# qemu-system-data (same source version, without the binary rebuild's +bN).
(cd "$tmp" && apt-get download -q "qemu-system-x86=$ver" "qemu-system-common=$ver" \
	"qemu-system-data=${ver%+b[0-9]*}") >&2 ||
	die "could not download qemu-system-x86, -common and -data $ver"
rm -rf "$dest"; mkdir -p "$dest"
for d in "$tmp"/*.deb; do dpkg -x "$d" "$dest"; done
# It looks for its firmware next to itself: SeaBIOS and iPXE are the installed ones.
ln -s /usr/share/seabios "$dest/usr/share/seabios"
mkdir -p "$dest/usr/lib"; ln -s /usr/lib/ipxe "$dest/usr/lib/ipxe"
missing=$(ldd "$bin" | sed -n 's/^\t\([^ ]*\) => not found/\1/p')
[ -z "$missing" ] || die "QEMU $ver needs libraries not installed: $missing"
say "QEMU 7.2: $("$bin" --version | head -n 1) in $bin"
