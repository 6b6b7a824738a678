#!/usr/bin/env python3
"""Make the tarballs tests/image/test_image.sh feeds to the image code:
good ones with awkward entries, and hostile ones. Usage: mktar.py KIND OUT [ARG]"""
import io
import sys
import tarfile
import time

METADATA = b"architecture: x86_64\ncreation_date: 1700000000\nproperties:\n  os: test\n  release: \"1\"\n"


def entry(name, kind=tarfile.REGTYPE, mode=0o644, uid=0, gid=0, data=b"", linkname="", devmajor=0, devminor=0):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.mtime = int(time.time())
    info.linkname = linkname
    info.devmajor, info.devminor = devmajor, devminor
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, io.BytesIO(data) if kind == tarfile.REGTYPE else None


def unified(*entries, metadata=True):
    out = [entry("rootfs", tarfile.DIRTYPE, 0o755)]
    if metadata:
        out.insert(0, entry("metadata.yaml", data=METADATA))
    return out + list(entries)


def kinds(arg):
    return {
        # setuid/setgid files, a fifo, a device node, a hard link, and a file
        # whose parent directories have no entries of their own
        "special": unified(
            entry("rootfs/usr", tarfile.DIRTYPE, 0o755),
            entry("rootfs/usr/bin", tarfile.DIRTYPE, 0o755),
            entry("rootfs/usr/bin/setuid-tool", mode=0o4755, data=b"#!/bin/sh\n"),
            entry("rootfs/usr/bin/setgid-tool", mode=0o2755, gid=42, data=b"#!/bin/sh\n"),
            entry("rootfs/usr/bin/same-tool", tarfile.LNKTYPE, linkname="rootfs/usr/bin/setuid-tool"),
            entry("rootfs/fifo", tarfile.FIFOTYPE, 0o600),
            entry("rootfs/null", tarfile.CHRTYPE, 0o666, devmajor=1, devminor=3),
            entry("rootfs/implicit/deeper/file", data=b"x", uid=33, gid=33),
            entry("rootfs/big-id", data=b"x", uid=200000, gid=200000),
        ),
        "dotdot": unified(entry("rootfs/ok", data=b"ok"), entry("rootfs/../../" + arg, data=b"escaped")),
        "dotdot-top": unified(entry("../" + arg, data=b"escaped")),
        "absolute": unified(entry(arg, data=b"escaped")),
        "symlink": unified(
            entry("rootfs/link", tarfile.SYMTYPE, 0o777, linkname=arg),
            entry("rootfs/link/file", data=b"escaped"),
        ),
        "hardlink": unified(
            entry("rootfs/etc", tarfile.DIRTYPE, 0o755),
            entry("rootfs/etc/passwd-link", tarfile.LNKTYPE, linkname="../../etc/passwd"),
        ),
        "hardlink-via-symlink": unified(
            entry("rootfs/up", tarfile.SYMTYPE, 0o777, linkname="/"),
            entry("rootfs/passwd-link", tarfile.LNKTYPE, linkname="rootfs/up/etc/passwd"),
        ),
        "hardlink-absolute": unified(entry("rootfs/passwd-link", tarfile.LNKTYPE, linkname="/etc/passwd")),
        "no-metadata": unified(entry("rootfs/file", data=b"x"), metadata=False),
        "bad-metadata": [entry("metadata.yaml", data=b"architecture: [x86_64\n")] + unified(metadata=False),
        "stray": unified(entry("etc/passwd", data=b"x")),
    }


def main():
    kind, out = sys.argv[1], sys.argv[2]
    arg = sys.argv[3] if len(sys.argv) > 3 else ""
    if kind == "garbage":
        with open(out, "wb") as f:
            f.write(b"this is not a tarball \x00\x01\x02" * 200)
        return
    with tarfile.open(out, "w:gz", format=tarfile.GNU_FORMAT) as tar:
        for info, data in kinds(arg)[kind]:
            tar.addfile(info, data)


if __name__ == "__main__":
    main()
