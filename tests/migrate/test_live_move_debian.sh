#!/usr/bin/env bash
# A Debian bookworm container with systemd and real services (nginx, redis,
# postgres, sshd) moves live between two hosts of the test bed and back:
# after each move systemd still runs, the services are active and answer,
# redis still holds the key set before, nginx answers from the LAN, also on
# the keep-alive connection opened before the first move, an SSH login from
# the LAN still answers from the same shell, a psql session from the LAN
# goes on inside the transaction it opened before the first move (the same
# transaction id, each row it added still there), and systemd can
# restart a service there (its mount namespaces came along whole), and
# redis still has a UTS namespace of its own (ProtectHostname=). Moved
# with both memory modes (stop-and-copy, then post-copy). Last, stopped with
# its state, it moves cold and its start on the target resumes the services
# and both sessions; the transaction commits there.
# The image comes from tests/image/imgctl (debootstrap on first use, then
# the cached tree in /var/cache/ferry/debian: seconds), imported on h1.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/bed_lib.sh"
. "$(dirname "$0")/../debian_lib.sh"
bed_up 2 || { echo "Bail out! testbed up failed"; exit 1; }

test_cleanup() {
	[ -z "${HTTP_PID:-}" ] || kill "$HTTP_PID" 2>/dev/null
	lan_sessions_end
}
trap 'test_cleanup; bed_down' EXIT

mkdir -p "$BED_DIR/store"
out=$("$IMGCTL" build-debian "$BED_DIR/store" "$CACHE" 2>&1)
rc=$?
expect_eq "the debian image builds" "$rc" 0
[ "$rc" -eq 0 ] || { printf '#   %s\n' "$out" | tail -5; exit 0; }
check "import it on h1" fy h1 image import "$(awk '$1 == "path:" {print $2}' <<<"$out")" --alias debian

system_state() { fy "$1" exec d1 -- systemctl is-system-running 2>/dev/null; }
http_code() { "$TESTBED" lan-exec "$BED_DIR" curl -s -m 5 -o /dev/null -w '%{http_code}' "http://$IP/"; }
services_answer() { # HOST WHEN
	expect_match "systemd runs ($2)" "$(system_state "$1")" '^(running|degraded)$'
	expect_eq "nginx and redis are active ($2)" "$(fy "$1" exec d1 -- systemctl is-active nginx redis-server | tr '\n' ' ')" "active active "
	expect_eq "nginx answers the LAN ($2)" "$(http_code)" 200
	if keepalive_get; then pass "the keep-alive connection still works ($2)"
	else fail "the keep-alive connection still works ($2)"; fi
	expect_eq "redis still holds its key ($2)" "$(fy "$1" exec d1 -- redis-cli get ferry-key)" "$KEY"
	sessions_answer "$1" "$2"
	# ProtectHostname=: redis has a UTS namespace of its own (CRIU patch
	# 0042), named as the container.
	expect_eq "redis keeps a UTS namespace of its own, named as d1 ($2)" \
		"$(fy "$1" exec d1 -- sh -c 'p=$(systemctl show -p MainPID --value redis-server); [ "$(readlink /proc/$p/ns/uts)" != "$(readlink /proc/1/ns/uts)" ] && nsenter -t $p -u hostname')" d1
}

# What users keep open, from the LAN: an SSH login (the test's key) and a
# psql session inside a transaction. ssh_shell N: the login shell's pid, as
# it prints it in answer to the N-th question; pg_step N: adds row N in the
# open transaction, prints the transaction's id and its row count.
ssh_shell() { lan_ask SSH "echo \"ssh\"\"-$1\" \$\$" "ssh-$1 " | awk '{print $NF}'; }
pg_step() {
	lan_ask PSQL "INSERT INTO moves VALUES ($1); SELECT 'pg-$1', txid_current(), count(*) FROM moves;" "pg-$1|" |
		cut -d'|' -f2-
}
ASKS=0
PG_ROWS=0
sessions_answer() { # HOST WHEN
	expect_eq "postgres and sshd are active ($2)" \
		"$(fy "$1" exec d1 -- systemctl is-active postgresql@15-main ssh | tr '\n' ' ')" "active active "
	ASKS=$((ASKS + 1))
	expect_eq "the SSH login from the LAN answers, from the same shell ($2)" "$(ssh_shell "$ASKS")" "$SSH_SHELL"
	ASKS=$((ASKS + 1))
	PG_ROWS=$((PG_ROWS + 1))
	expect_eq "the psql session goes on in its transaction, its rows there ($2)" "$(pg_step "$ASKS")" \
		"$PG_TXID|$PG_ROWS"
}

