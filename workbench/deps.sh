#!/usr/bin/env bash
# Install what the workbench needs from Debian's packages (Debian 12). Idempotent and quiet when
# everything is there already.
. "$(dirname "$0")/lib.sh"

PKGS="build-essential flex bison bc libelf-dev libssl-dev cpio ccache rsync xz-utils kmod
      python3 python3-ply python3-git perl git qemu-system-x86 busybox-static dpkg-dev fakeroot gnuplot-nox
      numactl memcached libmemcached-tools"

# Extra packages a target needs may be given as arguments (make deb: debhelper).
missing=()
for p in $PKGS "$@"; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

say "installing Debian packages: ${missing[*]}"
SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
