# Helpers of the benchmarks, sourced after tests/lib.sh (which sets $top).

# The commit the tree is at, with "+changes" when src/ or scripts/ differ
# from it: what a table's header says it measured.
bench_commit() {
	local commit dirty
	commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
	dirty=$(git -C "$top" status --porcelain -- src scripts 2>/dev/null | grep -q . && echo "+changes" || true)
	echo "$commit$dirty"
}

# ferry's account of a live move in the text $1 ("stopped for S ms
# (checkpoint C, transfer T, restore R, resume U)", as `ferry move` prints
# it) as "S C T R U"; nothing when it has none.
move_account() {
	printf '%s\n' "$1" | sed -n 's/.*stopped for \([0-9]*\) ms (checkpoint \([0-9]*\), transfer \([0-9]*\), restore \([0-9]*\), resume \([0-9]*\)).*/\1 \2 \3 \4 \5/p' | head -1
}
