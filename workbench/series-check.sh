#!/usr/bin/env bash
# make series-check: apply out/series with git am to a fresh copy of the pristine base, build
# the kernel after every patch (incrementally, ccache) so that the series is bisectable, check
# that the result is exactly the expanded tree, and run checkpatch.pl --strict on every patch.
. "$(dirname "$0")/lib.sh"

dir=$OUT/series
chk=$BUILD/series-check
ls "$dir"/0001-*.patch >/dev/null 2>&1 || die "no series: run make series"
rm -rf "$chk"
git clone -q --shared --no-checkout "$BASE_DIR" "$chk/linux"
git -C "$chk/linux" checkout -q -b check base
patches=$(ls "$dir"/*.patch | grep -v '/0000-cover-letter.patch$')
git -C "$chk/linux" -c user.name=check -c user.email=check@invalid am -q $patches ||
	die "the series does not apply to the pristine base with git am"
[ "$(git -C "$chk/linux" rev-parse 'HEAD^{tree}')" = "$(tgit rev-parse 'vmitosis^{tree}')" ] ||
	die "the series applied to the base differs from build/linux"
say "series applies with git am; the result is identical to build/linux"

fail=0
# FILE_PATH_CHANGES asks whether MAINTAINERS needs updating when a patch adds a file; the answer
# is no when the file is under an F: pattern of the VMITOSIS entry, which is checked here instead.
fpats=$(awk '/^VMITOSIS \(/ { on = 1; next } on && /^$/ { exit } on && /^F:/ { print $2 }' \
	"$chk/linux/MAINTAINERS")
for f in $(git -C "$chk/linux" diff --name-only --diff-filter=A base HEAD); do
	hit=
	for pat in $fpats; do
		case $f in $pat*) hit=1 ;; esac
	done
	[ -n "$hit" ] || { say "$f: not under the VMITOSIS entry of MAINTAINERS"; fail=1; }
done
for p in $patches; do
	# checkpatch runs scripts/spdxcheck.py, which needs Debian's python3 with python3-ply.
	if ! PATH=/usr/bin:$PATH perl "$chk/linux/scripts/checkpatch.pl" --strict --quiet --no-summary --show-types \
		--ignore FILE_PATH_CHANGES --root="$chk/linux" "$p" > "$chk/checkpatch.out" 2>&1 ||
		[ -s "$chk/checkpatch.out" ]; then
		say "checkpatch --strict: $(basename "$p")"
		cat "$chk/checkpatch.out" >&2
		fail=1
	fi
done
[ $fail -eq 0 ] && say "checkpatch --strict: clean on all $(echo "$patches" | wc -l) patches"

# Build after each patch, in order.
i=0
final=$(git -C "$chk/linux" rev-parse HEAD)
for c in $(git -C "$chk/linux" rev-list --reverse base..HEAD); do
	i=$((i + 1))
	git -C "$chk/linux" checkout -q "$c"
	say "building after patch $i: $(git -C "$chk/linux" log -1 --format=%s)"
	last=0; [ "$c" = "$final" ] && last=1
	CHECK_FRAGMENT=$last SRC=$chk/linux O=$chk/obj "$TOP/workbench/kernel.sh" >/dev/null ||
		{ say "the kernel does not build after patch $i"; fail=1; break; }
done
# The selftests of the series build too.
if [ $fail -eq 0 ]; then
	mkdir -p "$chk/selftests"
	make -s -C "$chk/obj" ARCH=x86_64 headers_install INSTALL_HDR_PATH="$chk/obj/usr" >/dev/null &&
	make -s -C "$chk/linux/tools/testing/selftests/vmitosis" OUTPUT="$chk/selftests" \
		KHDR_INCLUDES="-isystem $chk/obj/usr/include" >/dev/null ||
		{ say "the vmitosis selftests do not build"; fail=1; }
fi
[ $fail -eq 0 ] || die "series-check failed"
say "series-check passed: applies, every patch builds, checkpatch --strict clean"
