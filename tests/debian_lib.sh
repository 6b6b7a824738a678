# Helpers of the tests that run ferry's Debian image (systemd, nginx,
# redis): tests/checkpoint/test_debian.sh, tests/daemon/test_debian_stateful.sh,
# tests/migrate/test_live_move_debian.sh. Sourced after lib.sh. A test
# defines system_state [ARGS...] (what `systemctl is-system-running` says
# in its container) and opens a keep-alive connection to nginx as the
# coproc HTTP.

IMGCTL=$BUILD/tests/image/imgctl
CACHE=${FERRY_DEBIAN_CACHE:-/var/cache/ferry/debian}

# wait_booted [ARGS...]: until system_state ARGS says running, or degraded
# (sys-kernel-debug/tracing.mount can't mount in a user namespace), at most
# 60 s. Prints the last state; fails if it never came.
wait_booted() {
	local i st
	for i in $(seq 120); do
		st=$(system_state "$@")
		case $st in running | degraded) echo "$st"; return 0 ;; esac
		sleep 0.5
	done
	echo "${st:-unknown}"
	return 1
}

# One request on the keep-alive connection (coproc HTTP): its status line
# must be 200; the rest of the answer is read and dropped.
keepalive_get() {
	local line
	printf 'GET / HTTP/1.1\r\nHost: d1\r\n\r\n' >&"${HTTP[1]}" || return 1
	read -r -t 10 line <&"${HTTP[0]}" || return 1
	[[ "$line" == "HTTP/1.1 200"* ]] || return 1
	while read -r -t 0.3 line <&"${HTTP[0]}"; do :; done
	return 0
}
