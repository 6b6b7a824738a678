/* runtime_spec as JSON (spec.json): what ferryd hands the monitor. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "runtime/runtime.h"

static void nic_free(struct runtime_nic *nic)
{
	free(nic->name);
	free(nic->bridge);
	free(nic->hwaddr);
	free(nic->ipv4_cidr);
	free(nic->ipv4_gateway);
	free(nic->host_name);
}

void runtime_spec_free(struct runtime_spec *spec)
{
	if (spec == NULL)
		return;
	free(spec->name);
	free(spec->dir);
	free(spec->rootfs);
	free(spec->log_dir);
	free(spec->init);
	free(spec->cgroup);
	free(spec->limits_cpu);
	strv_free(spec->environment);
	for (size_t i = 0; i < spec->n_nics; i++)
		nic_free(&spec->nics[i]);
	free(spec->nics);
	for (size_t i = 0; i < spec->n_mounts; i++) {
		free(spec->mounts[i].source);
		free(spec->mounts[i].target);
	}
	free(spec->mounts);
	free(spec);
}

/* json_string(NULL) is NULL, and json_object_set_new ignores a NULL value:
 * absent strings simply stay out of the JSON. */
static void set_string(json_t *obj, const char *key, const char *value)
{
	if (value != NULL)
		json_object_set_new(obj, key, json_string(value));
}

char *runtime_spec_to_json(const struct runtime_spec *spec)
{
	json_t *root = json_object();
	set_string(root, "name", spec->name);
	set_string(root, "dir", spec->dir);
	set_string(root, "rootfs", spec->rootfs);
	set_string(root, "log_dir", spec->log_dir);
	set_string(root, "init", spec->init);
	set_string(root, "cgroup", spec->cgroup);
	json_object_set_new(root, "privileged", json_boolean(spec->privileged));
	json_object_set_new(root, "idmap_hostid", json_integer(spec->idmap_hostid));
	json_object_set_new(root, "idmap_range", json_integer(spec->idmap_range));
	json_object_set_new(root, "limits_memory", json_integer(spec->limits_memory));
	set_string(root, "limits_cpu", spec->limits_cpu);
	json_object_set_new(root, "limits_processes", json_integer(spec->limits_processes));

	json_t *env = json_array();
	for (size_t i = 0; spec->environment != NULL && spec->environment[i] != NULL; i++)
		json_array_append_new(env, json_string(spec->environment[i]));
	json_object_set_new(root, "environment", env);

	json_t *nics = json_array();
	for (size_t i = 0; i < spec->n_nics; i++) {
		const struct runtime_nic *nic = &spec->nics[i];
		json_t *o = json_object();
		set_string(o, "name", nic->name);
		set_string(o, "bridge", nic->bridge);
		set_string(o, "hwaddr", nic->hwaddr);
		set_string(o, "ipv4_cidr", nic->ipv4_cidr);
		set_string(o, "ipv4_gateway", nic->ipv4_gateway);
		set_string(o, "host_name", nic->host_name);
		json_object_set_new(o, "mtu", json_integer(nic->mtu));
		json_array_append_new(nics, o);
	}
	json_object_set_new(root, "nics", nics);

	json_t *mounts = json_array();
	for (size_t i = 0; i < spec->n_mounts; i++) {
		json_t *o = json_object();
		set_string(o, "source", spec->mounts[i].source);
		set_string(o, "target", spec->mounts[i].target);
		json_object_set_new(o, "readonly", json_boolean(spec->mounts[i].readonly));
		json_array_append_new(mounts, o);
	}
	json_object_set_new(root, "mounts", mounts);

	char *text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(root);
	if (text == NULL)
		abort();
	return text;
}

static int get_string(json_t *obj, const char *key, bool required, char **out, struct ferry_error **err)
{
	json_t *v = json_object_get(obj, key);
	if (v == NULL || json_is_null(v)) {
		if (required)
			return error_bad_request(err, "missing \"%s\"", key);
		*out = NULL;
		return 0;
	}
	if (!json_is_string(v))
		return error_bad_request(err, "\"%s\" must be a string", key);
	*out = xstrdup(json_string_value(v));
	return 0;
}

