/* ferry remote add|list|remove|rename|switch|get-default|set-url: the
 * remotes of config.yml (remotes.h), as lxc manages them.
 *
 * `remote add` meets a server the way ssh does: the first handshake takes
 * any certificate, shows its fingerprint for approval (or checks it
 * against the token's), and saves it; from then on the client talks only
 * to a server that presents that certificate. The password or token goes
 * over a connection that already insists on the saved certificate. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/client_tls.h"
#include "cli/remotes.h"
#include "cli/render.h"
#include "common/util.h"

static int no_options(const struct cli_command *cmd, int argc, char **argv, int min, int max)
{
	int c;
	while ((c = cli_next_option(cmd, argc, argv)) != -1)
		return c == CLI_OPT_HELP ? EXIT_OK : EXIT_USAGE;
	int rc = cli_check_args(cmd, argc - optind, min, max);
	return rc != 0 ? rc : -1;
}

/* LXD's join token: base64 of {"client_name","fingerprint","addresses",
 * "secret","expires_at"}. NULL when text is none. */
static json_t *token_decode(const char *text)
{
	cleanup_free char *raw = NULL;
	size_t len = 0;
	if (strchr(text, '.') != NULL && strchr(text, ':') != NULL)
		return NULL; /* an address, not base64 */
	if (client_tls_base64_decode(text, &raw, &len) < 0)
		return NULL;
	json_t *token = json_loadb(raw, len, 0, NULL);
	if (!json_is_object(token) || json_string_value(json_object_get(token, "secret")) == NULL ||
	    json_string_value(json_object_get(token, "fingerprint")) == NULL ||
	    !json_is_array(json_object_get(token, "addresses"))) {
		json_decref(token);
		return NULL;
	}
	return token;
}

/* First contact: GET /1.0 over a connection that takes any certificate.
 * Out: the server's certificate, its fingerprint, and metadata.auth. */
static int first_contact(const char *name, const char *url, char **pem, char **fingerprint, char **auth,
			 struct ferry_error **err)
{
	struct client *client cleanup_client = NULL;
	json_t *server = NULL;
	if (client_open_url(name, url, NULL, &client, err) < 0 ||
	    client_query(client, "GET", "/1.0", NULL, &server, err) < 0)
		return -1;
	const char *a = json_string_value(json_object_get(server, "auth"));
	*auth = xstrdup(a ? a : "");
	json_decref(server);
	const char *seen = client_server_certificate(client);
	if (seen == NULL)
		return error_set(err, 502, EPROTO, "%s presented no certificate that could be read", url);
	*pem = xstrdup(seen);
	return client_tls_fingerprint(*pem, fingerprint, err);
}

/* Ask as ssh does; only on a terminal. */
static int approve_certificate(const char *url, const char *fingerprint, bool accept, struct ferry_error **err)
{
	if (accept)
		return 0;
	if (!isatty(STDIN_FILENO))
		return error_set(err, 403, EPERM,
				 "The certificate of %s has fingerprint %s: not accepted (stdin is not a terminal; "
				 "use --accept-certificate after checking it)",
				 url, fingerprint);
	printf("Certificate fingerprint: %s\n", fingerprint);
	if (!cli_confirm("ok (y/n)? "))
		return error_set(err, 403, EPERM, "Server certificate NACKed by user");
	return 0;
}

/* POST /1.0/certificates with the password (or the whole token), then
 * check that the server now trusts us. */
static int trust_with_password(struct client *client, const char *password, struct ferry_error **err)
{
	json_t *body = json_pack("{s:s, s:s}", "type", "client", "password", password);
	cleanup_error struct ferry_error *post_err = NULL;
	int r = client_query(client, "POST", "/1.0/certificates", body, NULL, &post_err);
	json_decref(body);
	/* A client the server trusts already is where it wants to be. */
	if (r < 0 && !(post_err->status == 400 && strstr(post_err->msg, "already trusted") != NULL)) {
		error_move(err, &post_err);
		return -1;
	}
	json_t *server = NULL;
	if (client_query(client, "GET", "/1.0", NULL, &server, err) < 0)
		return -1;
	const char *auth = json_string_value(json_object_get(server, "auth"));
	bool trusted = auth != NULL && strcmp(auth, "trusted") == 0;
	json_decref(server);
	if (!trusted)
		return error_set(err, 403, EACCES, "The server doesn't trust us after authentication");
	return 0;
}

