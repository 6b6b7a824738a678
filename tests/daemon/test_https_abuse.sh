#!/usr/bin/env bash
# Slow and hostile clients against ferryd's HTTPS listener: 1,000 idle
# connections and a half-sent request do not stall a trusted client, and
# ferryd's memory stays bounded; the half-sent request is cut off after the
# idle timeout; a 100 MB JSON body is refused (413) without ferryd holding
# it, while a large upload to a bulk endpoint is still taken.
source "$(dirname "$0")/../lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
source "$here/api_lib.sh"
source "$here/https_lib.sh"

core_setup
client_cert alice
trust alice
HTTPS_PORT=$(free_port 18543)
expect_eq "listener up" "$(https_listen "127.0.0.1:$HTTPS_PORT")" ""
expect_eq "alice is trusted" "$(https --as alice GET /1.0 | jq -r .metadata.auth)" trusted

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$FERRYD_PID/status"; }
threads() { awk '/^Threads:/ {print $2}' "/proc/$FERRYD_PID/status"; }
rss_before=$(rss_kb)
echo "# ferryd before: RSS $((rss_before / 1024)) MiB, $(threads) threads"

# --- 1,000 idle connections and a half-sent request
python3 "$here/https_flood.py" "$HTTPS_PORT" 1000 "$TEST_DIR/flood.ready" "$TEST_DIR/flood.stop" 45 \
	>"$TEST_DIR/flood.out" 2>"$TEST_DIR/flood.err" &
flood_pid=$!
for i in $(seq 400); do [ -e "$TEST_DIR/flood.ready" ] && break; sleep 0.05; done
check "1,000 idle connections and a half-sent request are open" test -e "$TEST_DIR/flood.ready"
sleep 1
rss_flood=$(rss_kb)
echo "# ferryd with 1,000 idle connections: RSS $((rss_flood / 1024)) MiB, $(threads) threads," \
	"$(( (rss_flood - rss_before) / 1000 )) KiB per connection"
start=$(date +%s%N)
auth=$(https --as alice GET /1.0 --max-time 5 | jq -r .metadata.auth)
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "# GET /1.0 over TLS meanwhile: $ms ms"
expect_eq "a trusted client still gets GET /1.0" "$auth" trusted
expect_eq "... within a second" "$(( ms < 1000 ))" 1
expect_eq "... and GET /1.0/instances" "$(https_code --as alice GET /1.0/instances --max-time 5)" 200
expect_eq "the unix socket is unaffected" "$(api_code GET /1.0)" 200
expect_eq "ferryd's memory stays bounded (< 256 MiB more)" "$(( rss_flood - rss_before < 256 * 1024 ))" 1

# The idle timeout (30 s) cuts the slow client off.
wait "$flood_pid"
cat "$TEST_DIR/flood.out" | sed 's/^/# /'
closed=$(awk '/half_request_closed_after/ {print $2}' "$TEST_DIR/flood.out")
expect_match "the half-sent request is cut off after the idle timeout" "$closed" '^(2[89]|3[0-9])\.[0-9]$'
sleep 1
echo "# ferryd after the flood: RSS $(( $(rss_kb) / 1024 )) MiB, $(threads) threads"
expect_eq "the connection threads are gone again" "$(( $(threads) < 50 ))" 1

# --- large bodies
big=$TEST_DIR/big.json
python3 -c "
import sys
with open(sys.argv[1], 'w') as f:
    f.write('{\"name\":\"c1\",\"description\":\"')
    chunk = 'x' * (1 << 20)
    for _ in range(100):
        f.write(chunk)
    f.write('\"}')" "$big"
rss_before=$(rss_kb)
code=$(curl -sk --cert "$TEST_DIR/alice.crt" --key "$TEST_DIR/alice.key" -o "$TEST_DIR/big.resp" -w '%{http_code}' \
	-H 'Content-Type: application/json' --data-binary "@$big" "https://127.0.0.1:$HTTPS_PORT/1.0/instances")
expect_eq "a 100 MB JSON body: 413" "$code" 413
expect_match "... saying why" "$(jq -r .error "$TEST_DIR/big.resp")" 'larger than'
code=$(curl -sk --cert "$TEST_DIR/alice.crt" --key "$TEST_DIR/alice.key" -o /dev/null -w '%{http_code}' \
	-H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary "@$big" \
	"https://127.0.0.1:$HTTPS_PORT/1.0/instances")
expect_eq "... also sent chunked, without a length: 413" "$code" 413
grown=$(( $(rss_kb) - rss_before ))
echo "# ferryd's RSS grew by $((grown / 1024)) MiB taking two 100 MB JSON bodies"
expect_eq "... without ferryd holding them (< 32 MiB growth)" "$(( grown < 32 * 1024 ))" 1
client_cert mallory
expect_eq "an untrusted client can't send 1 MB to POST /1.0/certificates: 413" \
	"$(python3 -c "print('{\"password\":\"' + 'x' * 1048576 + '\"}')" | https_code --as mallory POST /1.0/certificates -H 'Content-Type: application/json' --data-binary @-)" 413
head -c $((20 << 20)) /dev/urandom >"$TEST_DIR/upload.bin"
code=$(curl -sk --cert "$TEST_DIR/alice.crt" --key "$TEST_DIR/alice.key" -o "$TEST_DIR/upload.resp" -w '%{http_code}' \
	-H 'Content-Type: application/octet-stream' --data-binary "@$TEST_DIR/upload.bin" "https://127.0.0.1:$HTTPS_PORT/1.0/images")
expect_match "a 20 MB image upload is taken (spooled; not 413)" "$code" '^(2|4|5)[0-9][0-9]$'
check_fails "... not refused for its size" test "$code" = 413
