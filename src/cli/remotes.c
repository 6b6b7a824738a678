/* The remotes of config.yml: see remotes.h. Read and written with the
 * shared YAML<->JSON code. */
#include "cli/remotes.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "common/yaml_json.h"

char *remotes_conf_dir(void)
{
	const char *dir = getenv("FERRY_CONF");
	if (dir != NULL && *dir != '\0')
		return xstrdup(dir);
	const char *home = getenv("HOME");
	return xasprintf("%s/.config/ferry", home != NULL && *home != '\0' ? home : "/root");
}

char *remotes_conf_path(const char *file)
{
	cleanup_free char *dir = remotes_conf_dir();
	return xasprintf("%s/%s", dir, file);
}

char *remotes_server_cert_path(const char *name)
{
	cleanup_free char *dir = remotes_conf_dir();
	return xasprintf("%s/servercerts/%s.crt", dir, name);
}

bool remote_name_valid(const char *name)
{
	if (name == NULL || *name == '\0' || strlen(name) > 255)
		return false;
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
			return false;
	return true;
}

static json_t *local_remote(void)
{
	return json_pack("{s:s, s:s, s:b}", "addr", "unix://", "protocol", "lxd", "public", 0);
}

int remotes_load(json_t **config, struct ferry_error **err)
{
	cleanup_free char *path = remotes_conf_path("config.yml");
	json_t *doc = NULL;
	if (access(path, F_OK) == 0) {
		cleanup_free char *text = NULL;
		size_t len = 0;
		if (file_read(path, &text, &len, err) < 0)
			return -1;
		if (yaml_to_json(text, len, &doc, NULL, err) < 0)
			return error_wrap(err, "%s", path);
		if (!json_is_object(doc)) {
			json_decref(doc);
			return error_bad_request(err, "%s: expected a mapping", path);
		}
	} else {
		doc = json_object();
	}
	json_t *remotes = json_object_get(doc, "remotes");
	if (!json_is_object(remotes)) {
		remotes = json_object();
		json_object_set_new(doc, "remotes", remotes);
	}
	if (!json_is_object(json_object_get(remotes, REMOTE_LOCAL)))
		json_object_set_new(remotes, REMOTE_LOCAL, local_remote());
	const char *def = json_string_value(json_object_get(doc, "default-remote"));
	if (def == NULL || json_object_get(remotes, def) == NULL)
		json_object_set_new(doc, "default-remote", json_string(REMOTE_LOCAL));
	*config = doc;
	return 0;
}

int remotes_save(json_t *config, struct ferry_error **err)
{
	cleanup_free char *dir = remotes_conf_dir();
	if (mkdir_p(dir, 0700, err) < 0)
		return -1;
	cleanup_free char *path = remotes_conf_path("config.yml");
	cleanup_free char *text = json_to_yaml(config);
	return file_write_atomic(path, text, strlen(text), 0600, err);
}

char *remotes_default_name(void)
{
	json_t *config = NULL;
	cleanup_error struct ferry_error *err = NULL;
	if (remotes_load(&config, &err) < 0)
		return xstrdup(REMOTE_LOCAL);
	char *name = xstrdup(json_string_value(json_object_get(config, "default-remote")));
	json_decref(config);
	return name;
}

int remotes_address(const char *name, char **addr, struct ferry_error **err)
{
	json_t *config = NULL;
	if (remotes_load(&config, err) < 0)
		return -1;
	const char *a = json_string_value(json_object_get(json_object_get(json_object_get(config, "remotes"), name), "addr"));
	if (a == NULL) {
		json_decref(config);
		return error_set(err, 404, ENOENT, "The remote \"%s\" doesn't exist", name);
	}
	*addr = xstrdup(a);
	json_decref(config);
	return 0;
}

int remote_url_normalize(const char *text, char **url, struct ferry_error **err)
{
	const char *s = text;
	if (strncmp(s, "https://", 8) == 0)
		s += 8;
	else if (strstr(s, "://") != NULL)
		return error_bad_request(err, "Invalid address \"%s\": only https:// remotes are supported", text);
	cleanup_free char *rest = xstrdup(s);
	size_t n = strlen(rest);
	while (n > 0 && rest[n - 1] == '/')
		rest[--n] = '\0';
	if (n == 0)
		return error_bad_request(err, "Invalid address \"%s\"", text);
	cleanup_free char *host = NULL;
	long port = REMOTE_DEFAULT_PORT;
	const char *port_text = NULL;
	if (rest[0] == '[') {
		char *close = strchr(rest, ']');
		if (close == NULL)
			return error_bad_request(err, "Invalid address \"%s\": unclosed '['", text);
		host = strndup(rest + 1, close - rest - 1);
		if (close[1] == ':')
			port_text = close + 2;
		else if (close[1] != '\0')
			return error_bad_request(err, "Invalid address \"%s\"", text);
	} else if (strchr(rest, ':') != strrchr(rest, ':')) {
		host = xstrdup(rest); /* a bare IPv6 address */
	} else {
		char *colon = strchr(rest, ':');
		host = colon ? strndup(rest, colon - rest) : xstrdup(rest);
		port_text = colon ? colon + 1 : NULL;
	}
	if (host == NULL)
		abort();
	if (*host == '\0' || strpbrk(host, "/?#@ ") != NULL)
		return error_bad_request(err, "Invalid address \"%s\"", text);
	if (port_text != NULL) {
		char *end = NULL;
		errno = 0;
		port = strtol(port_text, &end, 10);
		if (*port_text == '\0' || *end != '\0' || errno != 0 || port < 1 || port > 65535)
			return error_bad_request(err, "Invalid port in \"%s\"", text);
	}
	bool v6 = strchr(host, ':') != NULL;
	*url = v6 ? xasprintf("https://[%s]:%ld", host, port) : xasprintf("https://%s:%ld", host, port);
	return 0;
}