# The device and root (in that filesystem) of the mount on MOUNTPOINT in
# redis's mount namespace: where it is bound from.
sandbox_root() { # HOST NAME MOUNTPOINT
	fy "$1" exec "$2" -- sh -c 'awk -v m="$1" '\''$5 == m {print $3, $4}'\'' /proc/$(systemctl show -p MainPID --value redis-server)/mountinfo' sh "$3"
}
# Each bed host's state is a filesystem of its own (testbed.sh).
host_dev() { mountpoint -d "$BED_DIR/$1"; }

check "launch the debian container on h1" fy h1 launch debian d1 -c limits.memory=1GiB
st=$(wait_booted h1)
expect_match "systemd boots to running/degraded ($st)" "$st" '^(running|degraded)$'
IP=$(fy h1 list d1 --format csv -c 4 | cut -d' ' -f1)
KEY=value-$RANDOM
expect_eq "redis takes a key" "$(fy h1 exec d1 -- redis-cli set ferry-key "$KEY")" OK
coproc HTTP { exec "$TESTBED" lan-exec "$BED_DIR" socat - "TCP:$IP:80,connect-timeout=5"; }
HTTP_PID=$HTTP_PID
if keepalive_get; then pass "a keep-alive HTTP connection from the LAN"
else fail "a keep-alive HTTP connection from the LAN"; fi

ssh-keygen -q -t ed25519 -N '' -f "$BED_DIR/key" </dev/null >/dev/null
check "authorize the test's SSH key in d1" fy h1 exec d1 -- sh -c \
	'mkdir -p -m 700 /root/.ssh && printf "%s\n" "$1" >/root/.ssh/authorized_keys' sh "$(cat "$BED_DIR/key.pub")"
check "postgres listens on the LAN, trusting it" fy h1 exec d1 -- sh -c \
	"echo \"listen_addresses = '*'\" >/etc/postgresql/15/main/conf.d/lan.conf &&
	 echo 'host all postgres samenet trust' >>/etc/postgresql/15/main/pg_hba.conf &&
	 systemctl restart postgresql@15-main"
for i in $(seq 50); do "$TESTBED" lan-exec "$BED_DIR" pg_isready -q -h "$IP" && break; sleep 0.2; done
lan_session_open SSH ssh -tt -i "$BED_DIR/key" -o BatchMode=yes -o StrictHostKeyChecking=no \
	-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "root@$IP"
lan_session_open PSQL psql -h "$IP" -U postgres -X -A -t -q
ASKS=1
SSH_SHELL=$(ssh_shell "$ASKS")
expect_match "an SSH login from the LAN (its shell: ${SSH_SHELL:-none})" "$SSH_SHELL" '^[0-9]+$'
[ -n "$SSH_SHELL" ] || tail -n 5 "$BED_DIR/SSH.out" | sed 's/^/#   /'
lan_ask PSQL "BEGIN; CREATE TABLE moves (n int); SELECT 'pg-begun';" pg-begun >/dev/null
ASKS=2
PG_ROWS=1
PG_TXID=$(pg_step "$ASKS" | cut -d'|' -f1)
expect_match "a psql session from the LAN opens a transaction (${PG_TXID:-none})" "$PG_TXID" '^[0-9]+$'
[ -n "$PG_TXID" ] || tail -n 5 "$BED_DIR/PSQL.out" | sed 's/^/#   /'