static int get_integer(json_t *obj, const char *key, long long *out, struct ferry_error **err)
{
	json_t *v = json_object_get(obj, key);
	if (v == NULL || json_is_null(v)) {
		*out = 0;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return error_bad_request(err, "\"%s\" must be a non-negative integer", key);
	*out = json_integer_value(v);
	return 0;
}

static int get_bool(json_t *obj, const char *key, bool *out, struct ferry_error **err)
{
	json_t *v = json_object_get(obj, key);
	if (v == NULL || json_is_null(v)) {
		*out = false;
		return 0;
	}
	if (!json_is_boolean(v))
		return error_bad_request(err, "\"%s\" must be a boolean", key);
	*out = json_is_true(v);
	return 0;
}

static int get_array(json_t *obj, const char *key, json_t **out, struct ferry_error **err)
{
	json_t *v = json_object_get(obj, key);
	if (v == NULL || json_is_null(v)) {
		*out = NULL;
		return 0;
	}
	if (!json_is_array(v))
		return error_bad_request(err, "\"%s\" must be an array", key);
	*out = v;
	return 0;
}

static int nic_from_json(json_t *o, struct runtime_nic *nic, struct ferry_error **err)
{
	long long mtu;
	if (!json_is_object(o))
		return error_bad_request(err, "a nic must be an object");
	if (get_string(o, "name", true, &nic->name, err) < 0 || get_string(o, "bridge", true, &nic->bridge, err) < 0 ||
	    get_string(o, "hwaddr", false, &nic->hwaddr, err) < 0 ||
	    get_string(o, "ipv4_cidr", false, &nic->ipv4_cidr, err) < 0 ||
	    get_string(o, "ipv4_gateway", false, &nic->ipv4_gateway, err) < 0 ||
	    get_string(o, "host_name", false, &nic->host_name, err) < 0 || get_integer(o, "mtu", &mtu, err) < 0)
		return -1;
	nic->mtu = (unsigned)mtu;
	return 0;
}

static int mount_from_json(json_t *o, struct runtime_mount *m, struct ferry_error **err)
{
	if (!json_is_object(o))
		return error_bad_request(err, "a mount must be an object");
	if (get_string(o, "source", true, &m->source, err) < 0 || get_string(o, "target", true, &m->target, err) < 0 ||
	    get_bool(o, "readonly", &m->readonly, err) < 0)
		return -1;
	if (m->target[0] != '/' || strstr(m->target, "..") != NULL)
		return error_bad_request(err, "mount target \"%s\" must be an absolute path without \"..\"", m->target);
	return 0;
}

static int spec_from_object(json_t *root, struct runtime_spec *spec, struct ferry_error **err)
{
	long long hostid, range;
	json_t *env = NULL, *nics = NULL, *mounts = NULL;
	if (!json_is_object(root))
		return error_bad_request(err, "the spec must be a JSON object");
	if (get_string(root, "name", true, &spec->name, err) < 0 || get_string(root, "dir", true, &spec->dir, err) < 0 ||
	    get_string(root, "rootfs", true, &spec->rootfs, err) < 0 ||
	    get_string(root, "log_dir", false, &spec->log_dir, err) < 0 ||
	    get_string(root, "init", false, &spec->init, err) < 0 ||
	    get_string(root, "cgroup", true, &spec->cgroup, err) < 0 ||
	    get_bool(root, "privileged", &spec->privileged, err) < 0 ||
	    get_integer(root, "idmap_hostid", &hostid, err) < 0 || get_integer(root, "idmap_range", &range, err) < 0 ||
	    get_integer(root, "limits_memory", &spec->limits_memory, err) < 0 ||
	    get_string(root, "limits_cpu", false, &spec->limits_cpu, err) < 0 ||
	    get_integer(root, "limits_processes", &spec->limits_processes, err) < 0 ||
	    get_array(root, "environment", &env, err) < 0 || get_array(root, "nics", &nics, err) < 0 ||
	    get_array(root, "mounts", &mounts, err) < 0)
		return -1;
	if (hostid > 0xffffffffLL || range > 0xffffffffLL)
		return error_bad_request(err, "idmap out of range");
	spec->idmap_hostid = (unsigned)hostid;
	spec->idmap_range = (unsigned)range;
	if (spec->name[0] == '\0' || strchr(spec->name, '/') != NULL)
		return error_bad_request(err, "invalid container name \"%s\"", spec->name);
	if (spec->cgroup[0] == '\0' || spec->cgroup[0] == '/' || strstr(spec->cgroup, "..") != NULL)
		return error_bad_request(err, "cgroup \"%s\" must be a relative path without \"..\"", spec->cgroup);
	if (!spec->privileged && spec->idmap_range == 0)
		return error_bad_request(err, "an unprivileged container needs an idmap range");

	size_t n_env = env != NULL ? json_array_size(env) : 0;
	spec->environment = xcalloc(n_env + 1, sizeof(char *));
	for (size_t i = 0; i < n_env; i++) {
		json_t *v = json_array_get(env, i);
		if (!json_is_string(v) || strchr(json_string_value(v), '=') == NULL)
			return error_bad_request(err, "environment entries must be \"KEY=VALUE\" strings");
		spec->environment[i] = xstrdup(json_string_value(v));
	}

	size_t n_nics = nics != NULL ? json_array_size(nics) : 0;
	spec->nics = xcalloc(n_nics, sizeof(*spec->nics));
	for (size_t i = 0; i < n_nics; i++) {
		spec->n_nics = i + 1;
		if (nic_from_json(json_array_get(nics, i), &spec->nics[i], err) < 0)
			return error_wrap(err, "nic %zu", i);
	}

	size_t n_mounts = mounts != NULL ? json_array_size(mounts) : 0;
	spec->mounts = xcalloc(n_mounts, sizeof(*spec->mounts));
	for (size_t i = 0; i < n_mounts; i++) {
		spec->n_mounts = i + 1;
		if (mount_from_json(json_array_get(mounts, i), &spec->mounts[i], err) < 0)
			return error_wrap(err, "mount %zu", i);
	}
	return 0;
}

int runtime_spec_from_json(const char *text, struct runtime_spec **out, struct ferry_error **err)
{
	json_error_t jerr;
	json_t *root = json_loads(text, 0, &jerr);
	if (root == NULL)
		return error_bad_request(err, "invalid spec JSON: %s (line %d)", jerr.text, jerr.line);
	struct runtime_spec *spec = xcalloc(1, sizeof(*spec));
	int r = spec_from_object(root, spec, err);
	json_decref(root);
	if (r < 0) {
		runtime_spec_free(spec);
		return error_wrap(err, "runtime spec");
	}
	*out = spec;
	return 0;
}
