/* Images: LXD-style unified tarballs (metadata.yaml + rootfs/) kept in a
 * store directory, built from Debian's busybox-static or by debootstrap,
 * imported, exported, and unpacked safely into a container's rootfs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/error.h"

struct image_info {
	char *fingerprint;   /* sha256 of the tarball, hex */
	char *path;          /* STORE/FINGERPRINT (the unified tarball) */
	long long size;      /* bytes */
	char *architecture;  /* "x86_64" */
	long long created_at;   /* unix seconds, from metadata.yaml creation_date */
	/* metadata.yaml's properties (os, release, description, ...), as
	 * NULL-terminated key/value arrays of the same length */
	char **property_keys;
	char **property_values;
};
void image_info_free(struct image_info *info);

/* Build the busybox image from the host's busybox-static (offline, seconds)
 * into the store: returns its info. */
int image_build_busybox(const char *store_dir, struct image_info *out, struct ferry_error **err);
/* Build Debian bookworm with debootstrap (minbase with systemd-sysv and a few
 * services' prerequisites) from the machine's own apt mirror; the debootstrap
 * tree is cached in cache_dir, so the second build takes seconds. */
int image_build_debian(const char *store_dir, const char *cache_dir, struct image_info *out,
		       struct ferry_error **err);

/* Import a unified tarball (any compression libarchive reads): check it is
 * one (metadata.yaml and rootfs/ present, no unsafe paths), copy it into the
 * store under its fingerprint. */
int image_import(const char *store_dir, const char *tarball, struct image_info *out, struct ferry_error **err);
/* Same from an open fd (an upload body spooled to disk). */
int image_import_fd(const char *store_dir, int fd, struct image_info *out, struct ferry_error **err);
/* Read an image's info back from the store. 404 when missing. */
int image_stat(const char *store_dir, const char *fingerprint, struct image_info *out, struct ferry_error **err);
int image_remove(const char *store_dir, const char *fingerprint, struct ferry_error **err);

/* Unpack an image's rootfs/ into dest (which must not exist or be empty),
 * adding uid_shift/gid_shift to every owner (0 for privileged). Refuses
 * entries that would escape dest (.., absolute paths, links pointing out
 * before a later entry goes through them); skips device nodes when shifting
 * (an unprivileged container gets its /dev from the runtime); keeps
 * setuid/setgid bits. */
int image_unpack_rootfs(const char *tarball, const char *dest, uid_t uid_shift, gid_t gid_shift,
			struct ferry_error **err);
/* Unpack over an existing tree (dest exists): entries replace what is
 * there, nothing else is touched; on failure dest is left as it got. The
 * same checks and shifting as image_unpack_rootfs. */
int image_unpack_update(const char *tarball, const char *dest, uid_t uid_shift, gid_t gid_shift,
			struct ferry_error **err);

/* Write a unified tarball (gzip) of rootfs_dir with a metadata.yaml built
 * from properties, subtracting the shift from owners (export of a container
 * or an image rebuilt from a directory). */
int image_pack_rootfs(const char *rootfs_dir, const char *out_tarball, uid_t uid_shift, gid_t gid_shift,
		      char **property_keys, char **property_values, struct ferry_error **err);
