# Common settings for the vMitosis workbench scripts. Sourced, not run.
# shellcheck shell=bash
set -euo pipefail
shopt -s inherit_errexit   # set -e inside $(...) too

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
OUT=${OUT:-$TOP/out}
BASE_DIR=$BUILD/base          # pristine Debian linux-source-6.12, a git repo tagged "base"
TREE=$BUILD/linux             # expanded tree: base + patches/ + overlay files, one commit per patch
OBJ=$BUILD/obj                # out-of-tree kernel build directory
OBJ_DEBUG=$BUILD/obj-debug    # the same kernel with the debug checkers (kernel-debug.config)
QEMU=${QEMU:-qemu-system-x86_64}  # the emulator of the emulated host (L1): make qemu-7.2 gives an older one
L1LOG=${L1LOG:-$BUILD/l1}     # where vm.sh writes the emulated host's console and QEMU's logs (-console.log ...)

# Top-level directories of the kernel tree: files of this repository below them are overlay files
# (new kernel files), everything else (workbench/, patches/, README.md ...) belongs to the project.
KERNEL_DIRS="arch block certs crypto Documentation drivers fs include init io_uring ipc kernel lib mm net rust samples scripts security sound tools usr virt"

# Fixed identity and dates: the expanded tree and the exported series are reproducible, and
# ccache hits survive a fresh clone.
export KBUILD_BUILD_USER=vmitosis KBUILD_BUILD_HOST=workbench
export KBUILD_BUILD_TIMESTAMP="2026-01-01 00:00:00 UTC"
export CCACHE_BASEDIR=$BUILD CCACHE_NOHASHDIR=1
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/vmitosis-ccache}
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-8G}

say() { printf '\033[1m[vmitosis]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[vmitosis] error:\033[0m %s\n' "$*" >&2; exit 1; }

base_version() { sed -n '1{s/[[:space:]]//g;p}' "$TOP/BASE_VERSION"; }

# git in the expanded tree / in the pristine base
tgit() { git -C "$TREE" "$@"; }

# Overlay files of this repository (paths relative to $TOP), one per line.
overlay_files() {
	local d
	(cd "$TOP" && for d in $KERNEL_DIRS; do if [ -e "$d" ]; then find "$d" -type f; fi; done) | sort
}

# Expand the paths of a patches/series line (files or directories) into overlay files.
overlay_expand() {
	local p
	for p in "$@"; do
		[ -e "$TOP/$p" ] || die "patches/series names $p, which does not exist"
		(cd "$TOP" && find "$p" -type f) | sort
	done
}

# Uncommitted work in the expanded tree: modified tracked files and new files in kernel dirs.
tree_local_changes() {
	tgit status --porcelain --ignored=no --untracked-files=no
	(cd "$TREE" && git ls-files --others --exclude-standard -- $KERNEL_DIRS | sed 's/^/?? /')
}