static int save_remote(const char *name, const char *url, struct ferry_error **err)
{
	json_t *config = NULL;
	if (remotes_load(&config, err) < 0)
		return -1;
	json_object_set_new(json_object_get(config, "remotes"), name,
			    json_pack("{s:s, s:s, s:s, s:b}", "addr", url, "protocol", "lxd", "auth_type", "tls",
				      "public", 0));
	int r = remotes_save(config, err);
	json_decref(config);
	return r;
}

static int save_server_certificate(const char *name, const char *pem, struct ferry_error **err)
{
	cleanup_free char *dir = remotes_conf_path("servercerts");
	cleanup_free char *path = remotes_server_cert_path(name);
	if (mkdir_p(dir, 0700, err) < 0)
		return -1;
	return file_write_atomic(path, pem, strlen(pem), 0600, err);
}

/* Add with a token: the first address that answers with the token's
 * certificate. */
static int add_with_token(const char *name, json_t *token, const char *token_text, char **url_out,
			  struct ferry_error **err)
{
	const char *want = json_string_value(json_object_get(token, "fingerprint"));
	json_t *addresses = json_object_get(token, "addresses");
	if (json_array_size(addresses) == 0)
		return error_bad_request(err, "The token names no address to reach the server at");
	cleanup_free char *tried = xstrdup("");
	size_t i;
	json_t *a;
	json_array_foreach(addresses, i, a) {
		cleanup_error struct ferry_error *try_err = NULL;
		cleanup_free char *url = NULL, *pem = NULL, *fp = NULL, *auth = NULL;
		if (!json_is_string(a) || remote_url_normalize(json_string_value(a), &url, &try_err) < 0 ||
		    first_contact(name, url, &pem, &fp, &auth, &try_err) < 0) {
			char *more = xasprintf("%s\n  %s: %s", tried, json_string_value(a) ?: "?",
					       try_err ? try_err->msg : "invalid address");
			free(tried);
			tried = more;
			continue;
		}
		/* The token vouches for the certificate: no question asked. */
		if (strcmp(fp, want) != 0)
			return error_set(err, 403, EPERM,
					 "The certificate of %s (fingerprint %s) is not the one the token names (%s): "
					 "refusing to join",
					 url, fp, want);
		if (save_server_certificate(name, pem, err) < 0)
			return -1;
		cleanup_free char *cert_path = remotes_server_cert_path(name);
		struct client *client cleanup_client = NULL;
		if (client_open_url(name, url, cert_path, &client, err) < 0 ||
		    trust_with_password(client, token_text, err) < 0) {
			unlink(cert_path);
			return -1;
		}
		*url_out = steal_pointer(&url);
		return 0;
	}
	return error_set(err, 503, ECONNREFUSED, "No address of the token answered:%s", tried);
}

static int add_with_address(const char *name, const char *addr, const char *password, bool accept,
			    char **url_out, struct ferry_error **err)
{
	cleanup_free char *url = NULL, *pem = NULL, *fp = NULL, *auth = NULL;
	if (remote_url_normalize(addr, &url, err) < 0 || first_contact(name, url, &pem, &fp, &auth, err) < 0 ||
	    approve_certificate(url, fp, accept, err) < 0 || save_server_certificate(name, pem, err) < 0)
		return -1;
	cleanup_free char *cert_path = remotes_server_cert_path(name);
	struct client *client cleanup_client = NULL;
	if (client_open_url(name, url, cert_path, &client, err) < 0)
		goto fail;
	if (strcmp(auth, "trusted") != 0) {
		cleanup_free char *asked = NULL;
		if (password == NULL) {
			if (!isatty(STDIN_FILENO)) {
				error_set(err, 403, EACCES,
					  "The server doesn't trust this client yet: give --password or --token");
				goto fail;
			}
			cleanup_free char *prompt = xasprintf("Admin password (or token) for %s: ", name);
			char *p = getpass(prompt);
			asked = xstrdup(p ? p : "");
			password = asked;
		}
		if (trust_with_password(client, password, err) < 0)
			goto fail;
	}
	*url_out = steal_pointer(&url);
	return 0;
fail:
	unlink(cert_path);
	return -1;
}

