/* The control messages of migrate.h, as JSON text frames. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "daemon/db_snapshots.h"
#include "daemon/tls.h"
#include "migrate/migrate.h"

static const char *const msg_type_names[] = {
	[MIGRATE_MSG_HEADER] = "header",
	[MIGRATE_MSG_RESULT] = "result",
	[MIGRATE_MSG_PATHS] = "paths",
	[MIGRATE_MSG_COMMIT] = "commit",
};

void migrate_header_clear(struct migrate_header *h)
{
	free(h->name);
	free(h->architecture);
	free(h->description);
	free(h->cpuinfo);
	json_decref(h->config);
	json_decref(h->devices);
	json_decref(h->profiles);
	json_decref(h->snapshots);
	memset(h, 0, sizeof(*h));
}

void migrate_result_clear(struct migrate_result *r)
{
	free(r->message);
	free(r->plan);
	memset(r, 0, sizeof(*r));
}

static int send_json(struct ws *ws, json_t *msg, struct ferry_error **err)
{
	char *text = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (text == NULL)
		return error_set(err, 500, ENOMEM, "encode a migration message");
	int r = ws_send(ws, WS_TEXT, text, strlen(text), err);
	free(text);
	return r;
}

/* The next message, checked to be of type want. */
static int recv_json(struct ws *ws, enum migrate_msg_type want, int timeout_ms, json_t **out,
		     struct ferry_error **err)
{
	enum ws_opcode op;
	char *data = NULL;
	size_t len = 0;
	int r = ws_recv(ws, &op, &data, &len, timeout_ms, err);
	if (r < 0)
		return error_wrap(err, "migration control stream");
	if (r == 0)
		return error_set(err, 502, EPIPE, "migration control stream: closed by the peer before the %s",
				 msg_type_names[want]);
	json_error_t jerr;
	json_t *msg = json_loadb(data, len, 0, &jerr);
	free(data);
	const char *type = json_string_value(json_object_get(msg, "type"));
	if (type == NULL || strcmp(type, msg_type_names[want]) != 0) {
		json_decref(msg);
		return error_set(err, 502, EPROTO, "migration control stream: expected a %s message, got %s",
				 msg_type_names[want], type ? type : "something else");
	}
	*out = msg;
	return 0;
}

static char *dup_or_null(json_t *v)
{
	return json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
}

int migrate_send_header(struct ws *ws, const struct migrate_header *h, struct ferry_error **err)
{
	json_t *msg = json_pack("{s:s, s:s, s:s?, s:s?, s:b, s:O, s:O, s:O, s:O, s:b, s:b, s:b, s:s?, s:b, s:I}", "type",
				msg_type_names[MIGRATE_MSG_HEADER], "name", h->name, "architecture", h->architecture,
				"description", h->description, "ephemeral", h->ephemeral, "config", h->config,
				"devices", h->devices, "profiles", h->profiles, "snapshots",
				h->snapshots ? h->snapshots : json_array(), "live", h->live, "running", h->running, "stateful", h->stateful, "cpuinfo", h->cpuinfo,
				"post_copy", h->post_copy, "memory", (json_int_t)h->memory);
	if (msg == NULL)
		return error_set(err, 500, EINVAL, "encode the migration header");
	return send_json(ws, msg, err);
}

int migrate_recv_header(struct ws *ws, struct migrate_header *h, int timeout_ms, struct ferry_error **err)
{
	json_t *msg = NULL;
	if (recv_json(ws, MIGRATE_MSG_HEADER, timeout_ms, &msg, err) < 0)
		return -1;
	memset(h, 0, sizeof(*h));
	h->name = dup_or_null(json_object_get(msg, "name"));
	h->architecture = dup_or_null(json_object_get(msg, "architecture"));
	h->description = dup_or_null(json_object_get(msg, "description"));
	h->ephemeral = json_is_true(json_object_get(msg, "ephemeral"));
	h->live = json_is_true(json_object_get(msg, "live"));
	h->running = h->live || json_is_true(json_object_get(msg, "running"));
	h->stateful = json_is_true(json_object_get(msg, "stateful"));
	h->cpuinfo = dup_or_null(json_object_get(msg, "cpuinfo"));
	h->post_copy = json_is_true(json_object_get(msg, "post_copy"));
	json_int_t memory = json_integer_value(json_object_get(msg, "memory"));
	h->memory = memory > 0 ? (unsigned long long)memory : 0;
	h->config = json_incref(json_object_get(msg, "config"));
	h->devices = json_incref(json_object_get(msg, "devices"));
	h->profiles = json_incref(json_object_get(msg, "profiles"));
	h->snapshots = json_incref(json_object_get(msg, "snapshots"));
	if (h->snapshots == NULL)
		h->snapshots = json_array();
	json_decref(msg);
	if (h->name == NULL || !json_is_object(h->config) || !json_is_object(h->devices) ||
	    !json_is_array(h->profiles) || !json_is_array(h->snapshots)) {
		migrate_header_clear(h);
		return error_set(err, 502, EPROTO, "migration header: missing name, config, devices or profiles");
	}
	return 0;
}

int migrate_send_result(struct ws *ws, const struct migrate_result *r, struct ferry_error **err)
{
	json_t *msg = json_pack("{s:s, s:b, s:s?, s:s?}", "type", msg_type_names[MIGRATE_MSG_RESULT], "success",
				r->success, "message", r->message, "plan", r->plan);
	return send_json(ws, msg, err);
}

