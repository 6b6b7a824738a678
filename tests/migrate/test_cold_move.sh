#!/usr/bin/env bash
# Moves and copies between two hosts of the test bed, the way a user does
# them: a stopped container moves to a host that lacks its image (the rootfs
# goes over the wire) with a file written inside it, keeping its MAC and
# address, and its name is gone from the source; a copy keeps both; a
# running container moves --stateless and runs on the target with its
# address; snapshots travel with it; a target that refuses (name taken)
# leaves the source as it was; a running container is copied while it runs
# on (a stopped copy), even with an exec session open, which refuses a live
# move; a local move renames; a snapshot copies to another
# host as a new instance; and a container stopped with its state (stop
# --stateful) moves with it, so that its start on the target resumes the
# same processes (--stateless leaves the state behind).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/bed_lib.sh"
bed_up 2 || { echo "Bail out! testbed up failed"; exit 1; }


fy h1 image build busybox --alias busybox >/dev/null
check "launch c1 on h1" fy h1 launch busybox c1
check "write a file in c1" fy h1 exec c1 -- sh -c 'echo moved-with-me > /root/note; chown 33:33 /root/note'
check "write a file for the snapshot" fy h1 exec c1 -- sh -c 'echo from-the-snapshot > /root/old'
check "snapshot c1 s1" fy h1 snapshot c1 s1
check "remove that file after the snapshot" fy h1 exec c1 -- rm /root/old
ip_c1=$(ipv4 h1 c1)
mac_c1=$(hwaddr h1 c1)
check "stop c1" fy h1 stop c1
check_fails "h2 has no image" sh -c "[ -n \"\$($FERRY image list --format csv)\" ]"

# --- a cold move
check "move c1 h2: (h2 lacks the image)" fy h1 move c1 h2:
expect_eq "c1 is gone from h1" "$(names h1)" ""
expect_eq "c1 is on h2, stopped" "$(fy h2 list --format csv -c ns)" "c1,STOPPED"
expect_eq "... with its MAC" "$(hwaddr h2 c1)" "$mac_c1"
expect_eq "... and its snapshot" "$(fy h2 list c1 --format csv -c S)" 1
check "start c1 on h2" fy h2 start c1
expect_eq "the file is there after the move" "$(fy h2 exec c1 -- cat /root/note)" moved-with-me
expect_eq "... still owned by uid 33 inside" "$(fy h2 exec c1 -- stat -c %u /root/note)" 33
expect_eq "c1 kept its address on h2" "$(ipv4 h2 c1)" "$ip_c1"
check "c1 on h2 reaches h1 over the LAN" fy h2 exec c1 -- ping -c1 -W2 "$(bed_addr h1)"

# --- a copy keeps both
check "stop c1" fy h2 stop c1
check "copy c1 h1:c1copy --instance-only" fy h2 copy c1 h1:c1copy --instance-only
expect_eq "the source stays on h2" "$(names h2)" "c1"
expect_eq "the copy is on h1" "$(names h1)" "c1copy"
expect_eq "... without snapshots" "$(fy h1 list c1copy --format csv -c S)" 0
check "start the copy" fy h1 start c1copy
expect_eq "the copy has the file" "$(fy h1 exec c1copy -- cat /root/note)" moved-with-me
check_fails "the copy has its own MAC" test "$(hwaddr h1 c1copy)" = "$mac_c1"
# Known limitation: h1 may hand the copy c1's old address (c1 took it from
# h1's range to h2, and h1 sees it free): addresses are managed per host, not
# per L2 segment. So the copy is stopped before c1 runs again.
echo "# known limitation: copy's address $(ipv4 h1 c1copy), c1's $ip_c1 (per-host address management)"
check "stop the copy" fy h1 stop c1copy

