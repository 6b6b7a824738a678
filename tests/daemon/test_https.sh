#!/usr/bin/env bash
# ferryd over HTTPS with mutual TLS, as a remote client meets it: the
# listener opened, moved and closed by core.https_address; an untrusted
# client sees only the public part of GET /1.0 and POST /1.0/certificates;
# the trust password and one-time tokens let a client's certificate in; a
# removed certificate loses access at once, also on an open keep-alive
# connection; TLS below 1.2 is refused; the stock lxc client adds the
# remote with a password and with a token, and lists and shows it.
source "$(dirname "$0")/../lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
source "$here/api_lib.sh"
source "$here/https_lib.sh"

core_setup
for name in alice bob carol dave eve; do client_cert "$name"; done

# --- the server's identity and the unix socket
expect_eq "server key is the server's only (0600)" "$(stat -c '%a %U' "$FERRY_DIR/server.key")" "600 root"
expect_eq "server certificate is readable (0644)" "$(stat -c '%a' "$FERRY_DIR/server.crt")" 644
expect_eq "unix socket is root's only (0660 root:root)" "$(stat -c '%a %U %G' "$SOCK")" "660 root root"
subject=$(openssl x509 -in "$FERRY_DIR/server.crt" -noout -subject -ext subjectAltName 2>&1)
expect_match "certificate names the host" "$subject" "CN ?= ?$(hostname)"
expect_match "certificate is valid for 127.0.0.1 and ::1" "$subject" "IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1"
expect_match "key is ECDSA P-384" "$(openssl pkey -in "$FERRY_DIR/server.key" -noout -text 2>&1 | head -3)" "384 bit"

# --- the listener
HTTPS_PORT=$(free_port 18443)
expect_eq "core.https_address opens the listener" "$(https_listen "127.0.0.1:$HTTPS_PORT")" ""
expect_eq "GET /1.0 over HTTPS answers" "$(https GET /1.0 | jq -r .metadata.auth)" untrusted
expect_match "invalid address: 400" "$(json PATCH /1.0 '{"config":{"core.https_address":"127.0.0.1:99999"}}' | jq -r '.error_code, .error' | tr '\n' ' ')" \
	'^400 Invalid port'
expect_match "unresolvable address: 400" "$(json PATCH /1.0 '{"config":{"core.https_address":"no such host:1"}}' | jq -r .error_code)" '^400$'
busy_port=$(free_port $((HTTPS_PORT + 1)))
python3 -c "import socket,time,sys; s=socket.socket(); s.bind(('127.0.0.1',$busy_port)); s.listen(); open(sys.argv[1],'w').close(); time.sleep(30)" \
	"$TEST_DIR/busy.ready" &
busy_pid=$!
for i in $(seq 100); do [ -e "$TEST_DIR/busy.ready" ] && break; sleep 0.05; done
expect_match "port in use: 400 with the reason" \
	"$(json PATCH /1.0 "{\"config\":{\"core.https_address\":\"127.0.0.1:$busy_port\"}}" | jq -r '.error_code, .error' | tr '\n' ' ')" \
	'^400 .*Address already in use'
kill "$busy_pid"; wait "$busy_pid" 2>/dev/null
expect_eq "... and the config is unchanged" "$(api GET /1.0 | jq -r '.metadata.config["core.https_address"]')" "127.0.0.1:$HTTPS_PORT"
expect_eq "... and the listener still answers" "$(https_code GET /1.0)" 200