int migrate_recv_result(struct ws *ws, struct migrate_result *r, int timeout_ms, struct ferry_error **err)
{
	json_t *msg = NULL;
	if (recv_json(ws, MIGRATE_MSG_RESULT, timeout_ms, &msg, err) < 0)
		return -1;
	memset(r, 0, sizeof(*r));
	r->success = json_is_true(json_object_get(msg, "success"));
	r->message = dup_or_null(json_object_get(msg, "message"));
	r->plan = dup_or_null(json_object_get(msg, "plan"));
	json_decref(msg);
	return 0;
}

int migrate_send_paths(struct ws *ws, json_t *dirs, struct ferry_error **err)
{
	json_t *msg = json_pack("{s:s, s:O}", "type", msg_type_names[MIGRATE_MSG_PATHS], "dirs", dirs);
	return send_json(ws, msg, err);
}

json_t *migrate_name_to_json(const char *name)
{
	json_t *j = json_string(name);
	if (j != NULL)
		return j;
	cleanup_free char *b64 = tls_base64_encode(name, strlen(name));
	return json_pack("{s:s}", "base64", b64);
}

char *migrate_name_from_json(json_t *j)
{
	if (json_is_string(j))
		return xstrdup(json_string_value(j));
	const char *b64 = json_string_value(json_object_get(j, "base64"));
	unsigned char *raw = NULL;
	size_t len = 0;
	if (b64 == NULL || tls_base64_decode(b64, &raw, &len) < 0)
		return NULL;
	char *name = xcalloc(1, len + 1);
	memcpy(name, raw, len);
	free(raw);
	if (strlen(name) != len) {
		free(name);
		return NULL;
	}
	return name;
}

static bool name_valid(json_t *j)
{
	char *name = migrate_name_from_json(j);
	free(name);
	return name != NULL;
}

/* [{"dir": NAME, "names": [NAME, ...]}, ...] */
static bool dirs_valid(json_t *dirs)
{
	if (!json_is_array(dirs))
		return false;
	size_t i, k;
	json_t *d, *n;
	json_array_foreach(dirs, i, d) {
		json_t *names = json_object_get(d, "names");
		if (!name_valid(json_object_get(d, "dir")) || !json_is_array(names))
			return false;
		json_array_foreach(names, k, n) {
			if (!name_valid(n))
				return false;
		}
	}
	return true;
}

int migrate_recv_paths(struct ws *ws, json_t **dirs, int timeout_ms, struct ferry_error **err)
{
	json_t *msg = NULL;
	if (recv_json(ws, MIGRATE_MSG_PATHS, timeout_ms, &msg, err) < 0)
		return -1;
	json_t *d = json_object_get(msg, "dirs");
	if (!dirs_valid(d)) {
		json_decref(msg);
		return error_set(err, 502, EPROTO, "migration control stream: a paths message without its directories");
	}
	*dirs = json_incref(d);
	json_decref(msg);
	return 0;
}

int migrate_send_commit(struct ws *ws, struct ferry_error **err)
{
	return send_json(ws, json_pack("{s:s}", "type", msg_type_names[MIGRATE_MSG_COMMIT]), err);
}

int migrate_recv_commit(struct ws *ws, int timeout_ms, struct ferry_error **err)
{
	json_t *msg = NULL;
	if (recv_json(ws, MIGRATE_MSG_COMMIT, timeout_ms, &msg, err) < 0)
		return -1;
	json_decref(msg);
	return 0;
}

json_t *migrate_snapshot_to_json(const struct db_snapshot *s)
{
	return json_pack("{s:s, s:s?, s:b, s:s?, s:s?, s:s?, s:s?, s:O, s:O, s:O, s:b}", "name", s->name, "description",
			 s->description, "ephemeral", s->ephemeral, "architecture", s->architecture, "created_at",
			 s->created_at, "expires_at", s->expires_at, "last_used_at", s->last_used_at, "config",
			 s->config, "devices", s->devices, "profiles", s->profiles, "stateful", s->stateful);
}

int migrate_snapshot_from_json(json_t *j, struct db_snapshot *s, struct ferry_error **err)
{
	memset(s, 0, sizeof(*s));
	s->name = dup_or_null(json_object_get(j, "name"));
	s->description = dup_or_null(json_object_get(j, "description"));
	s->ephemeral = json_is_true(json_object_get(j, "ephemeral"));
	s->architecture = dup_or_null(json_object_get(j, "architecture"));
	s->created_at = dup_or_null(json_object_get(j, "created_at"));
	s->expires_at = dup_or_null(json_object_get(j, "expires_at"));
	s->last_used_at = dup_or_null(json_object_get(j, "last_used_at"));
	s->config = json_incref(json_object_get(j, "config"));
	s->devices = json_incref(json_object_get(j, "devices"));
	s->profiles = json_incref(json_object_get(j, "profiles"));
	s->stateful = json_is_true(json_object_get(j, "stateful"));
	if (s->name == NULL || !json_is_object(s->config) || !json_is_object(s->devices) || !json_is_array(s->profiles)) {
		db_snapshot_clear(s);
		return error_set(err, 502, EPROTO, "migration header: a snapshot without name, config, devices or profiles");
	}
	return 0;
}
