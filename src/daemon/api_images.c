/* /1.0/images and /1.0/images/aliases: the image store (image.h) with its
 * records and aliases in the database. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "daemon/daemon.h"
#include "daemon/db.h"
#include "daemon/events.h"
#include "daemon/operations.h"
#include "daemon/request.h"
#include "image/image.h"

/* LXD's "never" (Go's zero time). */
#define TIME_NEVER "0001-01-01T00:00:00Z"

static void db_image_clearp(struct db_image *img)
{
	db_image_clear(img);
}
#define cleanup_db_image __attribute__((cleanup(db_image_clearp)))

static void image_info_clearp(struct image_info *info)
{
	image_info_free(info);
}
#define cleanup_image_info __attribute__((cleanup(image_info_clearp)))

static char *time_now_rfc3339(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return time_rfc3339(&now);
}

static json_t *image_json(const struct db_image *img)
{
	json_t *aliases = NULL;
	if (db_alias_list_for(daemon_ctx->db, img->fingerprint, &aliases, NULL) < 0)
		aliases = json_array();
	return json_pack("{s:o, s:s, s:b, s:b, s:s, s:s, s:O, s:b, s:I, s:s, s:s, s:s, s:s, s:s, s:[s]}", "aliases",
			 aliases, "architecture", img->architecture, "auto_update", img->auto_update, "cached", 0,
			 "fingerprint", img->fingerprint, "filename", img->filename, "properties",
			 img->properties ? img->properties : json_object(), "public", img->public, "size",
			 (json_int_t)img->size, "type", "container", "created_at",
			 *img->created_at ? img->created_at : TIME_NEVER, "expires_at", TIME_NEVER, "last_used_at",
			 *img->last_used_at ? img->last_used_at : TIME_NEVER, "uploaded_at",
			 *img->uploaded_at ? img->uploaded_at : TIME_NEVER, "profiles", "default");
}

/* Record a stored image in the database. *existed: it already was. */
static int image_register(const struct image_info *info, bool public, const char *filename, bool *existed,
			  struct ferry_error **err)
{
	struct db_image old = { 0 };
	if (db_image_get(daemon_ctx->db, info->fingerprint, &old, NULL) == 0 &&
	    strcmp(old.fingerprint, info->fingerprint) == 0) {
		db_image_clear(&old);
		*existed = true;
		return 0;
	}
	db_image_clear(&old);
	*existed = false;
	struct timespec created = { .tv_sec = info->created_at };
	cleanup_free char *created_at = time_rfc3339(&created);
	cleanup_free char *uploaded_at = time_now_rfc3339();
	cleanup_free char *default_name = xasprintf("%.12s.tar.gz", info->fingerprint);
	json_t *properties = json_object();
	for (size_t i = 0; info->property_keys != NULL && info->property_keys[i] != NULL; i++)
		json_object_set_new(properties, info->property_keys[i], json_string(info->property_values[i]));
	struct db_image img = {
		.fingerprint = info->fingerprint,
		.filename = (char *)(filename && *filename ? filename : default_name),
		.size = info->size,
		.architecture = info->architecture ? info->architecture : "x86_64",
		.public = public,
		.created_at = created_at,
		.uploaded_at = uploaded_at,
		.last_used_at = "",
		.properties = properties,
	};
	int r = db_image_create(daemon_ctx->db, &img, err);
	json_decref(properties);
	if (r == 0) {
		cleanup_free char *url = xasprintf("/1.0/images/%s", info->fingerprint);
		events_lifecycle("image-created", url, NULL);
	}
	return r;
}

/* Aliases asked for with a new image: [{"name": ..., "description": ...}]. */
static int aliases_check(json_t *aliases, struct ferry_error **err)
{
	if (aliases == NULL || json_is_null(aliases))
		return 0;
	if (!json_is_array(aliases))
		return error_bad_request(err, "\"aliases\" must be a list of {\"name\", \"description\"}");
	size_t i;
	json_t *a;
	json_array_foreach(aliases, i, a) {
		const char *name = json_string_value(json_object_get(a, "name"));
		if (name == NULL || *name == '\0' || strchr(name, '/') != NULL)
			return error_bad_request(err, "Invalid alias name");
	}
	return 0;
}

/* Point each alias at fingerprint: new ones are created, existing ones moved
 * when move is set (a rebuild), else refused (409). */
