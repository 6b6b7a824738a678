#!/usr/bin/python3
"""test_pylxd.sh's client: what a pylxd user does first, with Debian 12's
pylxd (2.2.10, /1.0/containers) on ferryd's unix socket (LXD_DIR). Prints
one line per step for the test to check."""
import pylxd

c = pylxd.Client()
print("api", c.host_info["api_version"], "trusted", c.trusted)
ct = c.containers.create({"name": "p1", "source": {"type": "image", "alias": "busybox"}}, wait=True)
print("created", ct.name, ct.status)
ct.start(wait=True)
ct.sync()
print("started", ct.status)
r = ct.execute(["sh", "-c", "echo out; echo err >&2; exit 3"])
print("exec", r.exit_code, repr(r.stdout), repr(r.stderr))
ct.files.put("/root/x", b"data\n")
print("file", repr(ct.files.get("/root/x")))
ct.snapshots.create("s1", wait=True)
print("snapshots", " ".join(s.name for s in ct.snapshots.all()))
st = ct.state()
print("state", st.status, " ".join(sorted(st.network or {})))
ct.stop(wait=True)
ct.sync()
print("stopped", ct.status)
ct.delete(wait=True)
print("left", " ".join(x.name for x in c.containers.all()))
