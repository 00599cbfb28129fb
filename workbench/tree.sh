#!/usr/bin/env bash
# Expand the overlay into build/linux: base + one commit per line of patches/series (the patch,
# then the overlay files that line names). Files whose content did not change keep their mtime,
# so an incremental kernel build stays incremental. Refuses to discard work done in build/linux
# that was not written back (make writeback) unless FORCE=1.
. "$(dirname "$0")/lib.sh"

"$TOP/workbench/fetch-base.sh"

stamp=$BUILD/tree.stamp       # "<inputs hash> <generated commit>"

# Everything the expanded tree is made of, hashed: base version, patches/, overlay files.
inputs_hash() {
	{
		cat "$BUILD/base.stamp"
		cd "$TOP"
		find patches -type f -print0 | sort -z | xargs -0 sha1sum
		overlay_files | while read -r f; do
			printf '%s %s\n' "$(stat -c %a "$f")" "$(sha1sum "$f")"
		done
	} | sha1sum | cut -d' ' -f1
}

# The commits: prints the last one. Uses a private index so build/linux's work tree is untouched.
build_commits() {
	local tmp idx parent line patch paths p f mode blob tree commit
	tmp=$(mktemp -d)
	idx=$TREE/.git/vmitosis-index
	rm -f "$idx"
	GIT_INDEX_FILE=$idx tgit read-tree base
	parent=$(tgit rev-parse base)
	: > "$tmp/claimed"
	while read -r line || [ -n "$line" ]; do
		line=${line%%#*}
		read -r patch paths <<<"$line" || true
		[ -n "${patch:-}" ] || continue
		p=$TOP/patches/$patch
		[ -f "$p" ] || die "patches/series names $patch, which does not exist"
		if grep -q '^diff --git ' "$p"; then
			GIT_INDEX_FILE=$idx tgit apply --cached --whitespace=nowarn "$p" 2>"$tmp/err" ||
				die "patches/$patch does not apply: $(cat "$tmp/err")"
		fi
		local files
		files=$(overlay_expand $paths)
		for f in $files; do
			echo "$f" >> "$tmp/claimed"
			mode=100644; [ -x "$TOP/$f" ] && mode=100755
			blob=$(tgit hash-object -w --path="$f" "$TOP/$f")
			GIT_INDEX_FILE=$idx tgit update-index --add --cacheinfo "$mode,$blob,$f"
		done
		tree=$(GIT_INDEX_FILE=$idx tgit write-tree)
		tgit mailinfo "$tmp/msg" /dev/null < "$p" > "$tmp/info"
		local name email date subject
		name=$(sed -n 's/^Author: //p' "$tmp/info")
		email=$(sed -n 's/^Email: //p' "$tmp/info")
		date=$(sed -n 's/^Date: //p' "$tmp/info")
		subject=$(sed -n 's/^Subject: //p' "$tmp/info")
		[ -n "$subject" ] && [ -n "$email" ] || die "patches/$patch has no From:/Subject: header"
		commit=$({ printf '%s\n\n' "$subject"; cat "$tmp/msg"; } |
			GIT_AUTHOR_NAME=$name GIT_AUTHOR_EMAIL=$email GIT_AUTHOR_DATE=$date \
			GIT_COMMITTER_NAME=$name GIT_COMMITTER_EMAIL=$email GIT_COMMITTER_DATE=$date \
			tgit commit-tree "$tree" -p "$parent")
		parent=$commit
	done < "$TOP/patches/series"
	rm -f "$idx"

	# Every overlay file has exactly one home: one line of patches/series.
	local dup orphan
	dup=$(sort "$tmp/claimed" | uniq -d)
	[ -z "$dup" ] || die "claimed by more than one line of patches/series: $dup"
	orphan=$(cd "$TOP" && overlay_files | sort | comm -23 - <(sort -u "$tmp/claimed"))
	[ -z "$orphan" ] || die "overlay files no line of patches/series adds: $orphan"
	rm -rf "$tmp"
	echo "$parent"
}

if [ "${1:-}" = --inputs-hash ]; then
	inputs_hash
	exit 0
fi

if [ ! -d "$TREE/.git" ]; then
	say "creating the expanded tree in $TREE"
	rm -rf "$TREE"
	git clone -q --shared --no-checkout "$BASE_DIR" "$TREE"
	tgit config user.name "$(git -C "$TOP" config user.name || echo developer)"
	tgit config user.email "$(git -C "$TOP" config user.email || echo developer@invalid)"
	tgit config gc.auto 0
	tgit checkout -q -f base
fi

want=$(inputs_hash)
if [ -f "$stamp" ]; then
	read -r have generated < "$stamp"
	# Inputs unchanged: nothing to expand. Commits or edits made in build/linux since are the
	# developer's work in progress, built as they are.
	[ "$have" = "$want" ] && exit 0
	if [ "${FORCE:-0}" != 1 ]; then
		[ "$(tgit rev-parse HEAD)" = "$generated" ] ||
			die "build/linux has commits that are not written back: run 'make writeback' (or FORCE=1 to discard them)"
		[ -z "$(tree_local_changes)" ] ||
			die "build/linux has uncommitted changes: run 'make writeback' (or FORCE=1 to discard them):
$(tree_local_changes)"
	fi
fi

new=$(build_commits)
tgit update-index -q --no-skip-worktree .gitignore
tgit checkout -q -f -B vmitosis "$new"
# Debian's .gitignore ignores every top-level path ("/*"), which would hide new kernel files
# from git status and git add; drop that rule in the work tree only.
sed -i '/^\/\*$/d' "$TREE/.gitignore"
tgit update-index -q --skip-worktree .gitignore
tgit clean -q -f -d -- $KERNEL_DIRS >/dev/null 2>&1 || true
echo "$want $new" > "$stamp"
say "tree: $(tgit rev-list --count base..HEAD) patches on base, HEAD $(tgit log -1 --format='%h %s')"