static int aliases_apply(json_t *aliases, const char *fingerprint, bool move, struct ferry_error **err)
{
	size_t i;
	json_t *a;
	json_array_foreach(aliases, i, a) {
		const char *name = json_string_value(json_object_get(a, "name"));
		const char *description = json_string_value(json_object_get(a, "description"));
		cleanup_free char *target = NULL;
		if (db_alias_get(daemon_ctx->db, name, &target, NULL, NULL) == 0) {
			if (strcmp(target, fingerprint) == 0)
				continue;
			if (!move)
				return error_conflict(err, "Alias \"%s\" already exists", name);
			if (db_alias_update(daemon_ctx->db, name, fingerprint, description ? description : "", err) < 0)
				return -1;
			continue;
		}
		if (db_alias_create(daemon_ctx->db, name, fingerprint, description ? description : "", err) < 0)
			return -1;
	}
	return 0;
}

/* Operations whose work was done before the response: report the result. */
static int image_done_run(struct operation *op, void *data, struct ferry_error **err)
{
	operation_set_metadata(op, json_incref(data));
	return 0;
}

static void json_free_data(void *data)
{
	json_decref(data);
}

static struct response *image_done_async(const char *description, const struct db_image *img)
{
	json_t *metadata = json_pack("{s:s, s:I}", "fingerprint", img->fingerprint, "size", (json_int_t)img->size);
	json_t *resources = json_pack("{s:[o]}", "images", json_sprintf("/1.0/images/%s", img->fingerprint));
	struct operation *op =
		operation_new(OPERATION_TASK, description, resources, image_done_run, NULL, metadata, json_free_data);
	operation_start(op);
	struct response *resp = response_async(op);
	operation_unref(op);
	return resp;
}

struct image_build {
	char *name;
	json_t *aliases;
};

static void image_build_free(void *data)
{
	struct image_build *b = data;
	free(b->name);
	json_decref(b->aliases);
	free(b);
}

static int image_build_run(struct operation *op, void *data, struct ferry_error **err)
{
	struct image_build *b = data;
	cleanup_image_info struct image_info info = { 0 };
	int r;
	if (strcmp(b->name, "busybox") == 0)
		r = image_build_busybox(daemon_ctx->images_dir, &info, err);
	else
		r = image_build_debian(daemon_ctx->images_dir, daemon_ctx->cache_dir, &info, err);
	if (r < 0)
		return error_wrap(err, "build image %s", b->name);
	bool existed;
	cleanup_free char *filename = xasprintf("%s.tar.gz", b->name);
	if (image_register(&info, false, filename, &existed, err) < 0)
		return error_wrap(err, "build image %s", b->name);
	/* A rebuild takes its aliases over to the new image. */
	if (aliases_apply(b->aliases, info.fingerprint, true, err) < 0)
		return error_wrap(err, "build image %s", b->name);
	operation_set_metadata(op, json_pack("{s:s, s:I}", "fingerprint", info.fingerprint, "size",
					     (json_int_t)info.size));
	log_info("image %s built: %s", b->name, info.fingerprint);
	return 0;
}

/* A fingerprint (or unique prefix) or an alias, to the image's record. */
static int image_resolve(const char *name, struct db_image *img, struct ferry_error **err)
{
	cleanup_free char *target = NULL;
	if (db_alias_get(daemon_ctx->db, name, &target, NULL, NULL) == 0)
		return db_image_get(daemon_ctx->db, target, img, err);
	return db_image_get(daemon_ctx->db, name, img, err);
}

