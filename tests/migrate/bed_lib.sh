# The multi-host test bed for tests: source after lib.sh, then call
# bed_up N. Hosts are h1..hN; `on hN CMD...` runs CMD as host N (its netns,
# its unix socket and client config); `fy hN ARGS...` is `ferry ARGS` there.
# Everything goes away on exit (testbed.sh down). Below, what the migration
# tests ask of a host and of container c1 there.
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

# Instance names on host $1; the state, first IPv4 address and MAC of $2 there.
names() { fy "$1" list --format csv -c n | tr '\n' ' ' | sed 's/ $//'; }
state() { fy "$1" list "$2" --format csv -c s; }
ipv4() { fy "$1" list "$2" --format csv -c 4 | cut -d' ' -f1; }
hwaddr() { fy "$1" config get "$2" volatile.eth0.hwaddr; }

# A counter in c1 on host $1, held in a shell variable and written to
# /tmp/counter ten times a second; started from an exec session that ends at
# once, so it lives on below init (and CRIU takes it along).
start_counter() {
	fy "$1" exec c1 -- sh -c \
		'sh -c '\''echo $$ >/tmp/counter.pid; i=0; while :; do i=$((i+1)); echo $i >/tmp/counter; sleep 0.1; done'\'' </dev/null >/dev/null 2>&1 &'
}
# The file is empty for a moment at each write (the shell truncates, then
# writes): a freeze can catch it so, and it is rewritten a tick later.
counter() {
	local v i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		v=$(fy "$1" exec c1 -- cat /tmp/counter)
		[ -n "$v" ] && break
		sleep 0.05
	done
	echo "$v"
}
counter_pid() { fy "$1" exec c1 -- cat /tmp/counter.pid; }
# expect_counted DESCRIPTION BEFORE AFTER: the counter went on.
expect_counted() {
	if [ "$3" -gt "$2" ]; then pass "$1 ($2 -> $3)"; else fail "$1" "before: $2" "after: $3"; fi
}

# A TCP connection to an echo server in c1, from the LAN: the test opens it
# in its own shell as `coproc TCP { exec "$TESTBED" lan-exec "$BED_DIR" socat
# - TCP:ADDR:PORT; }` and sets TCP_PID=$TCP_PID; tcp_cleanup ends it (on
# EXIT, before bed_down).
tcp_cleanup() {
	[ -z "${TCP_PID:-}" ] || kill "$TCP_PID" 2>/dev/null
}
tcp_echo() {
	local line
	echo "$1" >&"${TCP[1]}" || return 1
	read -r -t 10 line <&"${TCP[0]}" || return 1
	[ "$line" = "$1" ]
}
# expect_echo DESCRIPTION LINE. In the test's shell, not in check's
# subshell: bash may close a coproc's fds there.
expect_echo() {
	if tcp_echo "$2"; then pass "$1"; else fail "$1" "no echo of $2 on the connection"; fi
}

# Long-lived clients on the LAN that a user keeps open (ssh, psql):
# lan_session_open NAME CMD... runs CMD there, its input a fifo this shell
# holds open, its output (and errors) in $BED_DIR/NAME.out. lan_ask NAME
# LINE TOKEN sends LINE and prints the last line of output holding TOKEN,
# waiting for it up to 20 s (a client in TCP's back-off after a long stop
# retransmits every few seconds); fails if none came. lan_sessions_end ends
# them (on EXIT, before bed_down: they run in the bed's LAN namespace).
LAN_SESSION_PIDS=()
lan_session_open() {
	local name=$1 fd
	shift
	mkfifo "$BED_DIR/$name.in" || return 1
	"$TESTBED" lan-exec "$BED_DIR" "$@" <"$BED_DIR/$name.in" >"$BED_DIR/$name.out" 2>&1 &
	LAN_SESSION_PIDS+=("$!")
	exec {fd}>"$BED_DIR/$name.in"
	printf -v "LAN_FD_$name" %s "$fd"
}
lan_ask() {
	local fd_var="LAN_FD_$1" i line
	printf '%s\n' "$2" >&"${!fd_var}" || return 1
	for i in $(seq 200); do
		line=$(tr -d '\r' <"$BED_DIR/$1.out" | grep -F -- "$3" | tail -n 1)
		[ -n "$line" ] && { printf '%s\n' "$line"; return 0; }
		sleep 0.1
	done
	return 1
}
lan_sessions_end() {
	local pid
	for pid in "${LAN_SESSION_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	for pid in "${LAN_SESSION_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
	LAN_SESSION_PIDS=()
}

# The errors in the CRIU logs a failed move's error output $1 names.
show_move_errors() {
	local log
	for log in $(printf '%s\n' "$1" | grep -o 'log: [^ );]*' | cut -c6- | sort -u); do
		echo "# --- the errors in $log"
		grep -B3 'Error' "$log" 2>/dev/null | tail -n 30 | sed 's/^/#   /'
	done
}
# move_c1 FROM TO MODE: a live move of c1, checked (it runs on TO and is
# gone from FROM); a failure prints its output and its logs' errors.
move_c1() {
	local out rc
	out=$(fy "$1" move c1 "$2:" --memory "$3" 2>&1)
	rc=$?
	expect_eq "move c1 $1 -> $2 ($3)" "$rc" 0
	if [ "$rc" -ne 0 ]; then printf '#   %s\n' "$out"; show_move_errors "$out"; return 1; fi
	echo "# $out" | tr '\n' ' '
	echo
	expect_eq "c1 runs on $2" "$(state "$2" c1)" RUNNING
	expect_eq "c1 is gone from $1" "$(names "$1")" ""
}