# --- a target that refuses leaves the source untouched
check "start c1 on h2" fy h2 start c1
check_fails "move c1 h1:c1copy --stateless (name taken) fails" fy h2 move c1 h1:c1copy --stateless
expect_eq "c1 is still on h2" "$(names h2)" "c1"
expect_eq "... running again" "$(state h2 c1)" RUNNING
expect_eq "... with its file" "$(fy h2 exec c1 -- cat /root/note)" moved-with-me
expect_eq "h1 has nothing new" "$(names h1)" "c1copy"
# --- a copy of a running container: made while it runs, stopped, its own MAC
pid1=$(fy h2 exec c1 -- sh -c 'sleep 1000 </dev/null >/dev/null 2>&1 & echo $!')
check "write a file in the running c1" fy h2 exec c1 -- sh -c 'echo written-while-running > /root/live'
# An exec session open in c1: its processes hang outside init's tree, which
# is all CRIU saves, so a live move is refused; a copy takes no state.
fy h2 exec c1 -- sh -c 'echo $$ > /root/exec.pid; exec sleep 60' >/dev/null 2>&1 &
exec_client=$!
for _ in $(seq 50); do fy h2 exec c1 -- test -s /root/exec.pid && break; sleep 0.1; done
check "an exec session runs in c1" fy h2 exec c1 -- sh -c 'kill -0 "$(cat /root/exec.pid)"'
out=$(fy h2 move c1 h1: 2>&1)
expect_eq "a live move of c1 during the session fails" "$?" 1
expect_match "... saying why, the source's reason first, and naming the session's command" "$out" \
	'^Error: on local: migrate "c1": Can.t move instance "c1" while an exec session runs in it \(sleep, host pid [0-9]+\)'
expect_eq "... c1 runs on h2" "$(state h2 c1)" RUNNING
expect_eq "... the same processes (sleep $pid1 is there)" "$(fy h2 exec c1 -- sh -c "kill -0 $pid1 && echo alive")" alive
expect_eq "... h1 has nothing new" "$(names h1)" "c1copy"
expect_eq "... and no partial copy on its disk" "$(ls "$BED_DIR/h1/containers")" "c1copy"
check "copy c1 h1:c9 (c1 runs, the exec session too)" fy h2 copy c1 h1:c9
expect_eq "the session's process lives on" "$(fy h2 exec c1 -- sh -c 'kill -0 "$(cat /root/exec.pid)" && echo alive')" alive
check "end the exec session" fy h2 exec c1 -- sh -c 'kill "$(cat /root/exec.pid)"'
wait "$exec_client"
expect_eq "c1 runs on h2" "$(state h2 c1)" RUNNING
expect_eq "... the same processes (sleep $pid1 is there)" "$(fy h2 exec c1 -- sh -c "kill -0 $pid1 && echo alive")" alive
expect_eq "c9 is on h1, stopped" "$(state h1 c9)" STOPPED
check_fails "... with its own MAC" test "$(hwaddr h1 c9)" = "$mac_c1"
check "start c9" fy h1 start c9
expect_eq "c9 has the file written while c1 ran" "$(fy h1 exec c9 -- cat /root/live)" written-while-running
expect_eq "... and the older one" "$(fy h1 exec c9 -- cat /root/note)" moved-with-me
check "delete c9" fy h1 delete -f c9

# --- a stateless move of a running container
check "delete the copy (it may hold c1's address on h1)" fy h1 delete c1copy
check "move c1 h1:c2 --stateless" fy h2 move c1 h1:c2 --stateless
expect_eq "c1 is gone from h2" "$(names h2)" ""
expect_eq "c2 runs on h1" "$(state h1 c2)" RUNNING
expect_eq "... with c1's address" "$(ipv4 h1 c2)" "$ip_c1"
expect_eq "... and its file" "$(fy h1 exec c2 -- cat /root/note)" moved-with-me
check "c2 reaches h2 over the LAN" fy h1 exec c2 -- ping -c1 -W2 "$(bed_addr h2)"

