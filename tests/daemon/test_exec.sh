#!/usr/bin/env bash
# Commands in a running container: recorded output, exit codes,
# environment, cwd, user; streamed I/O over websockets as lxc does it.
. "$(dirname "$0")/../lib.sh"
# The REST API over ferryd's unix socket (the CLI is tested on its own).
api() {
	local method=$1 path=$2
	if [ $# -ge 3 ]; then
		curl -s --unix-socket "$FERRY_DIR/unix.socket" -X "$method" -H 'Content-Type: application/json' \
			--data-binary "$3" "http://ferry$path"
	else
		curl -s --unix-socket "$FERRY_DIR/unix.socket" -X "$method" "http://ferry$path"
	fi
}
api_status() {
	curl -s -o /dev/null -w '%{http_code}' --unix-socket "$FERRY_DIR/unix.socket" -X "$1" \
		-H 'Content-Type: application/json' ${3+--data-binary "$3"} "http://ferry$2"
}
# An async request, waited for: prints the finished operation.
api_wait() {
	local resp op
	resp=$(api "$@")
	op=$(jq -r '.operation // empty' <<<"$resp")
	if [ -z "$op" ]; then
		jq -c '{status: "Failure", err: .error, status_code: .error_code}' <<<"$resp"
		return
	fi
	api GET "$op/wait?timeout=120" | jq -c .metadata
}

ferry_setup
chmod 711 "$TEST_DIR"
[ "$(api_status GET /1.0/images/aliases/busybox)" = 200 ] ||
	api_wait POST /1.0/images '{"source":{"type":"build","name":"busybox"},"aliases":[{"name":"busybox"}]}' >/dev/null
api_wait POST /1.0/instances '{"name":"x1","source":{"type":"image","alias":"busybox"}}' >/dev/null

# exec_rec COMMAND_JSON [EXTRA_FIELDS_JSON]: record-output exec, waited for.
exec_rec() {
	local body
	body=$(jq -nc --argjson cmd "$1" --argjson extra "${2:-{\}}" \
		'{"command": $cmd, "record-output": true, "wait-for-websocket": false} + $extra')
	api_wait POST /1.0/instances/x1/exec "$body"
}
# The recorded stdout (fd 1) or stderr (2) of a finished exec operation.
exec_output() {
	api GET "$(jq -r ".metadata.output[\"$2\"]" <<<"$1")"
}

expect_eq "exec in a stopped instance is 400" "$(api_status POST /1.0/instances/x1/exec '{"command":["true"]}')" 400
api_wait PUT /1.0/instances/x1/state '{"action":"start"}' >/dev/null

# --- record-output ---
op=$(exec_rec '["sh","-c","echo out; echo err >&2; exit 3"]')
expect_eq "the exit code is the command's" "$(jq -r .metadata.return <<<"$op")" 3
expect_eq "stdout is recorded" "$(exec_output "$op" 1)" "out"
expect_eq "stderr is recorded" "$(exec_output "$op" 2)" "err"
expect_match "the output is listed among the logs" "$(api GET /1.0/instances/x1/logs | jq -r '.metadata[]')" 'exec_.*\.stdout'
expect_eq "false returns 1" "$(exec_rec '["false"]' | jq -r .metadata.return)" 1
expect_eq "a killed command returns 128+9" "$(exec_rec '["sh","-c","kill -9 $$"]' | jq -r .metadata.return)" 137
expect_eq "without record-output the code still comes back" \
	"$(api_wait POST /1.0/instances/x1/exec '{"command":["sh","-c","exit 7"]}' | jq -r .metadata.return)" 7

# --- environment, cwd, user ---
env_out=$(exec_output "$(exec_rec '["env"]' '{"environment":{"FOO":"bar baz"}}')" 1)
expect_match "the request's environment is set" "$env_out" '^FOO=bar baz$'
expect_match "PATH defaults as LXD's" "$env_out" '^PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin$'
expect_match "HOME is /root" "$env_out" '^HOME=/root$'
expect_match "LANG is C.UTF-8" "$env_out" '^LANG=C.UTF-8$'
api PATCH /1.0/instances/x1 '{"config":{"environment.GREETING":"hi"}}' >/dev/null
expect_match "environment.* keys reach exec" "$(exec_output "$(exec_rec '["env"]')" 1)" '^GREETING=hi$'
expect_eq "cwd" "$(exec_output "$(exec_rec '["pwd"]' '{"cwd":"/tmp"}')" 1)" "/tmp"
expect_eq "user and group" "$(exec_output "$(exec_rec '["sh","-c","echo $(id -u):$(id -g)"]' '{"user":1000,"group":1000}')" 1)" "1000:1000"
pid_sid=$(exec_output "$(exec_rec '["sh","-c","echo $$ $(cut -d\" \" -f6 /proc/$$/stat)"]')" 1)
expect_eq "the command is a session leader inside the container" "$(awk '{print $1}' <<<"$pid_sid")" "$(awk '{print $2}' <<<"$pid_sid")"
expect_eq "exec sees the container's pid 1 as init" "$(exec_output "$(exec_rec '["cat","/proc/1/comm"]')" 1)" "init"

# --- websockets ---
cat >"$TEST_DIR/wsexec.py" <<'EOF'
# A small websocket exec client (stdlib only), as lxc does it: POST exec,
# connect control first, then the data sockets; send stdin then an empty
# text message; read output until an empty text message; wait for the op.
import base64, json, os, socket, struct, sys

sock_path, instance, body, stdin_data = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4].encode()

def http(method, path, payload=None):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    data = json.dumps(payload).encode() if payload is not None else b""
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: ferry\r\nContent-Type: application/json\r\n"
              f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
    resp = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        resp += chunk
    s.close()
    head, _, rest = resp.partition(b"\r\n\r\n")
    if b"chunked" in head.lower():
        out = b""
        while rest:
            size, _, rest = rest.partition(b"\r\n")
            n = int(size, 16)
            if n == 0:
                break
            out += rest[:n]
            rest = rest[n + 2:]
        rest = out
    return json.loads(rest)

class WS:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(sock_path)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall(f"GET {path} HTTP/1.1\r\nHost: ferry\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            c = self.s.recv(1)
            if not c:
                raise SystemExit("websocket upgrade failed")
            buf += c
        if b" 101 " not in buf.split(b"\r\n")[0]:
            raise SystemExit("websocket upgrade refused: " + buf.decode(errors="replace"))
        self.buf = b""

    def send(self, opcode, payload):
        mask = os.urandom(4)
        n = len(payload)
        hdr = bytes([0x80 | opcode])
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            hdr += bytes([0x80 | 127]) + struct.pack(">Q", n)
        self.s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _read(self, n):
        while len(self.buf) < n:
            c = self.s.recv(65536)
            if not c:
                raise EOFError
            self.buf += c
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        """(opcode, payload) of the next data message; (8, b"") on close."""
        data, first_op = b"", None
        while True:
            b0, b1 = self._read(2)
            op, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if op == 8:
                return 8, b""
            if op == 9:
                self.send(10, payload)
                continue
            if op == 10:
                continue
            if op != 0:
                first_op = op
            data += payload
            if b0 & 0x80:
                return first_op, data

    def read_stream(self):
        out = b""
        while True:
            try:
                op, data = self.recv()
            except EOFError:
                return out, "eof"
            if op == 8:
                return out, "close"
            if op == 1:
                return out, "barrier"
            out += data

resp = http("POST", f"/1.0/instances/{instance}/exec", body)
op = resp["metadata"]
fds = op["metadata"]["fds"]
url = lambda fd: f"/1.0/operations/{op['id']}/websocket?secret={fds[fd]}"
control = WS(url("control"))
result = {}
if body.get("interactive"):
    ws0 = WS(url("0"))
    if stdin_data:
        ws0.send(2, stdin_data)
    result["stdout"], result["end"] = ws0.read_stream()
else:
    ws0, ws1, ws2 = WS(url("0")), WS(url("1")), WS(url("2"))
    if stdin_data:
        ws0.send(2, stdin_data)
    ws0.send(1, b"")  # stdin EOF
    result["stdout"], result["end"] = ws1.read_stream()
    result["stderr"], _ = ws2.read_stream()
done = http("GET", f"/1.0/operations/{op['id']}/wait?timeout=30")
result["status"] = done["metadata"]["status"]
result["return"] = (done["metadata"]["metadata"] or {}).get("return")
result = {k: v.decode(errors="replace") if isinstance(v, bytes) else v for k, v in result.items()}
print(json.dumps(result))
EOF
wsexec() { timeout 60 python3 "$TEST_DIR/wsexec.py" "$FERRY_DIR/unix.socket" x1 "$1" "${2-}"; }

out=$(wsexec '{"command":["sh","-c","cat; echo to-err >&2; exit 4"],"wait-for-websocket":true,"interactive":false}' $'hello\nworld\n')
expect_eq "websocket exec: stdin reaches the command and stdout comes back" "$(jq -c .stdout <<<"$out")" '"hello\nworld\n"'
expect_eq "websocket exec: stderr comes back apart" "$(jq -c .stderr <<<"$out")" '"to-err\n"'
expect_eq "websocket exec: the output ends with an empty text message" "$(jq -r .end <<<"$out")" "barrier"
expect_eq "websocket exec: the operation succeeds with the exit code" "$(jq -r '"\(.status) \(.return)"' <<<"$out")" "Success 4"
big=$(wsexec '{"command":["sh","-c","head -c 300000 /dev/zero | tr \"\\\\0\" x"],"wait-for-websocket":true}' "")
expect_eq "websocket exec: 300 kB of output arrive whole" "$(jq -r '.stdout | length' <<<"$big")" 300000
out=$(wsexec '{"command":["sh"],"wait-for-websocket":true,"interactive":true,"environment":{"TERM":"xterm"},"width":100,"height":30}' \
	$'stty size; tty; exit 5\n')
expect_match "interactive exec: a pty with the requested size" "$(jq -r .stdout <<<"$out")" '30 100'
expect_match "interactive exec: the pty is the container's" "$(jq -r .stdout <<<"$out")" '/dev/pts/[0-9]+'
expect_eq "interactive exec: the exit code" "$(jq -r '"\(.status) \(.return)"' <<<"$out")" "Success 5"

api_wait PUT /1.0/instances/x1/state '{"action":"stop","force":true}' >/dev/null
expect_eq "delete x1" "$(api_wait DELETE /1.0/instances/x1 | jq -r .status)" "Success"
