#!/usr/bin/env bash
# What a container that people log into holds, moved live between two
# hosts: a busybox container on h1 runs telnetd, httpd and syslogd; someone
# on the LAN is logged in over telnet (a pty, and a shell that keeps
# /dev/tty open for job control); a process lives in a mount namespace of
# its own (as a service with a private /tmp does) with a tmpfs only it
# sees; another holds a file it deleted. The container moves h1 -> h2
# (post-copy), back (stop-and-copy) while a job runs in the foreground of
# the login session, and to h2 again (post-copy). After each move the
# session's shell is the same process on the same terminal and answers, the
# job finishes and prints, httpd answers the LAN, syslogd logs, the private
# namespace still has its tmpfs and sees the container's /dev (the target's
# directory, not the source's), and the deleted file still reads back.
# Also along: a process with a UTS namespace (a hostname) of its own, as
# systemd's ProtectHostname= gives a service (CRIU patch 0042). Last, a
# process with an IPC namespace of its own, then one with a POSIX message
# queue open (neither of which CRIU can save), make a move refused before
# anything stops, as does the queue left behind; a connection left in a
# listener's queue fails the dump, which says why, and c1 runs on; the
# session goes on, and once they are gone c1 moves again.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/bed_lib.sh"
bed_up 2 || { echo "Bail out! testbed up failed"; exit 1; }

trap 'tcp_cleanup; bed_down' EXIT

