#!/usr/bin/env python3
"""A minimal websocket client over ferryd's unix socket, for the tests
(stdlib only). Prints each text message it receives on its own line.

    ws_client.py SOCKET PATH [--count N] [--timeout S] [--ready FILE]

--ready: touch FILE once the upgrade succeeded (so a test knows it listens).
Exits 0 after N messages (or on close when N is not given), 1 on timeout,
2 when the upgrade is refused (the HTTP status line goes to stderr).
"""
import argparse
import base64
import hashlib
import os
import socket
import struct
import sys
import time


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("socket")
    ap.add_argument("path")
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--ready")
    args = ap.parse_args()

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(args.socket)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {args.path} HTTP/1.1\r\nHost: ferry\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            print("connection closed during the handshake", file=sys.stderr)
            return 2
        head += chunk
    lines = head.decode().split("\r\n")
    if " 101 " not in lines[0]:
        print(lines[0], file=sys.stderr)
        return 2
    expect = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    accept = [l.split(":", 1)[1].strip() for l in lines if l.lower().startswith("sec-websocket-accept:")]
    if accept != [expect]:
        print(f"bad Sec-WebSocket-Accept: {accept} (expected {expect})", file=sys.stderr)
        return 2
    if args.ready:
        open(args.ready, "w").close()

    deadline = time.monotonic() + args.timeout
    received = 0
    message = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return 1
        sock.settimeout(left)
        try:
            b0, b1 = recv_exact(sock, 2)
            if b1 & 0x80:
                print("server frame is masked", file=sys.stderr)
                return 3
            length = b1 & 0x7F
            if length == 126:
                length = struct.unpack(">H", recv_exact(sock, 2))[0]
            elif length == 127:
                length = struct.unpack(">Q", recv_exact(sock, 8))[0]
            payload = recv_exact(sock, length)
        except socket.timeout:
            return 1
        except EOFError:
            return 0 if args.count == 0 else 1
        opcode = b0 & 0x0F
        if opcode == 8:
            return 0 if args.count == 0 else 1
        if opcode in (0, 1, 2):
            message += payload
            if b0 & 0x80:
                print(message.decode(errors="replace"), flush=True)
                message = b""
                received += 1
                if args.count and received >= args.count:
                    # A masked close frame, as a client must send.
                    mask = os.urandom(4)
                    body = struct.pack(">H", 1000)
                    sock.sendall(bytes([0x88, 0x80 | len(body)]) + mask +
                                 bytes(b ^ mask[i % 4] for i, b in enumerate(body)))
                    return 0


if __name__ == "__main__":
    sys.exit(main())
