#!/usr/bin/env bash
# Fetch Debian's linux-source-6.12 at the version pinned in BASE_VERSION and unpack it into
# build/base as a git repository whose single commit is tagged "base". If that version is no
# longer served, take the newest 6.12 and say so loudly.
. "$(dirname "$0")/lib.sh"

want=$(base_version)
stamp=$BUILD/base.stamp            # "<pinned> <unpacked>"
if [ -f "$stamp" ] && git -C "$BASE_DIR" rev-parse -q --verify base >/dev/null; then
	read -r pinned have < "$stamp"
	[ "$pinned" = "$want" ] && exit 0
	say "base is $have but BASE_VERSION pins $want"
fi

SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
installed=$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null || true)
if [ "$installed" != "$want" ]; then
	say "installing linux-source-6.12=$want"
	$SUDO apt-get update -qq
	if ! $SUDO apt-get install -y -qq --no-install-recommends --allow-downgrades \
		"linux-source-6.12=$want" >/dev/null; then
		cat >&2 <<EOW

 ######################################################################################
 #  WARNING: linux-source-6.12=$want is no longer served by the archive.
 #  Falling back to the NEWEST linux-source-6.12. Patches may not apply; if they do,
 #  update BASE_VERSION to the version below and re-test before committing.
 ######################################################################################

EOW
		$SUDO apt-get install -y -qq --no-install-recommends linux-source-6.12 >/dev/null
	fi
	installed=$(dpkg-query -W -f='${Version}' linux-source-6.12)
	[ "$installed" = "$want" ] || say "WARNING: using linux-source-6.12 $installed, not the pinned $want"
fi

tarball=/usr/src/linux-source-6.12.tar.xz
[ -f "$tarball" ] || die "$tarball missing after installing linux-source-6.12"

# The expanded tree borrows the base's objects (git clone --shared): a new base means a new tree.
if [ -d "$TREE/.git" ]; then
	if [ "${FORCE:-0}" != 1 ]; then
		generated=; [ -f "$BUILD/tree.stamp" ] && read -r _ generated < "$BUILD/tree.stamp"
		if [ "$(tgit rev-parse HEAD)" != "$generated" ] || [ -n "$(tree_local_changes)" ]; then
			die "build/linux has work that is not written back: 'make writeback' first (FORCE=1 drops it)"
		fi
	fi
	say "the base changes: removing the expanded tree build/linux"
	rm -rf "$TREE" "$BUILD/tree.stamp"
fi

say "unpacking $tarball ($installed) into $BASE_DIR"
rm -rf "$BASE_DIR" "$BASE_DIR.tmp"
mkdir -p "$BASE_DIR.tmp"
tar -C "$BASE_DIR.tmp" --strip-components=1 -xf "$tarball"
cd "$BASE_DIR.tmp"
git init -q
git config user.name "vMitosis workbench"
git config user.email "workbench@vmitosis.invalid"
git config core.autocrlf false
git config gc.auto 0
git add -A -f . >/dev/null   # Debian's .gitignore ignores every top-level path
GIT_AUTHOR_DATE="2026-01-01T00:00:00Z" GIT_COMMITTER_DATE="2026-01-01T00:00:00Z" \
	git commit -q -m "Debian linux-source-6.12 $installed"
git tag base
cd "$TOP"
mv "$BASE_DIR.tmp" "$BASE_DIR"
echo "$want $installed" > "$stamp"
say "base ready: $(git -C "$BASE_DIR" log -1 --format='%h %s' base)"
