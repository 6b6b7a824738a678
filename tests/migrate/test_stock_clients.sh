#!/usr/bin/env bash
# Moves between two hosts of the test bed with the stock clients of LXD's
# API that Debian 12 ships, trusting the hosts by password as their users
# do: lxc (lxd-client 5.0.2) moves a running container live (the same
# process, still counting), moves it --stateless while it runs (stopped on
# the source first), copies it while it runs (a stopped copy; it runs on,
# the same process), moves it stopped;
# pylxd 2.2.10 (which knows only /1.0/containers and sends no "live" to
# the target) moves it live again.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/bed_lib.sh"
if ! command -v lxc >/dev/null || ! /usr/bin/python3 -c 'import pylxd' 2>/dev/null; then
	echo "ok - test_stock_clients: # SKIP lxc (lxd-client) or python3-pylxd is not installed"
	exit 0
fi
bed_up 2 || { echo "Bail out! testbed up failed"; exit 1; }
password=$(sed -n 's/^PASSWORD=//p' "$BED_DIR/bed.env")
a1=$(bed_addr h1)
a2=$(bed_addr h2)
# The clients run on the LAN, with their own config (lxc keeps it in HOME)
# and without the CA bundle variables, which would make python-requests
# verify the hosts' self-signed certificates after all.
export HOME=$BED_DIR/client-home
mkdir -p "$HOME"
lan() { timeout 120 "$TESTBED" lan-exec "$BED_DIR" env -u REQUESTS_CA_BUNDLE -u CURL_CA_BUNDLE HOME="$HOME" "$@" </dev/null; }
lxc() { lan /usr/bin/lxc "$@"; }

fy h1 image build busybox --alias busybox >/dev/null
check "launch c1 on h1" fy h1 launch busybox c1
start_counter h1
for i in $(seq 50); do [ -n "$(counter h1)" ] && break; sleep 0.1; done
check "lxc remote add h1 (trust password)" lxc remote add h1 "https://$a1" --password "$password" --accept-certificate
check "lxc remote add h2" lxc remote add h2 "https://$a2" --password "$password" --accept-certificate
expect_eq "lxc list h1: shows c1 running" "$(lxc list h1: --format csv -c ns)" "c1,RUNNING"

# --- lxc move, live
pid=$(counter_pid h1)
before=$(counter h1)
out=$(lxc move h1:c1 h2: 2>&1)
rc=$?
expect_eq "lxc move h1:c1 h2: succeeds" "$rc" 0
[ "$rc" -eq 0 ] || echo "$out" | tail -5 | sed 's/^/#   /'
expect_eq "c1 is gone from h1" "$(names h1)" ""
expect_eq "lxc list h2: shows c1 running" "$(lxc list h2: --format csv -c ns)" "c1,RUNNING"
expect_eq "... the same counter process" "$(counter_pid h2)" "$pid"
sleep 0.3
expect_counted "... which went on counting" "$before" "$(counter h2)"
expect_match "h1 moved it live" "$(cat "$BED_DIR/h1/logs/ferryd.log")" 'instance c1: moved live: stopped for'

# --- lxc move --stateless of a running container: h2 stops it (the target
# asks it to: the request keeps c1's volatile keys, a move), lxc starts it on
# h1 and deletes it on h2
out=$(lxc move h2:c1 h1: --stateless 2>&1)
rc=$?
expect_eq "lxc move h2:c1 h1: --stateless (c1 runs) succeeds" "$rc" 0
[ "$rc" -eq 0 ] || echo "$out" | tail -5 | sed 's/^/#   /'
expect_eq "c1 is gone from h2" "$(names h2)" ""
expect_eq "c1 runs on h1" "$(state h1 c1)" RUNNING
expect_match "h2 stopped it first" "$(cat "$BED_DIR/h2/logs/ferryd.log")" 'instance c1: stopped for a move that is not live'
v1=$(fy h1 exec c1 -- cat /tmp/counter 2>/dev/null)
sleep 0.3
expect_eq "... booted afresh: the counter from before counts no more" "$(fy h1 exec c1 -- cat /tmp/counter 2>/dev/null)" "$v1"