static struct response *images_post_json(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	json_t *source = json_object_get(req->body, "source");
	json_t *aliases = json_object_get(req->body, "aliases");
	const char *type = json_string_value(json_object_get(source, "type"));
	if (!json_is_object(source) || type == NULL)
		return response_error(400, "Missing image source (\"source\": {\"type\": ...})");
	if (aliases_check(aliases, &err) < 0)
		return response_from_error(err);

	if (strcmp(type, "build") == 0) {
		/* ferry's own images, built on this host */
		const char *name = json_string_value(json_object_get(source, "name"));
		if (name == NULL || (strcmp(name, "busybox") != 0 && strcmp(name, "debian") != 0))
			return response_error(400, "Unknown image to build: %s (busybox or debian)",
					      name ? name : "(none)");
		struct image_build *b = xcalloc(1, sizeof(*b));
		b->name = xstrdup(name);
		b->aliases = aliases ? json_incref(aliases) : json_array();
		cleanup_free char *description = xasprintf("Building image %s", name);
		struct operation *op = operation_new(OPERATION_TASK, description, NULL, image_build_run, NULL, b,
						     image_build_free);
		operation_start(op);
		struct response *resp = response_async(op);
		operation_unref(op);
		return resp;
	}
	if (strcmp(type, "image") == 0) {
		const char *server = json_string_value(json_object_get(source, "server"));
		if (server != NULL && *server != '\0')
			return response_error(400, "Images from other servers are not supported yet");
		const char *name = json_string_value(json_object_get(source, "fingerprint"));
		if (name == NULL || *name == '\0')
			name = json_string_value(json_object_get(source, "alias"));
		if (name == NULL || *name == '\0')
			return response_error(400, "Missing source fingerprint or alias");
		cleanup_db_image struct db_image img = { 0 };
		if (image_resolve(name, &img, &err) < 0)
			return response_from_error(err);
		/* A local copy of a local image: only the aliases are new. */
		if (aliases != NULL && aliases_apply(aliases, img.fingerprint, false, &err) < 0)
			return response_from_error(err);
		return image_done_async("Copying image", &img);
	}
	return response_error(400, "Unsupported image source type: %s", type);
}

