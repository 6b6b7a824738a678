# Shared by the daemon's API tests: a ferryd started without the CLI, and
# curl over its unix socket. Source after ../lib.sh.

# ferryd for this test, torn down by lib.sh's ferry_teardown.
core_setup() {
	TEST_DIR=$(mktemp -d /tmp/ferry-test.XXXXXX)
	export FERRY_DIR=$TEST_DIR/root
	FERRY_BRIDGE=fbr$(printf '%05d' $(($$ % 100000)))
	SOCK=$FERRY_DIR/unix.socket
	trap ferry_teardown EXIT
	core_start
}

core_start() {
	"$FERRYD" --root "$FERRY_DIR" --bridge "$FERRY_BRIDGE" --debug >>"$TEST_DIR/ferryd.out" 2>&1 &
	FERRYD_PID=$!
	local i
	for i in $(seq 200); do
		curl -sf --unix-socket "$SOCK" http://ferry/1.0 >/dev/null 2>&1 && return 0
		kill -0 "$FERRYD_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "Bail out! ferryd did not start" >&2
	tail -20 "$TEST_DIR/ferryd.out" "$FERRY_DIR/logs/ferryd.log" >&2
	exit 1
}

# api METHOD PATH [curl args]: the body of the answer.
api() { curl -s --unix-socket "$SOCK" -X "$1" "http://ferry$2" "${@:3}"; }
# api_code METHOD PATH [curl args]: the HTTP status of the answer.
api_code() { curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -X "$1" "http://ferry$2" "${@:3}"; }
# json METHOD PATH BODY: send a JSON body.
json() { curl -s --unix-socket "$SOCK" -X "$1" -H 'Content-Type: application/json' "http://ferry$2" -d "$3"; }
# op_wait RESPONSE: wait for the async response's operation; prints the finished operation.
op_wait() {
	local op
	op=$(jq -r .operation <<<"$1")
	[ -n "$op" ] && [ "$op" != null ] || { echo "$1"; return 1; }
	api GET "$op/wait?timeout=120" | jq -c .metadata
}
