#!/bin/sh
# mkman.sh IN.md OUT VERSION DATE: the roff man page OUT from the Markdown
# page IN of doc/ (the Markdown is the source; OUT is never edited).
#
# pandoc writes the page; man.lua gives tables column widths that fit an
# 80-column terminal. The sed and awk steps make the roff plain enough for
# every formatter: pandoc's font V (defined with groff's .ftr) becomes CR,
# which mandoc knows too, and the .PP pandoc puts right after a heading
# (ignored by groff, warned about by mandoc) goes.
set -eu
in=$1 out=$2 version=$3 date=$4
here=$(dirname "$0")
tmp="$out.tmp"
pandoc --standalone --from gfm --to man --shift-heading-level-by=-1 \
	--lua-filter "$here/man.lua" \
	--metadata date="$date" --metadata footer="smtpgate $version" \
	--variable header-includes='.ad l' "$in" |
	sed -e 's/\\f\[V\]/\\f[CR]/g' -e 's/\\f\[VB\]/\\f[CB]/g' \
	    -e 's/\\f\[VI\]/\\f[CI]/g' -e 's/\\f\[C\]/\\f[CR]/g' |
	awk '/^\.(SH|SS)/ { print; heading = 1; next }
	     heading && /^\.PP$/ { heading = 0; next }
	     { heading = 0; print }' >"$tmp"
mv "$tmp" "$out"