static const struct option add_options[] = {
	{ "password", required_argument, NULL, 'p' },
	{ "token", required_argument, NULL, 't' },
	{ "accept-certificate", no_argument, NULL, 'a' },
	{ "protocol", required_argument, NULL, 'P' },
	{ "auth-type", required_argument, NULL, 'A' },
	{ "public", no_argument, NULL, 'u' },
	{ 0 },
};

static int remote_add(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "remote add",
		.usage = "<name> <address>|<token> [flags]",
		.summary = "Add new remote servers (HTTPS with mutual TLS)",
		.help = "      --accept-certificate   Accept the server's certificate without asking\n"
			"      --password             Password of the server (core.trust_password)\n"
			"      --token                Join token from `ferry config trust add`\n",
		.longopts = add_options,
	};
	const char *password = NULL, *token_text = NULL;
	bool accept = false;
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1) {
		switch (c) {
		case 'p':
			password = optarg;
			break;
		case 't':
			token_text = optarg;
			break;
		case 'a':
			accept = true;
			break;
		case 'P':
			if (strcmp(optarg, "lxd") != 0)
				return cli_usage_error(&cmd, "Only the \"lxd\" protocol is supported");
			break;
		case 'A':
			if (strcmp(optarg, "tls") != 0)
				return cli_usage_error(&cmd, "Only the \"tls\" auth type is supported");
			break;
		case 'u':
			return cli_usage_error(&cmd, "Public remotes are not supported");
		case CLI_OPT_HELP:
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	int rc = cli_check_args(&cmd, argc - optind, 1, 2);
	if (rc != 0)
		return rc;
	const char *name = argv[optind];
	const char *addr = optind + 1 < argc ? argv[optind + 1] : NULL;
	if (!remote_name_valid(name))
		return cli_usage_error(&cmd, "Invalid remote name \"%s\": use letters, digits, '-', '_' and '.'", name);
	if (password != NULL && token_text != NULL)
		return cli_usage_error(&cmd, "--password and --token exclude each other");
	json_t *token = NULL;
	if (token_text == NULL && addr != NULL && (token = token_decode(addr)) != NULL)
		token_text = addr, addr = NULL;
	else if (token_text != NULL && (token = token_decode(token_text)) == NULL)
		return cli_usage_error(&cmd, "Invalid token: not a join token from `ferry config trust add`");
	if (token == NULL && addr == NULL)
		return cli_usage_error(&cmd, "An address or a token is required");

	cleanup_error struct ferry_error *err = NULL;
	json_t *config = NULL;
	if (remotes_load(&config, &err) < 0)
		return cli_fail(err);
	const char *existing = json_string_value(
		json_object_get(json_object_get(json_object_get(config, "remotes"), name), "addr"));
	if (existing != NULL) {
		error_set(&err, 409, EEXIST, "Remote %s exists as <%s>", name, existing);
		json_decref(config);
		json_decref(token);
		return cli_fail(err);
	}
	json_decref(config);
	cleanup_free char *url = NULL;
	if (token != NULL && addr == NULL)
		rc = add_with_token(name, token, token_text, &url, &err);
	else
		rc = add_with_address(name, addr, password, accept, &url, &err);
	json_decref(token);
	if (rc < 0 || save_remote(name, url, &err) < 0)
		return cli_fail(err);
	return EXIT_OK;
}

static const struct option format_options[] = {
	{ "format", required_argument, NULL, 'f' },
	{ 0 },
};

static int remote_list(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "remote list",
		.usage = "[flags]",
		.summary = "List the available remotes",
		.help = "  -f, --format   Format (csv|json|table|yaml|compact) (default \"table\")\n",
		.shortopts = "f:",
		.longopts = format_options,
	};
	enum output_format format = FORMAT_TABLE;
	cleanup_error struct ferry_error *err = NULL;
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1) {
		if (c == 'f') {
			if (output_format_parse(optarg, &format, &err) < 0)
				return cli_usage_error(&cmd, "%s", err->msg);
		} else {
			return c == CLI_OPT_HELP ? EXIT_OK : EXIT_USAGE;
		}
	}
	int rc = cli_check_args(&cmd, argc - optind, 0, 0);
	if (rc != 0)
		return rc;
	json_t *config = NULL;
	if (remotes_load(&config, &err) < 0)
		return cli_fail(err);
	const char *def = json_string_value(json_object_get(config, "default-remote"));
	static const char *const header[] = { "NAME", "URL", "PROTOCOL", "AUTH TYPE", "PUBLIC", "STATIC", "GLOBAL" };
	struct table *table cleanup_table = table_new(7, header);
	const char *name;
	json_t *r;
	json_object_foreach(json_object_get(config, "remotes"), name, r) {
		cleanup_free char *shown = strcmp(name, def) == 0 ? xasprintf("%s (current)", name) : xstrdup(name);
		const char *addr = json_string_value(json_object_get(r, "addr")) ?: "";
		bool local = strncmp(addr, "unix://", 7) == 0;
		const char *auth = json_string_value(json_object_get(r, "auth_type"));
		const char *cells[] = { shown,
					addr,
					json_string_value(json_object_get(r, "protocol")) ?: "lxd",
					local ? "file access" : auth ? auth : "tls",
					json_is_true(json_object_get(r, "public")) ? "YES" : "NO",
					"NO",
					"NO" };
		table_add_row(table, cells);
	}
	table_sort(table);
	rc = render_listing(table, json_object_get(config, "remotes"), format, &err) < 0 ? cli_fail(err) : EXIT_OK;
	json_decref(config);
	return rc;
}