# --- TLS versions
tls_try() { timeout 10 openssl s_client -connect "127.0.0.1:$HTTPS_PORT" "$@" </dev/null 2>&1; }
out=$(tls_try -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0')
expect_match "TLS 1.1 is refused by the server" "$out" 'alert protocol version|unexpected eof|no protocols available|wrong version number|unsupported protocol'
check_fails "... the handshake does not complete" grep -q 'Cipher is [A-Z]' <<<"$out"
check_fails "TLS 1.0 is refused" grep -q 'Cipher is [A-Z]' <<<"$(tls_try -tls1 -cipher 'DEFAULT:@SECLEVEL=0')"
expect_match "TLS 1.2 works" "$(tls_try -tls1_2)" 'Protocol *: TLSv1.2|TLSv1.2, Cipher is'
expect_match "TLS 1.3 works, and is preferred" "$(tls_try)" 'TLSv1.3'
expect_match "the client's certificate is asked for, naming no CA" "$(tls_try -tls1_2)" 'No client certificate CA names sent'

# --- an untrusted client
public=$(https --as eve GET /1.0)
expect_eq "untrusted GET /1.0: only the public fields" "$(jq -c '.metadata | keys' <<<"$public")" \
	'["api_extensions","api_status","api_version","auth","auth_methods","public"]'
expect_eq "untrusted GET /1.0: auth untrusted, not public" "$(jq -r '.metadata | "\(.auth) \(.public) \(.auth_methods[0])"' <<<"$public")" \
	"untrusted false tls"
for req in "GET /1.0/instances" "GET /1.0/certificates" "GET /1.0/operations" "GET /1.0/images" "PUT /1.0" \
	"PATCH /1.0" "POST /1.0/instances" "GET /1.0/events" "GET /1.0/nothing-here" "DELETE /1.0/certificates/00"; do
	set -- $req
	resp=$(https --as eve "$1" "$2" -H 'Content-Type: application/json' -d '{}' -w ' %{http_code}')
	expect_eq "untrusted $req: 403 not authorized" "$(jq -r '"\(.error_code) \(.error)"' <<<"${resp% *}") ${resp##* }" \
		"403 not authorized 403"
done
expect_eq "no client certificate at all: 403 too" "$(https_code GET /1.0/instances)" 403
expect_eq "untrusted POST /1.0/certificates without a password: 403" \
	"$(https_code --as eve POST /1.0/certificates -d '{"type":"client"}')" 403
expect_eq "untrusted cannot ask for a token" \
	"$(https_code --as eve POST /1.0/certificates -d '{"name":"x","token":true,"password":"x"}')" 403

# --- the trust password
json PATCH /1.0 '{"config":{"core.trust_password":"correct horse"}}' >/dev/null
stored=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"select value from config where key='core.trust_password'\").fetchone()[0])" \
	"$FERRY_DIR/database/ferry.db")
expect_match "the password is stored as a salted PBKDF2 hash" "$stored" '^pbkdf2-sha256\$[0-9]{6,}\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}$'
check_fails "... never as itself" grep -q "correct horse" <<<"$stored"
check_fails "... and it is never logged" grep -rq "correct horse" "$FERRY_DIR/logs" "$TEST_DIR/ferryd.out"
expect_eq "GET /1.0 shows it only as set" "$(api GET /1.0 | jq -c '.metadata.config["core.trust_password"]')" true
expect_eq "wrong password: 403" "$(https_code --as eve POST /1.0/certificates -d '{"type":"client","password":"wrong"}')" 403
expect_eq "... and eve stays untrusted" "$(https --as eve GET /1.0 | jq -r .metadata.auth)" untrusted
headers=$TEST_DIR/headers
curl -sk --cert "$TEST_DIR/alice.crt" --key "$TEST_DIR/alice.key" -D "$headers" -o /dev/null \
	"https://127.0.0.1:$HTTPS_PORT/1.0/certificates" -d '{"type":"client","password":"correct horse"}'
alice_fp=$(fingerprint_of "$TEST_DIR/alice.crt")
expect_eq "right password: 201 Created" "$(head -1 "$headers" | awk '{print $2}')" 201
expect_eq "... Location names the certificate" "$(grep -i '^Location:' "$headers" | tr -d '\r' | awk '{print $2}')" \
	"/1.0/certificates/$alice_fp"
expect_eq "alice is trusted now" "$(https --as alice GET /1.0 | jq -r .metadata.auth)" trusted
expect_eq "alice lists instances" "$(https --as alice GET /1.0/instances | jq -c .metadata)" "[]"
expect_eq "an already trusted client can't add itself again: 400" \
	"$(https_code --as alice POST /1.0/certificates -d '{"type":"client","password":"correct horse"}')" 400
server=$(https --as alice GET /1.0)
expect_eq "trusted GET /1.0: the server's certificate" "$(jq -r .metadata.environment.certificate <<<"$server")" \
	"$(cat "$FERRY_DIR/server.crt")"
