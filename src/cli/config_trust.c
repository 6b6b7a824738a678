/* ferry config trust add|list|list-tokens|revoke-token|show|remove: the
 * server's trust store (/1.0/certificates) and its one-time join tokens
 * (operations of class "token"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/client_tls.h"
#include "cli/config_verbs.h"
#include "cli/render.h"
#include "cli/target.h"
#include "common/util.h"

static const struct option format_options[] = {
	{ "format", required_argument, NULL, 'f' },
	{ 0 },
};

#define FORMAT_HELP "  -f, --format   Format (csv|json|table|yaml|compact) (default \"table\")\n"

/* Options: --format when format is not NULL. Returns -1 to go on, else the exit code. */
static int parse_options(const struct cli_command *cmd, int argc, char **argv, enum output_format *format, int min,
			 int max)
{
	int c;
	while ((c = cli_next_option(cmd, argc, argv)) != -1) {
		if (c == 'f' && format != NULL) {
			cleanup_error struct ferry_error *err = NULL;
			if (output_format_parse(optarg, format, &err) < 0)
				return cli_usage_error(cmd, "%s", err->msg);
		} else {
			return c == CLI_OPT_HELP ? EXIT_OK : EXIT_USAGE;
		}
	}
	int rc = cli_check_args(cmd, argc - optind, min, max);
	return rc != 0 ? rc : -1;
}

static int open_remote(const char *arg, struct target *t, struct client **client, struct ferry_error **err)
{
	return target_parse(arg ? arg : "", t, err) < 0 || client_open(t->remote, client, err) < 0 ? -1 : 0;
}

