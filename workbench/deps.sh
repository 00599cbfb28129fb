#!/usr/bin/env bash
# Install what the workbench needs from Debian's packages (Debian 12). Idempotent and quiet when
# everything is there already.
#
# QEMU comes from bookworm-backports, at the version pinned here (README: "Known" says why);
# only QEMU and the packages its version needs come from there, by an apt preference.
# QEMU_FROM=bookworm keeps Debian 12's own QEMU 7.2 instead (for comparisons, make soak).
. "$(dirname "$0")/lib.sh"

QEMU_BPO_VERSION="1:10.0.2+ds-2+deb13u1~bpo12+1"
QEMU_BPO_PKGS="qemu-system-x86 qemu-system-common qemu-system-data"
QEMU_BPO_DEPS="seabios"            # QEMU 10.0 needs a newer one than bookworm's
QEMU_FROM=${QEMU_FROM:-backports}

PKGS="build-essential flex bison bc libelf-dev libssl-dev cpio ccache rsync xz-utils kmod
      python3 python3-ply python3-git perl git qemu-system-x86 busybox-static dpkg-dev fakeroot gnuplot-nox
      numactl libnuma-dev memcached libmemcached-tools"

SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
installed() { dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null | sed -n 's/^install ok installed //p'; }

bpo_src=/etc/apt/sources.list.d/vmitosis-backports.sources
bpo_pref=/etc/apt/preferences.d/vmitosis-qemu
qemu_want=
if [ "$QEMU_FROM" = backports ]; then
	if [ ! -f $bpo_src ] || [ ! -f $bpo_pref ] || ! grep -qF "$QEMU_BPO_VERSION" $bpo_pref; then
		say "adding bookworm-backports for QEMU $QEMU_BPO_VERSION (nothing else comes from there)"
		$SUDO tee $bpo_src > /dev/null <<-EOF
		Types: deb
		URIs: http://deb.debian.org/debian
		Suites: bookworm-backports
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
		EOF
		# Backports stay below everything (100 is their default; said here so that it holds);
		# QEMU's packages at the pinned version and the few they need are taken from there.
		$SUDO tee $bpo_pref > /dev/null <<-EOF
		Package: *
		Pin: release n=bookworm-backports
		Pin-Priority: 100

		Package: $QEMU_BPO_PKGS
		Pin: version $QEMU_BPO_VERSION
		Pin-Priority: 1001

		Package: $QEMU_BPO_DEPS
		Pin: release n=bookworm-backports
		Pin-Priority: 990
		EOF
		$SUDO apt-get update -qq
	fi
	qemu_want=$QEMU_BPO_VERSION
else
	if [ -f $bpo_pref ]; then
		say "QEMU_FROM=$QEMU_FROM: dropping the backports preference; Debian 12's QEMU"
		$SUDO rm -f $bpo_pref $bpo_src
		$SUDO apt-get update -qq
	fi
	# apt does not downgrade by itself: name bookworm's version.
	qemu_want=$(apt-cache madison qemu-system-x86 | awk -F' [|] ' '$3 ~ / bookworm\/main / { print $2; exit }')
fi

missing=()
for p in $PKGS "$@"; do
	[ -n "$qemu_want" ] && [ "$p" = qemu-system-x86 ] && continue    # at its version, below
	[ -n "$(installed "$p")" ] || missing+=("$p")
done
if [ -n "$qemu_want" ] && [ "$(installed qemu-system-x86)" != "$qemu_want" ]; then
	# (madison's output is read whole: grep -q under pipefail would fail on apt-cache's SIGPIPE)
	served() { apt-cache madison qemu-system-x86 2>/dev/null | awk -F' [|] ' '{ print $2 }'; }
	pinned_served() { local v; v=$(served); grep -qxF "$QEMU_BPO_VERSION" <<< "$v"; }
	if [ "$QEMU_FROM" = backports ] && ! pinned_served; then
		$SUDO apt-get update -qq
	fi
	if [ "$QEMU_FROM" = backports ] && ! pinned_served; then
		cat >&2 <<-EOF
		[vmitosis] ************************************************************************
		[vmitosis] QEMU $QEMU_BPO_VERSION is no longer served by bookworm-backports.
		[vmitosis] Served: $(served | tr '\n' ' ')
		[vmitosis] Falling back to what apt offers; the death rates in README were measured with
		[vmitosis] the pinned version. Update QEMU_BPO_VERSION in workbench/deps.sh after checking.
		[vmitosis] ************************************************************************
		EOF
		$SUDO sed -i "s/^Pin: version .*/Pin: release n=bookworm-backports/" $bpo_pref
		$SUDO apt-get install -y -qq --no-install-recommends qemu-system-x86 > /dev/null
	else
		missing+=($(for p in $QEMU_BPO_PKGS; do
			[ "$QEMU_FROM" = backports ] && echo "$p=$qemu_want" || echo "$p/bookworm"; done))
		[ "$QEMU_FROM" = backports ] || missing+=("seabios/bookworm")
	fi
fi
[ ${#missing[@]} -eq 0 ] && exit 0

say "installing Debian packages: ${missing[*]}"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends --allow-downgrades "${missing[@]}" >/dev/null
