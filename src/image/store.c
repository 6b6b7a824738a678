/* The image store: STORE/FINGERPRINT is the unified tarball, named by its
 * sha256; STORE/FINGERPRINT.info holds what image_stat returns (JSON:
 * architecture, created_at, properties), so a stat does not unpack. */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "image/image_internal.h"

void image_info_free(struct image_info *info)
{
	if (info == NULL)
		return;
	free(info->fingerprint);
	free(info->path);
	free(info->architecture);
	strv_free(info->property_keys);
	strv_free(info->property_values);
	memset(info, 0, sizeof(*info));
}

static bool fingerprint_valid(const char *fingerprint)
{
	if (fingerprint == NULL || strlen(fingerprint) != 64)
		return false;
	return strspn(fingerprint, "0123456789abcdef") == 64;
}

static int hash_fd(int fd, const char *name, char out[65], struct ferry_error **err)
{
	if (lseek(fd, 0, SEEK_SET) < 0)
		return error_sys(err, errno, "seek %s", name);
	gnutls_hash_hd_t hash;
	if (gnutls_hash_init(&hash, GNUTLS_DIG_SHA256) < 0)
		return error_set(err, 500, 0, "sha256 not available");
	cleanup_free char *buf = malloc(1 << 20);
	unsigned char digest[32];
	if (buf == NULL)
		abort();
	for (;;) {
		ssize_t n = read(fd, buf, 1 << 20);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			gnutls_hash_deinit(hash, digest);
			return error_sys(err, e, "read %s", name);
		}
		if (n == 0)
			break;
		gnutls_hash(hash, buf, n);
	}
	gnutls_hash_deinit(hash, digest);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", digest[i]);
	return 0;
}

static int info_write(const char *store_dir, const char *fingerprint, const struct image_metadata *md,
		      struct ferry_error **err)
{
	json_t *properties = json_object();
	for (size_t i = 0; md->property_keys != NULL && md->property_keys[i] != NULL; i++)
		json_object_set_new(properties, md->property_keys[i], json_string(md->property_values[i]));
	json_t *info = json_pack("{s:s, s:I, s:o}", "architecture", md->architecture, "created_at",
				 (json_int_t)md->creation_date, "properties", properties);
	cleanup_free char *text = json_dumps(info, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	json_decref(info);
	cleanup_free char *path = xasprintf("%s/%s.info", store_dir, fingerprint);
	return file_write_atomic(path, text, strlen(text), 0644, err);
}

static int info_read(const char *store_dir, const char *fingerprint, struct image_metadata *md,
		     struct ferry_error **err)
{
	cleanup_free char *path = xasprintf("%s/%s.info", store_dir, fingerprint);
	json_error_t jerr;
	json_t *info = json_load_file(path, 0, &jerr);
	if (info == NULL)
		return error_set(err, 500, ENOENT, "%s: %s", path, jerr.text);
	const char *architecture = NULL;
	json_int_t created_at = 0;
	json_t *properties = NULL;
	int ret = 0;
	if (json_unpack(info, "{s:s, s:I, s:o}", "architecture", &architecture, "created_at", &created_at,
			"properties", &properties) < 0 ||
	    !json_is_object(properties)) {
		ret = error_set(err, 500, EINVAL, "%s: not an image info file", path);
	} else {
		md->architecture = xstrdup(architecture);
		md->creation_date = created_at;
		const char *key;
		json_t *value;
		json_object_foreach(properties, key, value)
			if (json_is_string(value))
				image_metadata_set_property(md, key, json_string_value(value));
	}
	json_decref(info);
	return ret;
}

static void info_fill(const char *store_dir, const char *fingerprint, const struct stat *st,
		      struct image_metadata *md, struct image_info *out)
{
	memset(out, 0, sizeof(*out));
	out->fingerprint = xstrdup(fingerprint);
	out->path = xasprintf("%s/%s", store_dir, fingerprint);
	out->size = st->st_size;
	out->architecture = steal_pointer(&md->architecture);
	out->created_at = md->creation_date;
	size_t n = strv_len(md->property_keys);
	out->property_keys = md->property_keys ? steal_pointer(&md->property_keys) : xcalloc(1, sizeof(char *));
	out->property_values =
		md->property_values ? steal_pointer(&md->property_values) : xcalloc(n + 1, sizeof(char *));
}

int image_store_tmpfile(const char *store_dir, char **path, struct ferry_error **err)
{
	if (mkdir_p(store_dir, 0700, err) < 0)
		return error_wrap(err, "image store");
	char *tmp = xasprintf("%s/.tmp-XXXXXX", store_dir);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		free(tmp);
		return error_sys(err, e, "create a temporary file in %s", store_dir);
	}
	close(fd);
	*path = tmp;
	return 0;
}

