#!/usr/bin/env bash
# Build the two initramfs images from build/payload (the project's test binaries and tools):
#   build/initramfs-l2.cpio  busybox, init, payload, numactl/migratepages,
#                            memcached and memaslap                            (the nested guest)
#   build/initramfs-l1.cpio  the same + QEMU with its libraries and firmware,
#                            the kernel and initramfs-l2.cpio for the guest    (the emulated host)
#   build/initramfs-l1-debug.cpio  the same with the debug kernel (make kernel-debug) for L2;
#                            built when that kernel is there
# Debian's binaries come with the shared libraries they load.
# Uncompressed cpio: it is built and unpacked faster than it would be compressed and loaded.
. "$(dirname "$0")/lib.sh"

KIMG=$OBJ/arch/x86/boot/bzImage
PAYLOAD=$BUILD/payload
[ -f "$KIMG" ] || die "no kernel image: run make kernel"
[ -d "$PAYLOAD" ] || die "no payload: run make userland"

stage_common() {
	local r=$1
	rm -rf "$r"; mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,share,opt/vmitosis}
	cp /bin/busybox "$r/bin/busybox"
	cp "$TOP/workbench/rootfs/init" "$r/init"
	mkdir -p "$r/opt/vmitosis/bin"
	cp -a "$TOP/workbench/rootfs/bin/." "$r/opt/vmitosis/bin/"
	cp -a "$PAYLOAD/." "$r/opt/vmitosis/"
	echo "root:x:0:0:root:/root:/bin/sh" > "$r/etc/passwd"
	echo "root:x:0:" > "$r/etc/group"
}

# copy_bin ROOT PROGRAM...: Debian programs with the libraries they need, at the same paths.
copy_bin() {
	local r=$1 p lib
	shift
	for p in "$@"; do
		p=$(command -v "$p") || die "$p missing (make deps)"
		mkdir -p "$r/usr/bin"
		cp -L "$p" "$r/usr/bin/"
		ldd "$p" | awk '/=>/ { print $3 } /^\t\/lib/ { print $1 }' | while read -r lib; do
			[ -n "$lib" ] || continue
			mkdir -p "$r$(dirname "$lib")"
			cp -L "$lib" "$r$lib"
		done
	done
	mkdir -p "$r/lib64"
	[ -e "$r/lib64/ld-linux-x86-64.so.2" ] || cp -L /lib64/ld-linux-x86-64.so.2 "$r/lib64/"
}
GUEST_BINS="numactl migratepages memcached memcaslap memcstat"

mkcpio() { (cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$2.tmp" && mv "$2.tmp" "$2"; }

# --- L2
r2=$BUILD/rootfs-l2
stage_common "$r2"
rm -rf "$r2/opt/vmitosis/selftests/kvm"          # upstream KVM selftests run in L1 only
copy_bin "$r2" $GUEST_BINS
mkcpio "$r2" "$BUILD/initramfs-l2.cpio"

# --- L1
r1=$BUILD/rootfs-l1
stage_common "$r1"
copy_bin "$r1" qemu-system-x86_64 $GUEST_BINS
mkdir -p "$r1/opt/vmitosis/qemu"
for f in bios-256k.bin linuxboot_dma.bin linuxboot.bin kvmvapic.bin multiboot_dma.bin; do
	for d in /usr/share/qemu /usr/share/seabios; do
		if [ -e "$d/$f" ]; then cp -L "$d/$f" "$r1/opt/vmitosis/qemu/"; break; fi
	done
	[ -e "$r1/opt/vmitosis/qemu/$f" ] || die "QEMU firmware $f not found"
done
cp "$KIMG" "$r1/opt/vmitosis/bzImage"
cp "$KIMG" "$r1/opt/vmitosis/bzImage-plain"
cp "$BUILD/initramfs-l2.cpio" "$r1/opt/vmitosis/initramfs-l2.cpio"
mkcpio "$r1" "$BUILD/initramfs-l1.cpio"
say "initramfs: L1 $(du -m "$BUILD/initramfs-l1.cpio" | cut -f1) MiB, L2 $(du -m "$BUILD/initramfs-l2.cpio" | cut -f1) MiB"

# --- L1 of the debug pass: the guests boot the debug kernel too (bzImage), and carry the plain
# one as well (vmitosis-guest --kernel plain|debug)
rm -f "$BUILD/initramfs-l1-debug.cpio"
if [ -f "$OBJ_DEBUG/arch/x86/boot/bzImage" ]; then
	cp "$OBJ_DEBUG/arch/x86/boot/bzImage" "$r1/opt/vmitosis/bzImage"
	cp "$OBJ_DEBUG/arch/x86/boot/bzImage" "$r1/opt/vmitosis/bzImage-debug"
	cp "$KIMG" "$r1/opt/vmitosis/bzImage-plain"
	mkcpio "$r1" "$BUILD/initramfs-l1-debug.cpio"
	say "initramfs: debug L1 $(du -m "$BUILD/initramfs-l1-debug.cpio" | cut -f1) MiB"
fi