/* The body as an fd: the spooled file, or a memfd for a small body. */
static int request_body_fd(struct request *req, struct ferry_error **err)
{
	if (req->body_file != NULL) {
		int fd = open(req->body_file, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return error_sys(err, errno, "open the uploaded body");
		return fd;
	}
	int fd = memfd_create("ferry-upload", MFD_CLOEXEC);
	if (fd < 0)
		return error_sys(err, errno, "memfd_create");
	for (size_t done = 0; done < req->raw_len;) {
		ssize_t w = write(fd, req->raw_body + done, req->raw_len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			int e = errno;
			close(fd);
			return error_sys(err, e, "write the uploaded body");
		}
		done += w;
	}
	return fd;
}

static bool header_true(const char *v)
{
	return v != NULL && (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0);
}

/* A unified tarball as the body: imported before the answer, so a bad one
 * gets a 400 at once; the operation only reports the result. */
static struct response *images_post_upload(struct request *req)
{
	const char *type = request_header(req, "Content-Type");
	if (type != NULL && strncasecmp(type, "multipart/", 10) == 0)
		return response_error(400, "Split images (metadata and rootfs apart) are not supported: "
					   "upload a unified tarball");
	cleanup_error struct ferry_error *err = NULL;
	cleanup_close int fd = request_body_fd(req, &err);
	if (fd < 0)
		return response_from_error(err);
	cleanup_image_info struct image_info info = { 0 };
	if (image_import_fd(daemon_ctx->images_dir, fd, &info, &err) < 0) {
		if (err->status == 500 && err->errnum == 0)
			err->status = 400;
		return response_from_error(err);
	}
	bool existed;
	if (image_register(&info, header_true(request_header(req, "X-LXD-public")),
			   request_header(req, "X-LXD-filename"), &existed, &err) < 0)
		return response_from_error(err);
	if (existed)
		return response_error(409, "Image with same fingerprint already exists");
	cleanup_db_image struct db_image img = { 0 };
	if (db_image_get(daemon_ctx->db, info.fingerprint, &img, &err) < 0)
		return response_from_error(err);
	log_info("image %s imported", info.fingerprint);
	return image_done_async("Uploading image", &img);
}

static struct response *images_post(struct request *req)
{
	if (req->body != NULL)
		return images_post_json(req);
	if (req->body_file != NULL || req->raw_len > 0)
		return images_post_upload(req);
	return response_error(400, "Expected an image source (JSON) or a tarball as the body");
}

static struct response *images_get(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	json_t *fingerprints = NULL;
	if (db_image_list(daemon_ctx->db, &fingerprints, &err) < 0)
		return response_from_error(err);
	bool recursive = request_recursion(req) > 0;
	json_t *list = json_array();
	size_t i;
	json_t *fp;
	json_array_foreach(fingerprints, i, fp) {
		if (!recursive) {
			json_array_append_new(list, json_sprintf("/1.0/images/%s", json_string_value(fp)));
			continue;
		}
		cleanup_db_image struct db_image img = { 0 };
		if (db_image_get(daemon_ctx->db, json_string_value(fp), &img, NULL) == 0)
			json_array_append_new(list, image_json(&img));
	}
	json_decref(fingerprints);
	return response_sync(list);
}

static struct response *image_get(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	cleanup_db_image struct db_image img = { 0 };
	if (db_image_get(daemon_ctx->db, req->params[0], &img, &err) < 0)
		return response_from_error(err);
	return response_sync(image_json(&img));
}

/* PUT replaces the editable fields (public, auto_update, properties), PATCH merges. */
static struct response *image_update(struct request *req, bool replace)
{
	if (!json_is_object(req->body))
		return response_error(400, "Expected a JSON object");
	cleanup_error struct ferry_error *err = NULL;
	cleanup_db_image struct db_image img = { 0 };
	if (db_image_get(daemon_ctx->db, req->params[0], &img, &err) < 0)
		return response_from_error(err);
	json_t *public = json_object_get(req->body, "public");
	json_t *auto_update = json_object_get(req->body, "auto_update");
	json_t *properties = json_object_get(req->body, "properties");
	if ((public && !json_is_boolean(public)) || (auto_update && !json_is_boolean(auto_update)) ||
	    (properties && !json_is_null(properties) && !json_is_object(properties)))
		return response_error(400, "Invalid image fields: public and auto_update are booleans, "
					   "properties an object of strings");
	const char *key;
	json_t *value;
	json_object_foreach(properties, key, value)
		if (!json_is_string(value))
			return response_error(400, "Image property \"%s\" must be a string", key);
	if (public || replace)
		img.public = json_is_true(public);
	if (auto_update || replace)
		img.auto_update = json_is_true(auto_update);
	if (replace) {
		json_decref(img.properties);
		img.properties = json_is_object(properties) ? json_deep_copy(properties) : json_object();
	} else if (json_is_object(properties)) {
		json_object_update(img.properties, properties);
	}
	if (db_image_update(daemon_ctx->db, &img, &err) < 0)
		return response_from_error(err);
	return response_sync(NULL);
}

static struct response *image_put(struct request *req)
{
	return image_update(req, true);
}

static struct response *image_patch(struct request *req)
{
	return image_update(req, false);
}

static struct response *image_delete(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	cleanup_db_image struct db_image img = { 0 };
	if (db_image_get(daemon_ctx->db, req->params[0], &img, &err) < 0)
		return response_from_error(err);
	/* The record goes first (with its aliases): a file left behind is harmless. */
	if (db_image_delete(daemon_ctx->db, img.fingerprint, &err) < 0)
		return response_from_error(err);
	if (image_remove(daemon_ctx->images_dir, img.fingerprint, &err) < 0 && err->status != 404)
		log_warn("delete image %s: %s", img.fingerprint, err->msg);
	cleanup_free char *url = xasprintf("/1.0/images/%s", img.fingerprint);
	events_lifecycle("image-deleted", url, NULL);
	log_info("image %s deleted", img.fingerprint);
	return image_done_async("Deleting image", &img);
}

static struct response *image_export(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	cleanup_db_image struct db_image img = { 0 };
	if (db_image_get(daemon_ctx->db, req->params[0], &img, &err) < 0)
		return response_from_error(err);
	cleanup_image_info struct image_info info = { 0 };
	if (image_stat(daemon_ctx->images_dir, img.fingerprint, &info, &err) < 0)
		return response_from_error(err);
	int fd = open(info.path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return response_error(500, "open %s: %s", info.path, strerror(e));
	}
	struct response *resp = response_fd(200, "application/octet-stream", fd, st.st_size);
	cleanup_free char *disposition = xasprintf("attachment; filename=%s", img.filename);
	response_add_header(resp, "Content-Disposition", disposition);
	return resp;
}

/* Aliases */

static json_t *alias_json(const char *name, const char *target, const char *description)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "name", name, "description", description, "target", target, "type",
			 "container");
}

static bool alias_name_valid(const char *name)
{
	return name != NULL && *name != '\0' && strchr(name, '/') == NULL;
}

static struct response *aliases_get(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	json_auto_t *names = NULL;
	if (db_alias_list(daemon_ctx->db, &names, &err) < 0)
		return response_from_error(err);
	bool recursive = request_recursion(req) > 0;
	json_t *list = json_array();
	size_t i;
	json_t *name;
	json_array_foreach(names, i, name) {
		const char *n = json_string_value(name);
		if (!recursive) {
			json_array_append_new(list, json_sprintf("/1.0/images/aliases/%s", n));
			continue;
		}
		cleanup_free char *target = NULL, *description = NULL;
		if (db_alias_get(daemon_ctx->db, n, &target, &description, NULL) == 0)
			json_array_append_new(list, alias_json(n, target, description));
	}
	return response_sync(list);
}