/* LXD's token string from a token operation's metadata. */
static char *token_string(const json_t *metadata)
{
	json_t *token = json_pack("{s:s?, s:s?, s:O?, s:s?, s:s?}", "client_name",
				  json_string_value(json_object_get(json_object_get(metadata, "request"), "name")),
				  "fingerprint", json_string_value(json_object_get(metadata, "fingerprint")),
				  "addresses", json_object_get(metadata, "addresses"), "secret",
				  json_string_value(json_object_get(metadata, "secret")), "expires_at",
				  json_string_value(json_object_get(metadata, "expiresAt")));
	char *json = json_dumps(token, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(token);
	char *text = client_tls_base64_encode(json, strlen(json));
	free(json);
	return text;
}

static int trust_add(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "config trust add",
		.usage = "[<remote>:]<name> [flags]",
		.summary = "Issue a one-time token for a new client to join (ferry remote add NAME TOKEN)",
	};
	int rc = parse_options(&cmd, argc, argv, NULL, 1, 1);
	if (rc >= 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	if (open_remote(argv[optind], &t, &client, &err) < 0)
		return cli_fail(err);
	if (*t.name == '\0')
		return cli_usage_error(&cmd, "A name for the new client is required");
	json_t *body = json_pack("{s:s, s:s, s:b}", "name", t.name, "type", "client", "token", 1);
	json_t *op = NULL;
	rc = client_query_operation(client, "POST", "/1.0/certificates", body, &op, &err);
	json_decref(body);
	if (rc < 0)
		return cli_fail(err);
	json_t *metadata = json_object_get(op, "metadata");
	if (json_string_value(json_object_get(metadata, "secret")) == NULL) {
		json_decref(op);
		error_set(&err, 502, 0, "The server answered without a token");
		return cli_fail(err);
	}
	cleanup_free char *token = token_string(metadata);
	if (!cli_quiet)
		printf("Client %s certificate add token:\n", t.name);
	printf("%s\n", token);
	json_decref(op);
	return EXIT_OK;
}

static int trust_list(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "config trust list",
		.usage = "[<remote>:] [flags]",
		.summary = "List trusted clients",
		.help = FORMAT_HELP,
		.shortopts = "f:",
		.longopts = format_options,
	};
	enum output_format format = FORMAT_TABLE;
	int rc = parse_options(&cmd, argc, argv, &format, 0, 1);
	if (rc >= 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	json_t *certs = NULL;
	if (open_remote(optind < argc ? argv[optind] : NULL, &t, &client, &err) < 0 ||
	    client_query(client, "GET", "/1.0/certificates?recursion=1", NULL, &certs, &err) < 0)
		return cli_fail(err);
	static const char *const header[] = { "TYPE", "NAME", "COMMON NAME", "FINGERPRINT", "ISSUE DATE",
					      "EXPIRY DATE" };
	struct table *table cleanup_table = table_new(6, header);
	size_t i;
	json_t *c;
	json_array_foreach(certs, i, c) {
		cleanup_free char *cn = NULL, *from = NULL, *until = NULL;
		const char *pem = json_string_value(json_object_get(c, "certificate"));
		if (pem == NULL || client_tls_describe(pem, &cn, &from, &until, NULL) < 0)
			cn = xstrdup(""), from = xstrdup(""), until = xstrdup("");
		cleanup_free char *fp = strndup(json_string_value(json_object_get(c, "fingerprint")) ?: "", 12);
		const char *cells[] = { json_string_value(json_object_get(c, "type")),
					json_string_value(json_object_get(c, "name")), cn, fp, from, until };
		table_add_row(table, cells);
	}
	table_sort(table);
	rc = render_listing(table, certs, format, &err) < 0 ? cli_fail(err) : EXIT_OK;
	json_decref(certs);
	return rc;
}

/* The running token operations. */
static int token_operations(struct client *client, json_t **out, struct ferry_error **err)
{
	json_t *ops = NULL;
	if (client_query(client, "GET", "/1.0/operations?recursion=1", NULL, &ops, err) < 0)
		return -1;
	json_t *tokens = json_array();
	size_t i;
	json_t *op;
	json_array_foreach(json_object_get(ops, "running"), i, op) {
		const char *class = json_string_value(json_object_get(op, "class"));
		if (class != NULL && strcmp(class, "token") == 0)
			json_array_append(tokens, op);
	}
	json_decref(ops);
	*out = tokens;
	return 0;
}

static int trust_list_tokens(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "config trust list-tokens",
		.usage = "[<remote>:] [flags]",
		.summary = "List the join tokens not yet used",
		.help = FORMAT_HELP,
		.shortopts = "f:",
		.longopts = format_options,
	};
	enum output_format format = FORMAT_TABLE;
	int rc = parse_options(&cmd, argc, argv, &format, 0, 1);
	if (rc >= 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	json_t *tokens = NULL;
	if (open_remote(optind < argc ? argv[optind] : NULL, &t, &client, &err) < 0 ||
	    token_operations(client, &tokens, &err) < 0)
		return cli_fail(err);
	static const char *const header[] = { "NAME", "TOKEN", "EXPIRES AT" };
	struct table *table cleanup_table = table_new(3, header);
	json_t *shown = json_array();
	size_t i;
	json_t *op;
	json_array_foreach(tokens, i, op) {
		json_t *m = json_object_get(op, "metadata");
		cleanup_free char *token = token_string(m);
		const char *name = json_string_value(json_object_get(json_object_get(m, "request"), "name"));
		const char *expires = json_string_value(json_object_get(m, "expiresAt"));
		const char *cells[] = { name, token, expires };
		table_add_row(table, cells);
		json_array_append_new(shown, json_pack("{s:s?, s:s, s:s?}", "ClientName", name, "Token", token,
						       "ExpiresAt", expires));
	}
	table_sort(table);
	rc = render_listing(table, shown, format, &err) < 0 ? cli_fail(err) : EXIT_OK;
	json_decref(shown);
	json_decref(tokens);
	return rc;
}

static int trust_revoke_token(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "config trust revoke-token",
		.usage = "[<remote>:]<name> [flags]",
		.summary = "Revoke the join tokens of a client name (or of an operation id)",
	};
	int rc = parse_options(&cmd, argc, argv, NULL, 1, 1);
	if (rc >= 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	json_t *tokens = NULL;
	if (open_remote(argv[optind], &t, &client, &err) < 0 || token_operations(client, &tokens, &err) < 0)
		return cli_fail(err);
	int revoked = 0;
	size_t i;
	json_t *op;
	json_array_foreach(tokens, i, op) {
		json_t *m = json_object_get(op, "metadata");
		const char *name = json_string_value(json_object_get(json_object_get(m, "request"), "name"));
		const char *id = client_operation_id(op);
		if (id == NULL || ((name == NULL || strcmp(name, t.name) != 0) && strcmp(id, t.name) != 0))
			continue;
		cleanup_free char *escaped = client_escape(id);
		cleanup_free char *path = xasprintf("/1.0/operations/%s", escaped);
		if (client_query(client, "DELETE", path, NULL, NULL, &err) < 0) {
			json_decref(tokens);
			return cli_fail(err);
		}
		revoked++;
	}
	json_decref(tokens);
	if (revoked == 0) {
		error_set(&err, 404, 0, "No pending token for \"%s\"", t.name);
		return cli_fail(err);
	}
	return EXIT_OK;
}

/* A fingerprint or a unique prefix of one to the full fingerprint. */
static int certificate_resolve(struct client *client, const char *prefix, char **fingerprint,
			       struct ferry_error **err)
{
	json_t *list = NULL;
	if (client_query(client, "GET", "/1.0/certificates", NULL, &list, err) < 0)
		return -1;
	const char *found = NULL;
	int matches = 0;
	size_t i;
	json_t *url;
	json_array_foreach(list, i, url) {
		const char *u = json_string_value(url);
		const char *fp = u && strrchr(u, '/') ? strrchr(u, '/') + 1 : u;
		if (fp != NULL && *prefix != '\0' && strncmp(fp, prefix, strlen(prefix)) == 0) {
			found = fp;
			matches++;
		}
	}
	int r = 0;
	if (matches == 1)
		*fingerprint = xstrdup(found);
	else if (matches == 0)
		r = error_set(err, 404, 0, "Certificate \"%s\" not found", prefix);
	else
		r = error_set(err, 400, 0, "Certificate fingerprint \"%s\" is ambiguous", prefix);
	json_decref(list);
	return r;
}

static int trust_show(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "config trust show",
		.usage = "[<remote>:]<fingerprint> [flags]",
		.summary = "Show a trusted client's certificate entry",
	};
	int rc = parse_options(&cmd, argc, argv, NULL, 1, 1);
	if (rc >= 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	cleanup_free char *fp = NULL;
	if (open_remote(argv[optind], &t, &client, &err) < 0 || certificate_resolve(client, t.name, &fp, &err) < 0)
		return cli_fail(err);
	cleanup_free char *path = xasprintf("/1.0/certificates/%s", fp);
	json_t *cert = NULL;
	cleanup_free char *yaml = NULL;
	if (client_query(client, "GET", path, NULL, &cert, &err) < 0 || yaml_render(cert, &yaml, &err) < 0) {
		json_decref(cert);
		return cli_fail(err);
	}
	fputs(yaml, stdout);
	json_decref(cert);
	return EXIT_OK;
}

static int trust_remove(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "config trust remove",
		.usage = "[<remote>:]<fingerprint> [flags]",
		.summary = "Remove a trusted client (it loses access at once)",
	};
	int rc = parse_options(&cmd, argc, argv, NULL, 1, 1);
	if (rc >= 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	cleanup_free char *fp = NULL;
	if (open_remote(argv[optind], &t, &client, &err) < 0 || certificate_resolve(client, t.name, &fp, &err) < 0)
		return cli_fail(err);
	cleanup_free char *path = xasprintf("/1.0/certificates/%s", fp);
	return client_query(client, "DELETE", path, NULL, NULL, &err) < 0 ? cli_fail(err) : EXIT_OK;
}

int config_trust(int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
		{ "add", NULL, "Issue a one-time join token for a new client", trust_add },
		{ "list", "ls", "List trusted clients", trust_list },
		{ "list-tokens", NULL, "List the join tokens not yet used", trust_list_tokens },
		{ "remove", "rm", "Remove a trusted client", trust_remove },
		{ "revoke-token", NULL, "Revoke a join token", trust_revoke_token },
		{ "show", NULL, "Show a trusted client's entry", trust_show },
		{ NULL },
	};
	return cli_run_subcommand("config trust", subs, argc, argv);
}
