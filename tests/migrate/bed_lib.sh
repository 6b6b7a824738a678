# The multi-host test bed for tests: source after lib.sh, then call
# bed_up N. Hosts are h1..hN; `on hN CMD...` runs CMD as host N (its netns,
# its unix socket and client config); `fy hN ARGS...` is `ferry ARGS` there.
# Everything goes away on exit (testbed.sh down).
TESTBED=$top/scripts/testbed.sh
export FERRY_BUILD=$BUILD

bed_up() {
	BED_DIR=$(mktemp -d /tmp/ferry-bed.XXXXXX)
	trap bed_down EXIT
	"$TESTBED" up "$BED_DIR" "$1" >/dev/null
}

bed_down() {
	[ -n "${BED_DIR:-}" ] || return 0
	if [ -n "${KEEP_TEST_DIR:-}" ]; then
		echo "# bed kept in $BED_DIR (testbed.sh down $BED_DIR)"
		return 0
	fi
	"$TESTBED" down "$BED_DIR"
	# The test's own files in it (mktemp made it for this test).
	[ ! -d "$BED_DIR" ] || rm -rf "$BED_DIR"
	BED_DIR=
}

on() { local h=$1; shift; "$TESTBED" exec "$BED_DIR" "$h" "$@"; }
fy() { local h=$1; shift; on "$h" "$FERRY" "$@"; }
bed_addr() { "$TESTBED" addr "$BED_DIR" "$1"; }
bed_ns() { printf 'ferry-%s-%s' "$(printf '%s' "$BED_DIR" | sha256sum | cut -c1-8)" "$1"; }