out=$(fy h1 move d1 h2: --memory stop-and-copy 2>&1)
expect_eq "move d1 h2: --memory stop-and-copy" "$?" 0
echo "# $out"
expect_eq "d1 runs on h2" "$(fy h2 list d1 --format csv -c s)" RUNNING
# Its memory waited for the restore in memory (ferryd's staging directory on
# /dev/shm), not on h2's disk, and nothing of it is left there.
# systemd's sandbox for redis binds parts of the rootfs in a mount namespace
# of its own: they must come from h2's copy of the rootfs (CRIU recorded
# them by their path on h1: patch 0034).
expect_eq "redis's sandbox binds /usr/lib from h2's copy of the rootfs" "$(sandbox_root h2 d1 /usr/lib)" \
	"$(host_dev h2) /containers/d1/rootfs/usr/lib"
expect_match "h2 took d1's pages into memory" "$(grep 'd1: its pages wait in' "$BED_DIR/h2/logs/ferryd.log")" \
	'its pages wait in /dev/shm/ferry-pages-[0-9a-f]+/d1\.pages$'
expect_eq "... and kept none of them" "$(compgen -G '/dev/shm/ferry-pages-*/d1.*')" ""
services_answer h2 "on h2"

out=$(fy h2 move d1 h1: --memory stop-and-copy 2>&1)
expect_eq "move d1 back to h1 --memory stop-and-copy" "$?" 0
echo "# $out"
services_answer h1 "back on h1"

# Post-copy: systemd, nginx and redis run on the target before their
# memory is there.
out=$(fy h1 move d1 h2: --memory post-copy 2>&1)
expect_eq "move d1 h2: --memory post-copy" "$?" 0
echo "# $out" | tr '\n' ' '; echo
expect_match "... its memory followed" "$out" "Its memory followed"
services_answer h2 "on h2 after post-copy"
# Its limit is the target's doing (CRIU's images leave the properties of
# the container's own cgroup out: patch 0025).
expect_eq "d1's memory limit came along" "$(cat /sys/fs/cgroup/memory/ferry-*/d1/memory.limit_in_bytes 2>/dev/null)" 1073741824
# The restore ran on one CPU; every thread of every process is allowed all
# of them again (threads: /proc/PID/task).
expect_eq "every thread in d1 may run on every CPU again" \
	"$(fy h2 exec d1 -- sh -c 'cat /proc/[0-9]*/task/[0-9]*/status' | grep -h Cpus_allowed_list | sort -u)" \
	"$(grep Cpus_allowed_list /proc/self/status)"
out=$(fy h2 move d1 h1: --memory post-copy 2>&1)
expect_eq "move d1 back to h1 --memory post-copy" "$?" 0
echo "# $out" | tr '\n' ' '; echo
services_answer h1 "back on h1 after post-copy"

check "systemd restarts nginx there" fy h1 exec d1 -- systemctl restart nginx
expect_eq "nginx answers after its restart" "$(http_code)" 200

# Stopped with its state, moved cold, started there: the same services.
REDIS_PID=$(fy h1 exec d1 -- systemctl show -p MainPID --value redis-server)
check "stop d1 --stateful on h1" fy h1 stop d1 --stateful
check "move d1 h2: (stopped, its state along)" fy h1 move d1 h2:
check "start d1 on h2" fy h2 start d1
expect_eq "... the same redis ($REDIS_PID)" "$(fy h2 exec d1 -- systemctl show -p MainPID --value redis-server)" "$REDIS_PID"
expect_eq "... with its key" "$(fy h2 exec d1 -- redis-cli get ferry-key)" "$KEY"
expect_match "... systemd runs" "$(system_state h2)" '^(running|degraded)$'
sessions_answer h2 "after the cold move"
lan_ask PSQL "COMMIT; SELECT 'pg-committed';" pg-committed >/dev/null
expect_eq "the transaction commits there, with every row" \
	"$(fy h2 exec d1 -- su postgres -c "psql -X -A -t -c 'SELECT count(*) FROM moves'")" "$PG_ROWS"
check "delete d1" fy h2 delete -f d1