static struct response *aliases_post(struct request *req)
{
	const char *name = json_string_value(json_object_get(req->body, "name"));
	const char *target = json_string_value(json_object_get(req->body, "target"));
	const char *description = json_string_value(json_object_get(req->body, "description"));
	if (!alias_name_valid(name))
		return response_error(400, "Invalid alias name");
	if (target == NULL || *target == '\0')
		return response_error(400, "Missing alias target");
	cleanup_error struct ferry_error *err = NULL;
	cleanup_db_image struct db_image img = { 0 };
	if (db_image_get(daemon_ctx->db, target, &img, &err) < 0)
		return response_from_error(err);
	if (db_alias_create(daemon_ctx->db, name, img.fingerprint, description ? description : "", &err) < 0)
		return response_from_error(err);
	struct response *resp = response_sync(NULL);
	cleanup_free char *url = xasprintf("/1.0/images/aliases/%s", name);
	response_add_header(resp, "Location", url);
	return resp;
}

static struct response *alias_get(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	cleanup_free char *target = NULL, *description = NULL;
	if (db_alias_get(daemon_ctx->db, req->params[0], &target, &description, &err) < 0)
		return response_from_error(err);
	return response_sync(alias_json(req->params[0], target, description));
}

/* PUT: target and description; PATCH: either. */
static struct response *alias_update(struct request *req, bool replace)
{
	if (!json_is_object(req->body))
		return response_error(400, "Expected a JSON object");
	cleanup_error struct ferry_error *err = NULL;
	cleanup_free char *target = NULL, *description = NULL;
	if (db_alias_get(daemon_ctx->db, req->params[0], &target, &description, &err) < 0)
		return response_from_error(err);
	const char *new_target = json_string_value(json_object_get(req->body, "target"));
	const char *new_description = json_string_value(json_object_get(req->body, "description"));
	if (replace && (new_target == NULL || *new_target == '\0'))
		return response_error(400, "Missing alias target");
	cleanup_db_image struct db_image img = { 0 };
	if (db_image_get(daemon_ctx->db, new_target && *new_target ? new_target : target, &img, &err) < 0)
		return response_from_error(err);
	const char *desc = new_description ? new_description : replace ? "" : description;
	if (db_alias_update(daemon_ctx->db, req->params[0], img.fingerprint, desc, &err) < 0)
		return response_from_error(err);
	return response_sync(NULL);
}

static struct response *alias_put(struct request *req)
{
	return alias_update(req, true);
}

static struct response *alias_patch(struct request *req)
{
	return alias_update(req, false);
}

static struct response *alias_rename(struct request *req)
{
	const char *name = json_string_value(json_object_get(req->body, "name"));
	if (!alias_name_valid(name))
		return response_error(400, "Invalid alias name");
	cleanup_error struct ferry_error *err = NULL;
	if (db_alias_rename(daemon_ctx->db, req->params[0], name, &err) < 0)
		return response_from_error(err);
	struct response *resp = response_sync(NULL);
	cleanup_free char *url = xasprintf("/1.0/images/aliases/%s", name);
	response_add_header(resp, "Location", url);
	return resp;
}

static struct response *alias_delete(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	if (db_alias_delete(daemon_ctx->db, req->params[0], &err) < 0)
		return response_from_error(err);
	return response_sync(NULL);
}

const struct route api_images_routes[] = {
	{ "GET", "/1.0/images", images_get },
	{ "POST", "/1.0/images", images_post },
	{ "GET", "/1.0/images/aliases", aliases_get },
	{ "POST", "/1.0/images/aliases", aliases_post },
	{ "GET", "/1.0/images/aliases/{name}", alias_get },
	{ "PUT", "/1.0/images/aliases/{name}", alias_put },
	{ "PATCH", "/1.0/images/aliases/{name}", alias_patch },
	{ "POST", "/1.0/images/aliases/{name}", alias_rename },
	{ "DELETE", "/1.0/images/aliases/{name}", alias_delete },
	{ "GET", "/1.0/images/{fingerprint}", image_get },
	{ "PUT", "/1.0/images/{fingerprint}", image_put },
	{ "PATCH", "/1.0/images/{fingerprint}", image_patch },
	{ "DELETE", "/1.0/images/{fingerprint}", image_delete },
	{ "GET", "/1.0/images/{fingerprint}/export", image_export },
	{ NULL },
};