# --- a local move renames
check "stop c2" fy h1 stop c2
check "move c2 c3 (local rename)" fy h1 move c2 c3
expect_eq "h1 has c3 only" "$(names h1)" "c3"
check "restore c3's snapshot s1 (taken on h1, moved twice)" fy h1 restore c3 s1
check "start c3" fy h1 start c3
expect_eq "the snapshot's file is back" "$(fy h1 exec c3 -- cat /root/old)" from-the-snapshot
check "stop c3" fy h1 stop c3

# --- a snapshot copied to another host: a new instance from it
check "copy c3/s1 h2:c5" fy h1 copy c3/s1 h2:c5
expect_eq "c5 is on h2, stopped" "$(fy h2 list --format csv -c ns)" "c5,STOPPED"
expect_eq "... without snapshots" "$(fy h2 list c5 --format csv -c S)" 0
check "start c5" fy h2 start c5
expect_eq "c5 has the snapshot's file" "$(fy h2 exec c5 -- cat /root/old)" from-the-snapshot
check "delete c5" fy h2 delete -f c5
check "copy c3/s1 h2: (named as its instance)" fy h1 copy c3/s1 h2:
expect_eq "h2 has c3, stopped" "$(fy h2 list --format csv -c ns)" "c3,STOPPED"
check "delete it" fy h2 delete c3
check_fails "copy c3/nope h2:c5 fails (no such snapshot)" fy h1 copy c3/nope h2:c5
expect_eq "... and h2 has nothing" "$(names h2)" ""

# --- a target that refuses mid-transfer (a profile it lacks) keeps nothing
check_fails "copy c3 h2:c4 --profile missing fails" fy h1 copy c3 h2:c4 --profile missing
expect_match "... saying why" "$(fy h1 copy c3 h2:c4 --profile missing 2>&1)" "missing"
expect_eq "h2 has no c4" "$(names h2)" ""
expect_eq "... and no partial copy on its disk" "$(ls "$BED_DIR/h2/containers")" ""
expect_eq "c3 is still on h1" "$(names h1)" "c3"
expect_eq "no transfer files are left on either host" "$(ls "$BED_DIR"/h1/cache "$BED_DIR"/h2/cache 2>/dev/null | grep -c migrate)" 0

# --- a container stopped with its state moves with that state
check "launch c1 on h1 again" fy h1 launch busybox c1
check "start a counter in c1" start_counter h1
sleep 0.5
pid=$(counter_pid h1)
before=$(counter h1)
check "stop c1 --stateful" fy h1 stop c1 --stateful
check "move c1 h2: (stopped with its state)" fy h1 move c1 h2:
expect_eq "c1 is on h2, stopped" "$(fy h2 list --format csv -c ns)" "c1,STOPPED"
expect_match "... its state saved there" "$(fy h2 info c1)" 'Stateful: *true'
check "start c1 on h2" fy h2 start c1
expect_eq "... the same counter process ($pid)" "$(counter_pid h2)" "$pid"
after=$(counter h2)
expect_eq "... which counts on from where it stopped ($before, then $after)" "$((after >= before && after <= before + 30))" 1
# --stateless: the state stays behind, the container boots afresh there
check "stop c1 --stateful on h2" fy h2 stop c1 --stateful
check "move c1 h1: --stateless" fy h2 move c1 h1: --stateless
expect_match "... h2's log says the state stayed behind" "$(grep 'moves without the state' "$BED_DIR/h2/logs/ferryd.log")" "instance c1:"
expect_eq "... no state saved on h1" "$(fy h1 info c1 | grep -c '^Stateful:')" 0
check "start c1 on h1" fy h1 start c1
sleep 0.5
expect_eq "... booted: no counter runs" "$(fy h1 exec c1 -- sh -c 'ps -o args | grep -c "[s]leep 0.1"')" 0
check "delete c1" fy h1 delete --force c1