# The login session: a telnet connection from the LAN (the TCP coproc of
# bed_lib.sh). tel CMD PATTERN sends a command line and reads what comes
# back until a line matches PATTERN (at most 10 s); the line is left in
# TEL_LINE. In the test's shell: a subshell may lose the coproc's fds.
TEL_LINE=
tel() {
	local line deadline=$((SECONDS + 10))
	TEL_LINE=
	printf '%s\n' "$1" >&"${TCP[1]}" || return 1
	while [ "$SECONDS" -lt "$deadline" ]; do
		read -r -t 2 line <&"${TCP[0]}" || continue
		line=${line//$'\r'/}
		if [[ "$line" =~ $2 ]]; then
			TEL_LINE=$BASH_REMATCH
			return 0
		fi
	done
	return 1
}
# session_answers WHEN N: the shell answers, as the same process, on the
# same terminal. (The marker is computed, so that the shell's output and
# the terminal's echo of the command line differ.)
session_answers() {
	if tel "echo mark-\$(($2 * 1000 + 7)) \$\$ \$(tty)" "^mark-${2}007 [0-9]+ /dev/pts/[0-9]+$"; then
		expect_eq "the login shell answers, same process, same terminal ($1)" "${TEL_LINE#* }" "$SESSION"
	else
		fail "the login shell answers ($1)" "no mark-${2}007 on the telnet connection"
	fi
}

# pid_of PATTERN: the pid in c1 of the process whose command line is PATTERN.
pid_of() { fy "$1" exec c1 -- ps -o pid,args | awk -v a="$2" 'substr($0, index($0, $2)) == a {print $1}'; }
http_page() { "$TESTBED" lan-exec "$BED_DIR" wget -q -T 5 -O - "http://$IP/"; }
in_private_ns() { local h=$1; shift; fy "$h" exec c1 -- nsenter -t "$PRIVATE" -m "$@"; }

# services_work HOST WHEN N
services_work() {
	local host=$1 when=$2 n=$3
	expect_eq "httpd answers the LAN ($when)" "$(http_page)" "hello from c1"
	fy "$host" exec c1 -- logger "ferry-log-$n"
	local i logged=
	for i in $(seq 20); do
		logged=$(fy "$host" exec c1 -- grep -c "ferry-log-$n" /var/log/messages)
		[ "$logged" = 1 ] && break
		sleep 0.1
	done
	expect_eq "syslogd logs a message sent after it ($when)" "$logged" 1
	expect_eq "the private namespace still has its tmpfs ($when)" "$(in_private_ns "$host" cat /mnt/private)" "only here"
	fy "$host" exec c1 -- touch "/dev/ferry-seen-$n"
	check "the private namespace sees a file made in the container's /dev ($when)" \
		in_private_ns "$host" test -e "/dev/ferry-seen-$n"
	expect_eq "the deleted file still reads back ($when)" "$(fy "$host" exec c1 -- cat "/proc/$HOLDER/fd/3")" "still here"
	expect_match "... and it is still deleted ($when)" "$(fy "$host" exec c1 -- ls -l "/proc/$HOLDER/fd/3")" '/tmp/gone \(deleted\)$'
	expect_eq "the process with a UTS namespace of its own keeps its hostname ($when)" \
		"$(fy "$host" exec c1 -- nsenter -t "$NAMED" -u hostname) $(fy "$host" exec c1 -- hostname)" "elsewhere c1"
}


# move_held WHAT WHY PATTERN: a move of c1 from h2 is refused (or fails),
# its output matches PATTERN, and c1 runs on h2 alone.
move_held() {
	local out rc
	out=$(fy h2 move c1 h1: 2>&1)
	rc=$?
	expect_eq "a move $1" "$rc" 1
	expect_match "... $2" "$out" "$3"
	expect_eq "c1 still runs on h2, and only there" "$(state h2 c1) $(names h1)" "RUNNING "
}
# start_holder NAME WHAT: build/tests/checkpoint/NAME put in c1 on h2 and
# started there, below init.
start_holder() {
	check "put $1 in c1" fy h2 file push --mode 0755 --uid 0 --gid 0 "$BUILD/tests/checkpoint/$1" "c1/usr/bin/$1"
	check "start $1 ($2)" fy h2 exec c1 -- sh -c "$1 </dev/null >/dev/null 2>&1 &"
	sleep 0.5
}

fy h1 image build busybox --alias busybox >/dev/null
check "launch c1 on h1" fy h1 launch busybox c1
check "start telnetd, httpd and syslogd in c1" fy h1 exec c1 -- sh -c \
	'mkdir -p /var/log /www && echo "hello from c1" >/www/index.html && syslogd -O /var/log/messages && httpd -p 80 -h /www && telnetd -l /bin/sh -p 23'
check "start a process in a mount namespace of its own, with a tmpfs" fy h1 exec c1 -- sh -c \
	"unshare -m sh -c 'mount -t tmpfs private /mnt && echo \"only here\" >/mnt/private && exec sleep 1000001' </dev/null >/dev/null 2>&1 &"
check "start a process that holds a file it deleted" fy h1 exec c1 -- sh -c \
	"sh -c 'exec 3>/tmp/gone; echo \"still here\" >&3; rm /tmp/gone; exec sleep 1000002' </dev/null >/dev/null 2>&1 &"
check "start a process with a UTS namespace of its own" fy h1 exec c1 -- sh -c \
	"unshare -u sh -c 'hostname elsewhere && exec sleep 1000004' </dev/null >/dev/null 2>&1 &"
for i in $(seq 50); do
	PRIVATE=$(pid_of h1 "sleep 1000001")
	HOLDER=$(pid_of h1 "sleep 1000002")
	NAMED=$(pid_of h1 "sleep 1000004")
	[ -n "$PRIVATE" ] && [ -n "$HOLDER" ] && [ -n "$NAMED" ] && break
	sleep 0.1
done
IP=$(ipv4 h1 c1)
coproc TCP { exec "$TESTBED" lan-exec "$BED_DIR" socat - "TCP:$IP:23,connect-timeout=5"; }
TCP_PID=$TCP_PID
if tel 'echo login-$((6 * 7)) $$ $(tty)' '^login-42 [0-9]+ /dev/pts/[0-9]+$'; then
	SESSION=${TEL_LINE#* }
	pass "logged in over telnet from the LAN (shell and terminal: $SESSION)"
else
	fail "logged in over telnet from the LAN" "no answer from the shell"
fi
expect_match "the login shell keeps /dev/tty open" \
	"$(fy h1 exec c1 -- ls -l "/proc/${SESSION%% *}/fd")" '-> /dev/tty$'
services_work h1 "before the moves" 0

if move_c1 h1 h2 post-copy; then
	session_answers "after a post-copy move" 1
	services_work h2 "after a post-copy move" 1
	# A job in the foreground of the session while it moves.
	printf '%s\n' 'sleep 3; echo job-done-$((6 * 7))' >&"${TCP[1]}"
	for i in $(seq 50); do
		[ -n "$(pid_of h2 "sleep 3")" ] && break
		sleep 0.1
	done
	check "a job runs in the session's foreground" test -n "$(pid_of h2 "sleep 3")"
	if move_c1 h2 h1 stop-and-copy; then
		if tel '' '^job-done-42$'; then pass "the foreground job finished after the move and printed"
		else fail "the foreground job finished after the move and printed" "no job-done-42"; fi
		session_answers "after a stop-and-copy move with a foreground job" 2
		services_work h1 "after a stop-and-copy move" 2
		if move_c1 h1 h2 post-copy; then
			session_answers "after a second post-copy move" 3
			services_work h2 "after a second post-copy move" 3
			# A namespace CRIU can't save nested (as systemd's
			# PrivateIPC= gives a service): refused before
			# anything stops, naming the process.
			check "start a process with an IPC namespace of its own" fy h2 exec c1 -- sh -c \
				"unshare -i sh -c 'exec sleep 1000003' </dev/null >/dev/null 2>&1 &"
			sleep 0.5
			move_held "is refused" "naming the process and its namespace" \
				"its process sleep \(host pid [0-9]+\) runs in an IPC namespace of its own.*PrivateIPC=no"
			session_answers "after the refused move" 4
			# A POSIX message queue, which CRIU can't save either.
			check "end the process with an IPC namespace" fy h2 exec c1 -- kill "$(pid_of h2 "sleep 1000003")"
			start_holder mq_holder "it holds a POSIX message queue"
			move_held "is refused" "naming the process and the queue" \
				"its process mq_holder \(host pid [0-9]+\) has the POSIX message queue /ferry-mq open"
			check "end mq_holder" fy h2 exec c1 -- kill "$(pid_of h2 mq_holder)"
			move_held "is refused while the queue is left" "naming it" \
				"it has the POSIX message queue /ferry-mq \(/dev/mqueue/ferry-mq\)"
			check "remove the queue" fy h2 exec c1 -- rm /dev/mqueue/ferry-mq
			# A connection left in a listener's queue: CRIU's dump fails
			# on it, the container runs on, and the error says why.
			start_holder backlog_holder "a listener that never accepts its queued connection"
			move_held "fails" "saying why in the container's terms" \
				"In-flight connection.*A listening TCP socket in the container holds connections its process has not accepted yet"
			session_answers "after the failed move" 6
			check "end backlog_holder" fy h2 exec c1 -- kill "$(pid_of h2 backlog_holder)"
			if move_c1 h2 h1 stop-and-copy; then
				session_answers "after the move that follows" 5
				services_work h1 "after the move that follows" 5
			fi
		fi
	fi
fi
for h in h1 h2; do
	[ -z "$(names "$h")" ] || fy "$h" delete -f c1 >/dev/null
done
check "no instance is left" test -z "$(names h1)$(names h2)"