/* Load config.yml and check that name is one of its remotes. */
static int load_existing(const char *name, json_t **config, json_t **remote, struct ferry_error **err)
{
	if (remotes_load(config, err) < 0)
		return -1;
	*remote = json_object_get(json_object_get(*config, "remotes"), name);
	if (*remote == NULL) {
		json_decref(*config);
		*config = NULL;
		return error_set(err, 404, ENOENT, "The remote \"%s\" doesn't exist", name);
	}
	return 0;
}

static int remote_remove(int argc, char **argv)
{
	const struct cli_command cmd = { .name = "remote remove", .usage = "<name> [flags]",
					 .summary = "Remove remotes" };
	int rc = no_options(&cmd, argc, argv, 1, 1);
	if (rc >= 0)
		return rc;
	const char *name = argv[optind];
	cleanup_error struct ferry_error *err = NULL;
	json_t *config = NULL, *remote = NULL;
	if (load_existing(name, &config, &remote, &err) < 0)
		return cli_fail(err);
	if (strcmp(name, REMOTE_LOCAL) == 0)
		error_set(&err, 400, 0, "The remote \"%s\" is the local daemon and can't be removed", name);
	else if (strcmp(json_string_value(json_object_get(config, "default-remote")), name) == 0)
		error_set(&err, 400, 0, "Can't remove the default remote");
	if (err == NULL) {
		json_object_del(json_object_get(config, "remotes"), name);
		if (remotes_save(config, &err) == 0) {
			cleanup_free char *cert = remotes_server_cert_path(name);
			unlink(cert);
		}
	}
	json_decref(config);
	return err ? cli_fail(err) : EXIT_OK;
}

