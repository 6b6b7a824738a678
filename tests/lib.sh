# Shared by every integration test: TAP-style results, and a private ferryd
# (own root directory, own bridge) that is torn down with everything it made.
#
# A test file is a bash script that sources this file, calls ferry_setup, and
# reports with check/pass/fail. tests/run counts the "ok"/"not ok" lines.

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${FERRY_BUILD:-$top/build}
FERRYD=$BUILD/src/daemon/ferryd
FERRY=$BUILD/src/cli/ferry
TEST_NAME=$(basename "$0" .sh)

pass() { echo "ok - $TEST_NAME: $1"; }
fail() {
	echo "not ok - $TEST_NAME: $1"
	[ $# -lt 2 ] || printf '#   %s\n' "${@:2}"
}

# check DESCRIPTION COMMAND...: passes when the command succeeds.
check() {
	local desc=$1 out
	shift
	if out=$("$@" 2>&1); then pass "$desc"; else fail "$desc" "command: $*" "$out"; fi
}

# check_fails DESCRIPTION COMMAND...: passes when the command fails.
check_fails() {
	local desc=$1 out
	shift
	if out=$("$@" 2>&1); then fail "$desc" "command succeeded: $*" "$out"; else pass "$desc"; fi
}

# expect_eq DESCRIPTION ACTUAL EXPECTED
expect_eq() {
	if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected: $3" "actual:   $2"; fi
}

# expect_match DESCRIPTION ACTUAL REGEX (extended)
expect_match() {
	if printf '%s' "$2" | grep -Eq -- "$3"; then pass "$1"; else fail "$1" "expected to match: $3" "actual: $2"; fi
}

ferry() { "$FERRY" "$@"; }
# The median of the numbers on stdin, one a line (the lower of the middle
# two); nothing for none.
median() { sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]}'; }

# A sleep in a running container (in its cgroups and namespaces, adopted
# by its init) that nsenter put there from the host, on a pty of the
# host's: its session leader is outside the container, and its tty's master
# too, and CRIU can dump neither. $1: the container's init (host pid). The
# holder of the pty runs in the background ($! after the call); the
# sleep's pid goes to the container's /tmp/hostpty.pid.
host_pty_sleeper() {
	python3 - "$1" <<'PYEOF' &
import os, pty, sys, time
init = sys.argv[1]
master, slave = pty.openpty()
pid = os.fork()
if pid == 0:
    for line in open(f"/proc/{init}/cgroup"):
        _, ctrl, path = line.rstrip("\n").split(":", 2)
        for c in (ctrl.split(",") if ctrl else [""]):
            name = c.replace("name=", "") if c else "unified"
            procs = f"/sys/fs/cgroup/{name}{path}/cgroup.procs"
            if os.path.exists(procs):
                with open(procs, "w") as f:
                    f.write(str(os.getpid()))
    os.dup2(slave, 0); os.dup2(slave, 1); os.dup2(slave, 2)
    os.execvp("nsenter", ["nsenter", "-t", init, "-a", "/bin/sh", "-c", "sleep 100000 & echo $! >/tmp/hostpty.pid"])
os.waitpid(pid, 0)
os.close(slave)
time.sleep(1000)
PYEOF
}

# host_pty_wait FILE: until the sleeper of host_pty_sleeper (its python is
# HOLDER_PID) has written its pid to FILE and the shell nsenter ran has
# ended: until then a move or a stateful stop takes that shell for an exec
# session, and refuses before CRIU is asked.
host_pty_wait() {
	local i
	for i in $(seq 30); do [ -s "$1" ] && break; sleep 0.1; done
	for i in $(seq 50); do [ -z "$(ps -o pid= --ppid "$HOLDER_PID")" ] && break; sleep 0.1; done
}

# The ferryd of this test: call once; torn down on exit.
ferry_setup() {
	TEST_DIR=$(mktemp -d /tmp/ferry-test.XXXXXX)
	# Container root (uid 1000000 on the host) must get through to its rootfs.
	chmod 711 "$TEST_DIR"
	export FERRY_DIR=$TEST_DIR/root
	# The client's remotes and keys: never the real ~/.config/ferry.
	export FERRY_CONF=$TEST_DIR/conf
	# Interface names are at most 15 characters.
	FERRY_BRIDGE=fbr$(printf '%05d' $(($$ % 100000)))
	trap ferry_teardown EXIT
	ferryd_start
}

ferryd_start() {
	"$FERRYD" --root "$FERRY_DIR" --bridge "$FERRY_BRIDGE" >>"$TEST_DIR/ferryd.out" 2>&1 &
	FERRYD_PID=$!
	local i
	for i in $(seq 200); do
		[ -S "$FERRY_DIR/unix.socket" ] && "$FERRY" info >/dev/null 2>&1 && return 0
		kill -0 "$FERRYD_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "Bail out! ferryd did not start" >&2
	tail -20 "$TEST_DIR/ferryd.out" >&2
	return 1
}

ferryd_stop() {
	[ -n "${FERRYD_PID:-}" ] || return 0
	kill -TERM "$FERRYD_PID" 2>/dev/null
	wait "$FERRYD_PID" 2>/dev/null
	FERRYD_PID=
}

# The busybox image, built once per test file.
ferry_busybox_image() {
	"$FERRY" image info busybox >/dev/null 2>&1 || "$FERRY" image build busybox --alias busybox >/dev/null
}

ferry_teardown() {
	local c pid
	# Also from scripts with `set -e` (the benchmarks): every step runs.
	set +e
	if [ -n "${FERRYD_PID:-}" ] && kill -0 "$FERRYD_PID" 2>/dev/null; then
		for c in $("$FERRY" list --format csv -c n 2>/dev/null); do
			"$FERRY" delete --force "$c" >/dev/null 2>&1
		done
	fi
	ferryd_stop
	# Monitors that outlived a crashed ferryd: only the ones this test's daemon started.
	for pid in $(cat "$FERRY_DIR"/containers/*/monitor.pid 2>/dev/null | awk '{print $1}'); do
		kill -KILL "$pid" 2>/dev/null
	done
	"$FERRYD" --root "$FERRY_DIR" --bridge "$FERRY_BRIDGE" --purge >/dev/null 2>&1
	ip link del "$FERRY_BRIDGE" 2>/dev/null
	if [ -n "${TEST_DIR:-}" ] && [ -d "$TEST_DIR" ]; then
		grep -qs " $TEST_DIR" /proc/mounts && awk -v d="$TEST_DIR" '$2 ~ "^"d {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l
		[ -n "${KEEP_TEST_DIR:-}" ] || rm -rf "$TEST_DIR"
	fi
}
