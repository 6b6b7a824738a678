#!/usr/bin/env bash
# The stock lxc client (Debian's lxd-client 5.0.2) against ferryd, with
# LXD_DIR at ferryd's root: list, launch, info, exec, stop, delete give the
# same results as the API.
. "$(dirname "$0")/../lib.sh"
api() {
	local method=$1 path=$2
	if [ $# -ge 3 ]; then
		curl -s --unix-socket "$FERRY_DIR/unix.socket" -X "$method" -H 'Content-Type: application/json' \
			--data-binary "$3" "http://ferry$path"
	else
		curl -s --unix-socket "$FERRY_DIR/unix.socket" -X "$method" "http://ferry$path"
	fi
}
api_wait() {
	local resp op
	resp=$(api "$@")
	op=$(jq -r '.operation // empty' <<<"$resp")
	[ -n "$op" ] || { jq -c '{status: "Failure", err: .error}' <<<"$resp"; return; }
	api GET "$op/wait?timeout=120" | jq -c .metadata
}

if ! command -v lxc >/dev/null; then
	echo "ok - test_lxc_client: # SKIP lxc (lxd-client) is not installed"
	exit 0
fi
ferry_setup
chmod 711 "$TEST_DIR"
export LXD_DIR=$FERRY_DIR
# lxc keeps its own config under HOME: not the user's.
export HOME=$TEST_DIR/home
mkdir -p "$HOME"
lxc() { timeout 120 /usr/bin/lxc "$@" </dev/null; }

[ "$(api GET /1.0/images/aliases/busybox | jq -r .status_code)" = 200 ] ||
	api_wait POST /1.0/images '{"source":{"type":"build","name":"busybox"},"aliases":[{"name":"busybox"}]}' >/dev/null

check "lxc list (empty)" lxc list
expect_eq "lxc list shows no instances" "$(lxc list --format csv -c n)" ""
check "lxc launch busybox c2" lxc launch busybox c2
state=$(api GET /1.0/instances/c2/state)
expect_eq "c2 runs, as the API sees it" "$(jq -r .metadata.status <<<"$state")" "Running"
addr=$(jq -r '.metadata.network.eth0.addresses[] | select(.family=="inet") | .address' <<<"$state")
pid=$(jq -r .metadata.pid <<<"$state")
expect_eq "lxc list shows c2 RUNNING" "$(lxc list --format csv -c ns)" "c2,RUNNING"
expect_match "lxc list shows c2's address" "$(lxc list --format csv -c 4)" "^$addr \\(eth0\\)"
info=$(lxc info c2 2>&1)
expect_match "lxc info c2: name" "$info" '^Name: c2$'
expect_match "lxc info c2: status" "$info" '^Status: RUNNING$'
expect_match "lxc info c2: the API's pid" "$info" "^PID: $pid\$"
expect_match "lxc info c2: the address" "$info" "inet: +$addr/"
ls_api=$(api GET "$(api_wait POST /1.0/instances/c2/exec '{"command":["ls","/"],"record-output":true}' | jq -r '.metadata.output["1"]')")
expect_eq "lxc exec c2 -- ls / gives what the API's exec gives" "$(lxc exec c2 -- ls /)" "$ls_api"
lxc exec c2 -- sh -c 'exit 3'
expect_eq "lxc exec returns the command's exit code" "$?" 3
expect_eq "lxc exec passes stdin" "$(echo piped | timeout 30 /usr/bin/lxc exec c2 -- cat)" "piped"
expect_eq "lxc exec keeps stderr apart" "$(lxc exec c2 -- sh -c 'echo e >&2' 2>/dev/null)" ""
check "lxc stop c2" lxc stop c2
expect_eq "c2 is stopped, as the API sees it" "$(api GET /1.0/instances/c2 | jq -r .metadata.status)" "Stopped"
expect_eq "lxc list shows c2 STOPPED" "$(lxc list --format csv -c ns)" "c2,STOPPED"
check_fails "lxc exec in a stopped instance fails" lxc exec c2 -- true
check "lxc delete c2" lxc delete c2
expect_eq "c2 is gone from the API" "$(api GET /1.0/instances/c2 | jq -r .error_code)" 404
expect_eq "lxc list is empty again" "$(lxc list --format csv -c n)" ""
check_fails "lxc launch of a missing image fails" lxc launch nosuchimage c3
expect_eq "... and leaves nothing" "$(api GET /1.0/instances | jq -c .metadata)" "[]"