static int remote_rename(int argc, char **argv)
{
	const struct cli_command cmd = { .name = "remote rename", .usage = "<remote> <new-name> [flags]",
					 .summary = "Rename remotes" };
	int rc = no_options(&cmd, argc, argv, 2, 2);
	if (rc >= 0)
		return rc;
	const char *name = argv[optind], *new_name = argv[optind + 1];
	if (!remote_name_valid(new_name))
		return cli_usage_error(&cmd, "Invalid remote name \"%s\"", new_name);
	cleanup_error struct ferry_error *err = NULL;
	json_t *config = NULL, *remote = NULL;
	if (load_existing(name, &config, &remote, &err) < 0)
		return cli_fail(err);
	json_t *remotes = json_object_get(config, "remotes");
	if (strcmp(name, REMOTE_LOCAL) == 0)
		error_set(&err, 400, 0, "The remote \"%s\" is the local daemon and can't be renamed", name);
	else if (json_object_get(remotes, new_name) != NULL)
		error_set(&err, 409, EEXIST, "Remote %s already exists", new_name);
	if (err == NULL) {
		cleanup_free char *old_cert = remotes_server_cert_path(name);
		cleanup_free char *new_cert = remotes_server_cert_path(new_name);
		json_object_set(remotes, new_name, remote);
		json_object_del(remotes, name);
		if (strcmp(json_string_value(json_object_get(config, "default-remote")), name) == 0)
			json_object_set_new(config, "default-remote", json_string(new_name));
		if (access(old_cert, F_OK) == 0 && rename(old_cert, new_cert) < 0)
			error_sys(&err, errno, "rename %s", old_cert);
		else if (remotes_save(config, &err) < 0)
			rename(new_cert, old_cert);
	}
	json_decref(config);
	return err ? cli_fail(err) : EXIT_OK;
}

static int remote_switch(int argc, char **argv)
{
	const struct cli_command cmd = { .name = "remote switch", .usage = "<remote> [flags]",
					 .summary = "Switch the default remote" };
	int rc = no_options(&cmd, argc, argv, 1, 1);
	if (rc >= 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	json_t *config = NULL, *remote = NULL;
	if (load_existing(argv[optind], &config, &remote, &err) < 0)
		return cli_fail(err);
	json_object_set_new(config, "default-remote", json_string(argv[optind]));
	rc = remotes_save(config, &err) < 0 ? cli_fail(err) : EXIT_OK;
	json_decref(config);
	return rc;
}

static int remote_get_default(int argc, char **argv)
{
	const struct cli_command cmd = { .name = "remote get-default", .usage = "[flags]",
					 .summary = "Show the default remote" };
	int rc = no_options(&cmd, argc, argv, 0, 0);
	if (rc >= 0)
		return rc;
	cleanup_free char *name = remotes_default_name();
	printf("%s\n", name);
	return EXIT_OK;
}

static int remote_set_url(int argc, char **argv)
{
	const struct cli_command cmd = { .name = "remote set-url", .usage = "<remote> <URL> [flags]",
					 .summary = "Set the URL for the remote (its certificate stays the one accepted)" };
	int rc = no_options(&cmd, argc, argv, 2, 2);
	if (rc >= 0)
		return rc;
	const char *name = argv[optind];
	cleanup_error struct ferry_error *err = NULL;
	json_t *config = NULL, *remote = NULL;
	cleanup_free char *url = NULL;
	if (load_existing(name, &config, &remote, &err) < 0)
		return cli_fail(err);
	if (strcmp(name, REMOTE_LOCAL) == 0)
		error_set(&err, 400, 0, "The remote \"%s\" is the local daemon: its address is $FERRY_DIR's socket", name);
	else if (remote_url_normalize(argv[optind + 1], &url, &err) == 0) {
		json_object_set_new(remote, "addr", json_string(url));
		remotes_save(config, &err);
	}
	json_decref(config);
	return err ? cli_fail(err) : EXIT_OK;
}

int cmd_remote(int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
		{ "add", NULL, "Add new remote servers", remote_add },
		{ "get-default", NULL, "Show the default remote", remote_get_default },
		{ "list", "ls", "List the available remotes", remote_list },
		{ "remove", "rm", "Remove remotes", remote_remove },
		{ "rename", "mv", "Rename remotes", remote_rename },
		{ "set-url", NULL, "Set the URL for the remote", remote_set_url },
		{ "switch", NULL, "Switch the default remote", remote_switch },
		{ NULL },
	};
	return cli_run_subcommand("remote", subs, argc, argv);
}