expect_eq "trusted GET /1.0: its fingerprint" "$(jq -r .metadata.environment.certificate_fingerprint <<<"$server")" \
	"$(fingerprint_of "$FERRY_DIR/server.crt")"
expect_eq "trusted GET /1.0: the HTTPS address" "$(jq -c .metadata.environment.addresses <<<"$server")" \
	"[\"127.0.0.1:$HTTPS_PORT\"]"

# --- the trust store
cert=$(https --as alice GET "/1.0/certificates/$alice_fp")
expect_eq "GET /1.0/certificates/FP: LXD's certificate object" \
	"$(jq -c '.metadata | {name, type, restricted, projects, fingerprint}' <<<"$cert")" \
	"{\"name\":\"alice@ferry-test\",\"type\":\"client\",\"restricted\":false,\"projects\":[],\"fingerprint\":\"$alice_fp\"}"
expect_eq "... with the certificate as PEM" "$(jq -r .metadata.certificate <<<"$cert")" "$(cat "$TEST_DIR/alice.crt")"
expect_eq "GET /1.0/certificates lists URLs" "$(https --as alice GET /1.0/certificates | jq -c .metadata)" \
	"[\"/1.0/certificates/$alice_fp\"]"
expect_eq "?recursion=1 lists objects" "$(https --as alice GET '/1.0/certificates?recursion=1' | jq -r '.metadata[0].fingerprint')" "$alice_fp"
expect_eq "a fingerprint prefix finds it" "$(https --as alice GET "/1.0/certificates/${alice_fp:0:12}" | jq -r .metadata.fingerprint)" "$alice_fp"
expect_eq "PATCH renames it" "$(https --as alice PATCH "/1.0/certificates/$alice_fp" -d '{"name":"alice"}' | jq -r .type)" sync
expect_eq "PUT sets restricted and projects" \
	"$(https --as alice PUT "/1.0/certificates/$alice_fp" -d '{"name":"alice","type":"client","restricted":false,"projects":["default"]}' | jq -r .type)" sync
expect_eq "... as GET shows" "$(https --as alice GET "/1.0/certificates/$alice_fp" | jq -c '.metadata | [.name, .projects]')" \
	'["alice",["default"]]'
expect_eq "PUT can't swap in another certificate" \
	"$(https_code --as alice PUT "/1.0/certificates/$alice_fp" -d "{\"name\":\"alice\",\"certificate\":\"$(sed '/-----/d' "$TEST_DIR/bob.crt" | tr -d '\n')\"}")" 400
expect_eq "an unknown certificate: 404" "$(https_code --as alice GET /1.0/certificates/abcdef)" 404
trust dave
expect_eq "root adds a certificate as base64 DER over the unix socket" "$(https --as dave GET /1.0 | jq -r .metadata.auth)" trusted
expect_eq "adding it again: 409" "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -X POST http://ferry/1.0/certificates \
	-d "{\"type\":\"client\",\"certificate\":\"$(sed '/-----/d' "$TEST_DIR/dave.crt" | tr -d '\n')\"}")" 409
expect_eq "garbage as a certificate: 400" "$(json POST /1.0/certificates '{"type":"client","certificate":"bm90IGEgY2VydA=="}' | jq -r .error_code)" 400

# --- a removed certificate loses access at once, also on an open connection
python3 "$here/https_keepalive.py" "$HTTPS_PORT" "$TEST_DIR/dave.crt" "$TEST_DIR/dave.key" "$TEST_DIR/ka.ready" "$TEST_DIR/ka.go" \
	>"$TEST_DIR/ka.out" 2>"$TEST_DIR/ka.err" &
ka_pid=$!
for i in $(seq 200); do [ -e "$TEST_DIR/ka.ready" ] && break; sleep 0.05; done
dave_fp=$(fingerprint_of "$TEST_DIR/dave.crt")
expect_eq "DELETE /1.0/certificates/FP" "$(https --as alice DELETE "/1.0/certificates/$dave_fp" | jq -r .type)" sync
touch "$TEST_DIR/ka.go"
wait "$ka_pid"
mapfile -t ka <"$TEST_DIR/ka.out"
expect_eq "keep-alive: trusted before" "${ka[0]#* }" "200 trusted"
expect_eq "keep-alive: the same connection refused after (403)" "${ka[1]#* }" "403 not authorized"
expect_eq "keep-alive: ... and untrusted in GET /1.0" "${ka[2]#* }" "200 untrusted"
ports=$(printf '%s\n' "${ka[@]}" | awk '{print $1}' | sort -u | wc -l)
expect_eq "keep-alive: all three on one connection" "$ports" 1
[ "$ports" = 1 ] || cat "$TEST_DIR/ka.err" >&2
expect_eq "a new connection is refused too" "$(https_code --as dave GET /1.0/instances)" 403

