#!/usr/bin/env python3
"""One HTTPS keep-alive connection to ferryd with a client certificate:
GET /1.0, then wait until GO_FILE exists, then GET /1.0/instances and
GET /1.0 on the same connection. Prints one line per request:
"<local port> <HTTP status> <auth or error>", so the caller sees that the
connection stayed the same while its trust changed.

usage: https_keepalive.py PORT CERT KEY READY_FILE GO_FILE
"""
import http.client
import json
import os
import ssl
import sys
import time

port, cert, key, ready_file, go_file = sys.argv[1:6]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.load_cert_chain(cert, key)
conn = http.client.HTTPSConnection("127.0.0.1", int(port), context=ctx, timeout=20)


def get(path):
    conn.request("GET", path, headers={"Connection": "keep-alive"})
    resp = conn.getresponse()
    body = json.loads(resp.read() or b"{}")
    local_port = conn.sock.getsockname()[1]
    meta = body.get("metadata")
    what = meta.get("auth") if isinstance(meta, dict) and "auth" in meta else body.get("error") or "ok"
    print(local_port, resp.status, what, flush=True)


get("/1.0")
open(ready_file, "w").close()
deadline = time.time() + 20
while not os.path.exists(go_file) and time.time() < deadline:
    time.sleep(0.05)
get("/1.0/instances")
get("/1.0")