int image_store_add(const char *store_dir, const char *tmp_path, struct image_info *out, struct ferry_error **err)
{
	struct image_metadata md = {0};
	char fingerprint[65];
	int ret = -1;
	cleanup_free char *final = NULL;
	cleanup_close int fd = open(tmp_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		error_sys(err, errno, "open %s", tmp_path);
		goto out;
	}
	if (image_tarball_check(fd, "the tarball", &md, err) < 0 || hash_fd(fd, tmp_path, fingerprint, err) < 0)
		goto out;
	final = xasprintf("%s/%s", store_dir, fingerprint);
	struct stat st;
	if (stat(final, &st) == 0) {
		/* Same bytes already stored (a rebuild from the same inputs). */
		image_metadata_clear(&md);
		ret = image_stat(store_dir, fingerprint, out, err);
		goto out;
	}
	if (fchmod(fd, 0644) < 0) {
		error_sys(err, errno, "chmod %s", tmp_path);
		goto out;
	}
	/* The info first: a tarball in the store always has its info. */
	if (info_write(store_dir, fingerprint, &md, err) < 0)
		goto out;
	if (rename(tmp_path, final) < 0) {
		error_sys(err, errno, "rename %s to %s", tmp_path, final);
		goto out;
	}
	if (stat(final, &st) < 0) {
		error_sys(err, errno, "stat %s", final);
		goto out;
	}
	info_fill(store_dir, fingerprint, &st, &md, out);
	ret = 0;
out:
	unlink(tmp_path);
	image_metadata_clear(&md);
	return ret;
}

static int copy_fd(int from, int to, const char *name, struct ferry_error **err)
{
	cleanup_free char *buf = malloc(1 << 20);
	if (buf == NULL)
		abort();
	for (;;) {
		ssize_t n = read(from, buf, 1 << 20);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return error_sys(err, errno, "read the image");
		if (n == 0)
			return 0;
		for (ssize_t done = 0; done < n;) {
			ssize_t w = write(to, buf + done, n - done);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return error_sys(err, errno, "write %s", name);
			done += w;
		}
	}
}

int image_import_fd(const char *store_dir, int fd, struct image_info *out, struct ferry_error **err)
{
	cleanup_free char *tmp = NULL;
	if (image_store_tmpfile(store_dir, &tmp, err) < 0)
		return error_wrap(err, "import image");
	cleanup_close int tmp_fd = open(tmp, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (tmp_fd < 0) {
		int e = errno;
		unlink(tmp);
		return error_sys(err, e, "open %s", tmp);
	}
	/* A spooled upload may be left at its end; a pipe cannot seek and is read as is. */
	if (lseek(fd, 0, SEEK_SET) < 0 && errno != ESPIPE) {
		int e = errno;
		unlink(tmp);
		return error_sys(err, e, "seek the image");
	}
	if (copy_fd(fd, tmp_fd, tmp, err) < 0) {
		unlink(tmp);
		return error_wrap(err, "import image");
	}
	if (image_store_add(store_dir, tmp, out, err) < 0)
		return error_wrap(err, "import image");
	return 0;
}

int image_import(const char *store_dir, const char *tarball, struct image_info *out, struct ferry_error **err)
{
	cleanup_close int fd = open(tarball, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_sys(err, errno, "import image: open %s", tarball);
	return image_import_fd(store_dir, fd, out, err);
}

int image_stat(const char *store_dir, const char *fingerprint, struct image_info *out, struct ferry_error **err)
{
	if (!fingerprint_valid(fingerprint))
		return error_bad_request(err, "invalid image fingerprint '%s' (64 lowercase hex digits)",
					 fingerprint ? fingerprint : "");
	cleanup_free char *path = xasprintf("%s/%s", store_dir, fingerprint);
	struct stat st;
	if (stat(path, &st) < 0) {
		if (errno == ENOENT)
			return error_not_found(err, "image %s not found", fingerprint);
		return error_sys(err, errno, "stat %s", path);
	}
	struct image_metadata md = {0};
	cleanup_error struct ferry_error *info_err = NULL;
	if (info_read(store_dir, fingerprint, &md, &info_err) < 0) {
		/* Info lost or damaged: the tarball itself has the answer. */
		image_metadata_clear(&md);
		cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return error_sys(err, errno, "open %s", path);
		if (image_tarball_check(fd, path, &md, err) < 0)
			return error_wrap(err, "image %s", fingerprint);
		if (info_write(store_dir, fingerprint, &md, err) < 0) {
			image_metadata_clear(&md);
			return -1;
		}
	}
	info_fill(store_dir, fingerprint, &st, &md, out);
	image_metadata_clear(&md);
	return 0;
}

int image_remove(const char *store_dir, const char *fingerprint, struct ferry_error **err)
{
	if (!fingerprint_valid(fingerprint))
		return error_bad_request(err, "invalid image fingerprint '%s' (64 lowercase hex digits)",
					 fingerprint ? fingerprint : "");
	cleanup_free char *path = xasprintf("%s/%s", store_dir, fingerprint);
	cleanup_free char *info = xasprintf("%s/%s.info", store_dir, fingerprint);
	if (unlink(path) < 0) {
		if (errno == ENOENT)
			return error_not_found(err, "image %s not found", fingerprint);
		return error_sys(err, errno, "remove %s", path);
	}
	if (unlink(info) < 0 && errno != ENOENT)
		return error_sys(err, errno, "remove %s", info);
	return 0;
}