# --- tokens
issue_token() { https --as alice POST /1.0/certificates -d "{\"name\":\"$1\",\"token\":true}"; }
token_of() { jq -r '.metadata.metadata | {client_name: .request.name, fingerprint, addresses, secret, expires_at: .expiresAt} | tojson | @base64' <<<"$1"; }
resp=$(issue_token bob)
expect_eq "a token is an operation of class token, running" "$(jq -r '"\(.type) \(.metadata.class) \(.metadata.status)"' <<<"$resp")" \
	"async token Running"
token_op=$(jq -r .metadata.id <<<"$resp")
token=$(token_of "$resp")
expect_eq "its metadata: the server's fingerprint and address" "$(jq -c '.metadata.metadata | [.fingerprint, .addresses]' <<<"$resp")" \
	"[\"$(fingerprint_of "$FERRY_DIR/server.crt")\",[\"127.0.0.1:$HTTPS_PORT\"]]"
expires=$(jq -r .metadata.metadata.expiresAt <<<"$resp")
left=$(( $(date -d "$expires" +%s) - $(date +%s) ))
expect_eq "it expires in an hour by default" "$(( left > 3590 && left <= 3600 ))" 1
expect_eq "it is listed among the running operations" \
	"$(https --as alice GET '/1.0/operations?recursion=1' | jq -r --arg id "$token_op" '[.metadata.running[] | select(.id == $id) | .class] | join(",")')" token
expect_eq "bob uses it: 201" "$(https_code --as bob POST /1.0/certificates -d "{\"password\":\"$token\"}")" 201
expect_eq "bob is trusted, under the token's name" "$(https --as alice GET "/1.0/certificates/$(fingerprint_of "$TEST_DIR/bob.crt")" | jq -r .metadata.name)" bob
expect_eq "the used token is gone from the running operations" \
	"$(https --as alice GET "/1.0/operations/$token_op" | jq -r .metadata.status)" Cancelled
expect_eq "a used token: 403" "$(https_code --as carol POST /1.0/certificates -d "{\"password\":\"$token\"}")" 403
expect_eq "... carol stays untrusted" "$(https --as carol GET /1.0 | jq -r .metadata.auth)" untrusted
resp=$(issue_token carol)
token=$(token_of "$resp")
expect_eq "DELETE /1.0/operations/ID revokes a token" "$(https --as alice DELETE "/1.0/operations/$(jq -r .metadata.id <<<"$resp")" | jq -r .type)" sync
expect_eq "a revoked token: 403" "$(https_code --as carol POST /1.0/certificates -d "{\"password\":\"$token\"}")" 403
expect_eq "core.remote_token_expiry takes LXD's form" "$(json PATCH /1.0 '{"config":{"core.remote_token_expiry":"2S"}}' | jq -r .type)" sync
expect_eq "... and refuses others" "$(json PATCH /1.0 '{"config":{"core.remote_token_expiry":"soon"}}' | jq -r .error_code)" 400
resp=$(issue_token carol)
token=$(token_of "$resp")
sleep 3
expect_eq "an expired token: 403" "$(https_code --as carol POST /1.0/certificates -d "{\"trust_token\":\"$token\"}")" 403
expect_eq "... its operation is over" "$(https --as alice GET "/1.0/operations/$(jq -r .metadata.id <<<"$resp")" | jq -r .metadata.status)" Failure
json PATCH /1.0 '{"config":{"core.remote_token_expiry":null}}' >/dev/null
expect_eq "a made-up token: 403" \
	"$(https_code --as carol POST /1.0/certificates -d "{\"password\":\"$(printf '{"secret":"%064d"}' 0 | base64 -w0)\"}")" 403

