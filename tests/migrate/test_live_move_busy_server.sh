#!/usr/bin/env bash
# A server slow to accept, under load from the LAN, moved live: c1 runs
# workloads/slow_acceptor (one connection taken every 30 ms) while six
# clients on the LAN connect to it in loops, more than it takes, so that
# its accept queue is seldom empty. CRIU can't save a connection still in that queue ("In-flight
# connection": the dump fails), and a move caught it so nearly every time;
# ferry now gives the container's servers up to 250 ms to take what waits
# before the freeze (the move's frames are held, so nothing new comes). Six
# moves, both memory modes: each succeeds; the server is the same process
# after them and has answered the clients all along (its count went on);
# ferryd says, at least once, that connections waited and were taken.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/bed_lib.sh"
bed_up 2 || { echo "Bail out! testbed up failed"; exit 1; }

trap 'lan_sessions_end; bed_down' EXIT

# The last answer client N got ("COUNT PID"), and how many of its
# connections failed.
last_answer() { tail -n 1 "$BED_DIR/client$1.out" 2>/dev/null; }
failures() { cat "$BED_DIR"/client*.err 2>/dev/null | wc -l; }

fy h1 image build busybox --alias busybox >/dev/null
check "launch c1 on h1" fy h1 launch busybox c1
check "put slow_acceptor in c1" fy h1 file push --mode 0755 --uid 0 --gid 0 \
	"$BUILD/tests/checkpoint/slow_acceptor" c1/usr/bin/slow_acceptor
check "start it" fy h1 exec c1 -- sh -c "slow_acceptor </dev/null >/dev/null 2>&1 &"
IP=$(ipv4 h1 c1)
for i in $(seq 50); do
	"$TESTBED" lan-exec "$BED_DIR" socat -T 2 -u "TCP:$IP:7301,connect-timeout=2" - >/dev/null 2>&1 && break
	sleep 0.1
done
SERVER=$(fy h1 exec c1 -- pidof slow_acceptor)
expect_match "slow_acceptor answers the LAN (pid ${SERVER:-none})" "$SERVER" '^[0-9]+$'

# Six clients on the LAN, each connecting again as soon as it has its
# answer: a line in clientN.out per answer, in clientN.err per failure.
# Ended (lan_sessions_end: they run on the LAN), a client ends its socat too.
for n in 1 2 3 4 5 6; do
	"$TESTBED" lan-exec "$BED_DIR" sh -c 'trap "kill \$c 2>/dev/null; exit 0" TERM
		while :; do
			socat -T 3 -u "TCP:$1:7301,connect-timeout=3" - >>"$2.out" 2>/dev/null &
			c=$!
			wait $c || echo failed >>"$2.err"
		done' sh "$IP" "$BED_DIR/client$n" &
	LAN_SESSION_PIDS+=("$!")
done
sleep 1
# Its listener's accept queue (/proc/net/tcp: port 7301 is 1C85, LISTEN is
# 0A; rx_queue is the queue's length), as the moves begin.
queued=$(fy h1 exec c1 -- awk '$2 ~ /:1C85$/ && $4 == "0A" {split($5, q, ":"); print q[2]}' /proc/net/tcp)
echo "# connections in slow_acceptor's queue before the moves: $((16#${queued:-0}))"

from=h1 to=h2
for mode in post-copy stop-and-copy post-copy stop-and-copy post-copy stop-and-copy; do
	before=$(last_answer 1)
	out=$(fy "$from" move c1 "$to:" --memory "$mode" 2>&1)
	rc=$?
	expect_eq "move c1 $from -> $to ($mode) under load" "$rc" 0
	if [ "$rc" -ne 0 ]; then printf '#   %s\n' "$out"; show_move_errors "$out"; break; fi
	echo "# $out" | tr '\n' ' '
	echo
	expect_eq "c1 runs on $to" "$(state "$to" c1)" RUNNING
	for i in $(seq 50); do
		after=$(last_answer 1)
		[ "${after%% *}" -gt "${before%% *}" ] 2>/dev/null && break
		sleep 0.1
	done
	expect_eq "the same slow_acceptor answers there ($mode)" "${after#* }" "$SERVER"
	if [ "${after%% *}" -gt "${before%% *}" ] 2>/dev/null; then
		pass "its count went on (${before%% *} -> ${after%% *})"
	else
		fail "its count went on" "before: $before" "after: $after"
	fi
	t=$from from=$to to=$t
done
lan_sessions_end
echo "# client connections that failed during the moves: $(failures) (answers: $(cat "$BED_DIR"/client*.out | wc -l))"
expect_match "ferryd let slow_acceptor take what waited before a freeze" \
	"$(grep -h "waited in its servers' accept queues" "$BED_DIR"/h*/logs/*.log | tail -n 1)" \
	'c1: [1-9][0-9]* connection\(s\) waited in its servers. accept queues; 0 after [0-9]+ ms'
for h in h1 h2; do
	[ -z "$(names "$h")" ] || fy "$h" delete -f c1 >/dev/null
done
check "no instance is left" test -z "$(names h1)$(names h2)"