# --- lxc copy of a running container (lxc asks the source for it live, the
# target sees a copy: no volatile keys): a stopped copy with its own MAC,
# made while c1 runs on, the same process
start_counter h1
for i in $(seq 50); do [ -n "$(counter h1)" ] && break; sleep 0.1; done
pid=$(counter_pid h1)
check "write a file in c1" fy h1 exec c1 -- sh -c 'echo copied-while-running > /root/note'
out=$(lxc copy h1:c1 h2:c2 2>&1)
rc=$?
expect_eq "lxc copy h1:c1 h2:c2 (c1 runs) succeeds" "$rc" 0
[ "$rc" -eq 0 ] || echo "$out" | tail -5 | sed 's/^/#   /'
expect_eq "c2 is on h2, stopped" "$(fy h2 list --format csv -c ns)" "c2,STOPPED"
expect_eq "c1 still runs on h1" "$(state h1 c1)" RUNNING
expect_eq "... the same counter process" "$(counter_pid h1)" "$pid"
expect_match "h1 copied it while it ran" "$(cat "$BED_DIR/h1/logs/ferryd.log")" 'instance c1: copied while it runs'
check_fails "c2 has its own MAC" test "$(hwaddr h2 c2)" = "$(hwaddr h1 c1)"
check "start c2" fy h2 start c2
expect_eq "c2 has the file" "$(fy h2 exec c2 -- cat /root/note)" copied-while-running
check "lxc copy h1:c1 h2:c3 --stateless (c1 runs)" lxc copy h1:c1 h2:c3 --stateless
expect_eq "c3 is on h2, stopped" "$(state h2 c3)" STOPPED
expect_eq "c1 runs on, the same counter process" "$(counter_pid h1)" "$pid"
check "lxc delete h2:c2 --force" lxc delete h2:c2 --force
check "lxc delete h2:c3" lxc delete h2:c3

# --- lxc stop, move (cold) and back, start
check "lxc stop h1:c1" lxc stop h1:c1
check "lxc move h1:c1 h2: (stopped)" lxc move h1:c1 h2:
expect_eq "c1 is on h2, stopped" "$(fy h2 list --format csv -c ns)" "c1,STOPPED"
expect_eq "... and not on h1" "$(names h1)" ""
check "lxc move h2:c1 h1: (stopped)" lxc move h2:c1 h1:
check "lxc snapshot h1:c1 snap0" lxc snapshot h1:c1 snap0
check "lxc copy h1:c1/snap0 h2:c6 (a snapshot to another host)" lxc copy h1:c1/snap0 h2:c6
expect_eq "c6 is on h2, stopped" "$(fy h2 list --format csv -c ns)" "c6,STOPPED"
check "lxc delete h2:c6" lxc delete h2:c6
check "lxc delete h1:c1/snap0" lxc delete h1:c1/snap0
check "lxc start h1:c1" lxc start h1:c1
start_counter h1
for i in $(seq 50); do [ -n "$(counter h1)" ] && break; sleep 0.1; done

# --- pylxd, live
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=pylxd \
	-keyout "$BED_DIR/pylxd.key" -out "$BED_DIR/pylxd.crt" 2>/dev/null
pid=$(counter_pid h1)
before=$(counter h1)
out=$(lan /usr/bin/python3 "$top/tests/migrate/pylxd_migrate.py" "$a1" "$a2" "$BED_DIR/pylxd.crt" "$BED_DIR/pylxd.key" \
	"$password" c1 2>&1)
expect_match "pylxd trusted itself on both hosts by password" "$out" '^trusted$'
expect_match "pylxd: c1.migrate(h2, live=True) returned" "$out" '^moved [0-9.]+$'
expect_match "... c1 is gone from h1" "$out" '^h1 ?$'
expect_match "... and runs on h2" "$out" '^h2 c1:Running$'
[[ $out =~ moved\ [0-9] ]] || echo "$out" | tail -5 | sed 's/^/#   /'
expect_eq "... the same counter process" "$(counter_pid h2)" "$pid"
sleep 0.3
expect_counted "... which went on counting" "$before" "$(counter h2)"

check "delete c1" fy h2 delete -f c1