# --- the stock lxc client
if command -v lxc >/dev/null; then
	export LXD_CONF=$TEST_DIR/lxcconf HOME=$TEST_DIR/home
	mkdir -p "$HOME"
	lxc() { timeout 60 /usr/bin/lxc "$@" </dev/null; }
	check "lxc remote add r 127.0.0.1:PORT --password" lxc remote add r "127.0.0.1:$HTTPS_PORT" --password "correct horse" --accept-certificate
	expect_eq "lxc list r: (empty)" "$(lxc list r: --format csv -c n 2>&1)" ""
	expect_match "lxc info r: shows the server" "$(lxc info r: 2>&1)" "auth: trusted"
	check_fails "lxc with a wrong password fails" env LXD_CONF="$TEST_DIR/lxcconf-bad" timeout 60 /usr/bin/lxc remote add bad \
		"127.0.0.1:$HTTPS_PORT" --password nope --accept-certificate
	lxc remote switch r
	token=$(lxc config trust add --name lxc-token-user --quiet 2>&1 | tail -1)
	expect_match "lxc config trust add prints a token" "$token" '^[A-Za-z0-9+/=]{100,}$'
	expect_match "lxc config trust list-tokens shows it" "$(lxc config trust list-tokens --format csv)" "^lxc-token-user,$token,"
	export LXD_CONF=$TEST_DIR/lxcconf2
	check "lxc remote add r2 TOKEN" lxc remote add r2 "$token"
	expect_eq "lxc list r2:" "$(lxc list r2: --format csv -c n 2>&1)" ""
	expect_match "lxc info r2:" "$(lxc info r2: 2>&1)" "auth: trusted"
	export LXD_CONF=$TEST_DIR/lxcconf3
	check_fails "lxc remote add r3 with the used token fails" lxc remote add r3 "$token"
	export LXD_CONF=$TEST_DIR/lxcconf
	expect_match "lxc config trust list shows the clients" "$(lxc config trust list --format csv)" "lxc-token-user"
	unset LXD_CONF
else
	echo "ok - $TEST_NAME: # SKIP lxc (lxd-client) is not installed"
fi

# --- moving, closing, and keeping the listener across restarts
NEW_PORT=$(free_port $((HTTPS_PORT + 2)))
expect_eq "moving the listener" "$(https_listen "[::1]:$NEW_PORT")" ""
expect_eq "... the new address answers" "$(curl -sk -o /dev/null -w '%{http_code}' "https://[::1]:$NEW_PORT/1.0")" 200
expect_eq "... the old one is closed" "$(https_code GET /1.0)" 000
expect_eq "... GET /1.0 lists the new address" "$(https --as alice GET /1.0 2>/dev/null; api GET /1.0 | jq -c .metadata.environment.addresses)" \
	"[\"[::1]:$NEW_PORT\"]"
expect_eq "unsetting closes it" "$(https_listen "")" ""
expect_eq "... nothing answers" "$(curl -sk -o /dev/null -w '%{http_code}' "https://[::1]:$NEW_PORT/1.0")" 000
expect_eq "a token needs a listener: 400" "$(json POST /1.0/certificates '{"name":"x","token":true,"type":"client"}' | jq -r .error_code)" 400
https_listen "127.0.0.1:$HTTPS_PORT" >/dev/null
key_before=$(sha256sum <"$FERRY_DIR/server.key")
kill -TERM "$FERRYD_PID"; wait "$FERRYD_PID" 2>/dev/null
core_start
expect_eq "after a restart the listener is back" "$(https --as alice GET /1.0 | jq -r .metadata.auth)" trusted
expect_eq "... with the same key" "$(sha256sum <"$FERRY_DIR/server.key")" "$key_before"
expect_eq "':PORT' listens on every address" "$(https_listen ":$HTTPS_PORT")" ""
expect_eq "... reachable on 127.0.0.1" "$(https --as alice GET /1.0 | jq -r .metadata.auth)" trusted
expect_eq "... and on ::1" "$(curl -sk -o /dev/null -w '%{http_code}' "https://[::1]:$HTTPS_PORT/1.0")" 200
check_fails "... addresses list no loopback" grep -q '127.0.0.1' <<<"$(api GET /1.0 | jq -c .metadata.environment.addresses)"
