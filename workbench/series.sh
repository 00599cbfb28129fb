#!/usr/bin/env bash
# make series: export the expanded tree (base..vmitosis) as a git-am-able series with a cover
# letter into out/series/.
. "$(dirname "$0")/lib.sh"

dir=$OUT/series
rm -rf "$dir"; mkdir -p "$dir"
cover=$TOP/patches/0000-cover-letter.txt
[ -f "$cover" ] || die "patches/0000-cover-letter.txt missing"
n=$(tgit rev-list --count base..vmitosis)
tgit format-patch -q --cover-letter --no-signature --thread=shallow -o "$dir" base..vmitosis
# The cover letter: subject is the first line of patches/0000-cover-letter.txt, the rest is the blurb.
subject=$(head -n1 "$cover")
python3 - "$dir"/0000-cover-letter.patch "$cover" "$subject" <<'PY'
import sys
path, cover, subject = sys.argv[1:4]
text = open(path).read()
blurb = open(cover).read().split('\n', 1)[1].strip('\n')
text = text.replace('*** SUBJECT HERE ***', subject).replace('*** BLURB HERE ***', blurb)
open(path, 'w').write(text)
PY
say "series: $n patches + cover letter in ${dir#$TOP/}"
