# A second ferryd for the remote tests, in the same network namespace as
# the first (tests/lib.sh's), with its own root, bridge and HTTPS address
# on 127.0.0.1. Source after lib.sh; call remote_setup after ferry_setup.
# The client's config (remotes, keys, server certificates) lives in
# $FERRY_CONF under the test directory, never in the user's ~/.config.

# A free TCP port on 127.0.0.1 from $1 up.
free_port() {
	python3 - "${1:-18443}" <<'EOF'
import socket, sys
for port in range(int(sys.argv[1]), 65000):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
EOF
}

# ferry against the second daemon's unix socket (as its root would).
ferry2() { FERRY_DIR=$FERRY_DIR2 "$FERRY" "$@"; }

ferryd2_start() {
	"$FERRYD" --root "$FERRY_DIR2" --bridge "$FERRY_BRIDGE2" >>"$TEST_DIR/ferryd2.out" 2>&1 &
	FERRYD2_PID=$!
	local i
	for i in $(seq 200); do
		[ -S "$FERRY_DIR2/unix.socket" ] && ferry2 info >/dev/null 2>&1 && return 0
		kill -0 "$FERRYD2_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "Bail out! the second ferryd did not start" >&2
	tail -20 "$TEST_DIR/ferryd2.out" >&2
	return 1
}

ferryd2_stop() {
	[ -n "${FERRYD2_PID:-}" ] || return 0
	kill -TERM "$FERRYD2_PID" 2>/dev/null
	wait "$FERRYD2_PID" 2>/dev/null
	FERRYD2_PID=
}

# The second daemon listening on 127.0.0.1:$REMOTE_PORT with trust password $1.
remote_setup() {
	export FERRY_CONF=$TEST_DIR/conf
	FERRY_DIR2=$TEST_DIR/root2
	FERRY_BRIDGE2=fbs$(printf '%05d' $(($$ % 100000)))
	trap 'remote_teardown; ferry_teardown' EXIT
	ferryd2_start || return 1
	REMOTE_PORT=$(free_port 18600)
	ferry2 config set core.https_address "127.0.0.1:$REMOTE_PORT" || return 1
	ferry2 config set core.trust_password "$1" || return 1
}

remote_teardown() {
	local c pid
	if [ -n "${FERRYD2_PID:-}" ] && kill -0 "$FERRYD2_PID" 2>/dev/null; then
		for c in $(ferry2 list --format csv -c n 2>/dev/null); do
			ferry2 delete --force "$c" >/dev/null 2>&1
		done
	fi
	ferryd2_stop
	for pid in $(cat "$FERRY_DIR2"/containers/*/monitor.pid 2>/dev/null | awk '{print $1}'); do
		kill -KILL "$pid" 2>/dev/null
	done
	"$FERRYD" --root "$FERRY_DIR2" --bridge "$FERRY_BRIDGE2" --purge >/dev/null 2>&1
	ip link del "$FERRY_BRIDGE2" 2>/dev/null
}
