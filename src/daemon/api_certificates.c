/* /1.0/certificates: the trust store, and the ways into it (LXD's
 * lxd/certificates.go).
 *
 * An untrusted HTTPS client becomes trusted by POST /1.0/certificates with
 * the trust password or a token; its own TLS certificate is then added.
 * A token is made by a trusted client (POST {"name":..., "token":true}) and
 * lives as an operation of class "token" until it is used (once), revoked
 * (DELETE /1.0/operations/ID) or expires (core.remote_token_expiry, 1 hour
 * by default). The token string is LXD's: base64 of the JSON
 * {"client_name","fingerprint","addresses","secret","expires_at"}, so that
 * `lxc remote add NAME TOKEN` works unchanged. */
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"
#include "daemon/daemon.h"
#include "daemon/db.h"
#include "daemon/db_certificates.h"
#include "daemon/events.h"
#include "daemon/operations.h"
#include "daemon/request.h"
#include "daemon/server.h"
#include "daemon/tls.h"

#define TOKEN_EXPIRY_DEFAULT "1H"
/* Bytes of randomness in a token's secret. */
#define TOKEN_SECRET_BYTES 32

/* A token not yet used. The list owns it; its operation knows it by id. */
struct trust_token {
	char *secret;
	char op_id[37];
	long long expires_ms;  /* monotonic */
	char *name;
	bool restricted;
	json_t *projects;
	struct trust_token *next;
};

static pthread_mutex_t tokens_lock = PTHREAD_MUTEX_INITIALIZER;
static struct trust_token *tokens;

static void trust_token_free(struct trust_token *t)
{
	if (t == NULL)
		return;
	free(t->secret);
	free(t->name);
	json_decref(t->projects);
	free(t);
}

static void trust_token_freep(struct trust_token **t)
{
	trust_token_free(*t);
}
#define cleanup_token __attribute__((cleanup(trust_token_freep)))


/* Take a token out of the list: by secret (compared in constant time) or by
 * operation id. The caller owns what it gets. */
static struct trust_token *tokens_take(const char *secret, const char *op_id)
{
	pthread_mutex_lock(&tokens_lock);
	struct trust_token **pp = &tokens, *found = NULL;
	for (; *pp != NULL; pp = &(*pp)->next) {
		struct trust_token *t = *pp;
		bool match = secret != NULL ? strlen(t->secret) == strlen(secret) &&
						      gnutls_memcmp(t->secret, secret, strlen(secret)) == 0
					    : op_id != NULL && strcmp(t->op_id, op_id) == 0;
		if (match) {
			found = t;
			*pp = t->next;
			found->next = NULL;
			break;
		}
	}
	pthread_mutex_unlock(&tokens_lock);
	return found;
}

/* The token operation's function: it waits to be used or revoked (both
 * cancel it), or to expire. */
static int token_operation_run(struct operation *op, void *data, struct ferry_error **err)
{
	const char *op_id = operation_id(op);
	long long left = 0;
	pthread_mutex_lock(&tokens_lock);
	for (struct trust_token *t = tokens; t != NULL; t = t->next)
		if (strcmp(t->op_id, op_id) == 0)
			left = t->expires_ms - now_ms();
	pthread_mutex_unlock(&tokens_lock);
	bool cancelled = left > 0 && operation_wait_cancel(op, left);
	trust_token_free(tokens_take(NULL, op_id));
	if (cancelled)
		return 0;
	return error_set(err, 403, 0, "Token has expired");
}

static void operation_unrefp(struct operation **op)
{
	operation_unref(*op);
}
#define cleanup_operation __attribute__((cleanup(operation_unrefp)))

/* Use the token whose secret this is: taken out at once (single use), and
 * its operation cancelled. 403 when unknown, used, revoked or expired. */
static int token_use(const char *secret, struct trust_token **out, struct ferry_error **err)
{
	cleanup_token struct trust_token *t = tokens_take(secret, NULL);
	if (t == NULL)
		return error_set(err, 403, EACCES, "No matching certificate add operation found");
	cleanup_operation struct operation *op = operation_get(t->op_id);
	cleanup_error struct ferry_error *cancel_err = NULL;
	if (op == NULL || operation_cancel(op, &cancel_err) < 0)
		return error_set(err, 403, EACCES, "No matching certificate add operation found");
	if (now_ms() >= t->expires_ms)
		return error_set(err, 403, EACCES, "Token has expired");
	*out = steal_pointer(&t);
	return 0;
}

/* The secret of LXD's token string, or NULL when text is no token. */
static char *token_secret_decode(const char *text)
{
	cleanup_free unsigned char *raw = NULL;
	size_t len = 0;
	if (tls_base64_decode(text, &raw, &len) < 0)
		return NULL;
	json_t *token = json_loadb((const char *)raw, len, 0, NULL);
	const char *secret = json_string_value(json_object_get(token, "secret"));
	char *copy = secret != NULL && *secret != '\0' ? xstrdup(secret) : NULL;
	json_decref(token);
	return copy;
}

static json_t *certificate_json(const struct db_certificate *cert)
{
	return json_pack("{s:s, s:s, s:b, s:O, s:s, s:s}", "name", cert->name, "type", cert->type, "restricted",
			 cert->restricted, "projects", cert->projects ? cert->projects : json_array(),
			 "certificate", cert->certificate, "fingerprint", cert->fingerprint);
}

static struct response *certificates_get(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	json_t *fingerprints = NULL;
	if (db_certificate_list(daemon_ctx->db, &fingerprints, &err) < 0)
		return response_from_error(err);
	bool recursive = request_recursion(req) > 0;
	json_t *list = json_array();
	size_t i;
	json_t *fp;
	json_array_foreach(fingerprints, i, fp) {
		if (!recursive) {
			json_array_append_new(list, json_sprintf("/1.0/certificates/%s", json_string_value(fp)));
			continue;
		}
		struct db_certificate cert = { 0 };
		if (db_certificate_get(daemon_ctx->db, json_string_value(fp), &cert, NULL) < 0)
			continue; /* removed meanwhile */
		json_array_append_new(list, certificate_json(&cert));
		db_certificate_clear(&cert);
	}
	json_decref(fingerprints);
	return response_sync(list);
}

static bool certificate_type_valid(const char *type)
{
	return strcmp(type, "client") == 0 || strcmp(type, "server") == 0 || strcmp(type, "metrics") == 0;
}

/* A list of project names, or 400. */
static int projects_check(json_t *projects, struct ferry_error **err)
{
	if (!json_is_array(projects))
		return error_bad_request(err, "\"projects\" must be a list of project names");
	size_t i;
	json_t *p;
	json_array_foreach(projects, i, p)
		if (!json_is_string(p))
			return error_bad_request(err, "\"projects\" must be a list of project names");
	return 0;
}

/* The client's IP address, the name of last resort. */
static char *client_address(const struct request *req)
{
	const union MHD_ConnectionInfo *info =
		req->conn ? MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS) : NULL;
	char text[INET6_ADDRSTRLEN] = "";
	if (info != NULL && info->client_addr != NULL) {
		const struct sockaddr *sa = info->client_addr;
		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, text, sizeof(text));
		else if (sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, text, sizeof(text));
	}
	return xstrdup(text);
}

/* {"name","token":true}: a token operation for a client of that name. */
static struct response *token_create(struct request *req, const char *name, bool restricted, json_t *projects)
{
	cleanup_error struct ferry_error *err = NULL;
	json_t *addresses = server_https_addresses();
	if (json_array_size(addresses) == 0) {
		json_decref(addresses);
		return response_error(400, "Can't issue token when server isn't listening on network");
	}
	json_t *config = NULL;
	if (db_config_get_all(daemon_ctx->db, &config, &err) < 0) {
		json_decref(addresses);
		return response_from_error(err);
	}
	const char *expiry = json_string_value(json_object_get(config, "core.remote_token_expiry"));
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	time_t expires_at = 0;
	if (trust_token_expiry(expiry && *expiry ? expiry : TOKEN_EXPIRY_DEFAULT, now.tv_sec, &expires_at, &err) < 0) {
		json_decref(config);
		json_decref(addresses);
		return response_from_error(err);
	}
	json_decref(config);
	struct timespec expires_ts = { .tv_sec = expires_at, .tv_nsec = now.tv_nsec };
	cleanup_free char *expires_text = time_rfc3339(&expires_ts);

	struct trust_token *t = xcalloc(1, sizeof(*t));
	t->secret = tls_random_hex(TOKEN_SECRET_BYTES);
	t->expires_ms = now_ms() + (long long)(expires_at - now.tv_sec) * 1000;
	t->name = xstrdup(name);
	t->restricted = restricted;
	t->projects = json_incref(projects);

	/* The metadata lxc reads back (api.Operation.ToCertificateAddToken):
	 * request.name, secret, fingerprint, addresses, expiresAt. */
	json_t *metadata = json_pack("{s:{s:s, s:s, s:b, s:O, s:s, s:s, s:b}, s:s, s:s, s:o, s:s}", "request", "name",
				     name, "type", "client", "restricted", restricted, "projects", projects,
				     "certificate", "", "password", "", "token", 1, "secret", t->secret, "fingerprint",
				     tls_server_fingerprint(), "addresses", addresses, "expiresAt", expires_text);
	struct operation *op = operation_new(OPERATION_TOKEN, "Certificate add token", NULL, token_operation_run, NULL,
					     NULL, NULL);
	snprintf(t->op_id, sizeof(t->op_id), "%s", operation_id(op));
	operation_set_metadata(op, metadata);
	/* Listed before the operation runs: its function looks its token up. */
	pthread_mutex_lock(&tokens_lock);
	t->next = tokens;
	tokens = t;
	pthread_mutex_unlock(&tokens_lock);
	log_info("certificate add token for \"%s\" (operation %s), expires %s", name, t->op_id, expires_text);
	operation_start(op);
	struct response *resp = response_async(op);
	operation_unref(op);
	return resp;
}

static struct response *certificates_post(struct request *req)
{
	json_t *body = req->body;
	if (!json_is_object(body))
		return response_error(400, "Expected a JSON object");
	const char *type = json_string_value(json_object_get(body, "type"));
	const char *name = json_string_value(json_object_get(body, "name"));
	const char *certificate = json_string_value(json_object_get(body, "certificate"));
	const char *password = json_string_value(json_object_get(body, "password"));
	if (password == NULL || *password == '\0')
		password = json_string_value(json_object_get(body, "trust_token"));
	bool token = json_is_true(json_object_get(body, "token"));
	bool restricted = json_is_true(json_object_get(body, "restricted"));
	json_t *projects = json_object_get(body, "projects");
	cleanup_error struct ferry_error *err = NULL;
	if (projects == NULL || json_is_null(projects))
		projects = json_array();
	else
		json_incref(projects);
	json_auto_t *projects_owned = projects;
	if (projects_check(projects, &err) < 0)
		return response_from_error(err);
	if (type == NULL || *type == '\0')
		type = "client";
	if (!certificate_type_valid(type))
		return response_error(400, "Invalid certificate type \"%s\"", type);
	if (certificate != NULL && *certificate == '\0')
		certificate = NULL;
	if (token && certificate != NULL)
		return response_error(400, "Can't use certificate if token is requested");
	if (token && strcmp(type, "client") != 0)
		return response_error(400, "Tokens can only be issued for client certificates");
	if (req->trusted && certificate == NULL && !token)
		return response_error(400, "Client is already trusted");

	cleanup_token struct trust_token *used = NULL;
	if (!req->trusted) {
		if (token || password == NULL || *password == '\0')
			return response_error(403, "not authorized");
		cleanup_free char *secret = token_secret_decode(password);
		cleanup_free char *client = client_address(req);
		if (secret != NULL) {
			if (token_use(secret, &used, &err) < 0) {
				log_warn("refused a certificate add token from %s: %s", client, err->msg);
				return response_from_error(err);
			}
			/* The token decides what is added, as in LXD: the client's own certificate. */
			name = used->name;
			type = "client";
			restricted = used->restricted;
			json_decref(projects_owned);
			projects = projects_owned = json_incref(used->projects);
			certificate = NULL;
		} else {
			json_t *config = NULL;
			if (db_config_get_all(daemon_ctx->db, &config, &err) < 0)
				return response_from_error(err);
			bool match = trust_password_check(
				json_string_value(json_object_get(config, "core.trust_password")), password);
			json_decref(config);
			if (!match) {
				log_warn("bad trust password from %s", client);
				return response_error(403, "not authorized");
			}
		}
	} else if (token) {
		if (name == NULL || *name == '\0')
			return response_error(400, "A token needs the name of the client it is for");
		return token_create(req, name, restricted, projects);
	}

	struct db_certificate cert = { 0 };
	cleanup_free char *common_name = NULL;
	if (certificate != NULL) {
		if (tls_certificate_parse(certificate, &cert.certificate, &cert.fingerprint, &common_name, &err) < 0)
			return response_from_error(err);
	} else if (tls_connection_peer(req->conn, &cert.certificate, &cert.fingerprint, &common_name) < 0) {
		return response_error(400, req->trusted ? "Can't use TLS data on non-TLS link"
							: "No client certificate provided");
	}
	cert.type = xstrdup(type);
	cert.name = name != NULL && *name != '\0' ? xstrdup(name)
		    : common_name != NULL && *common_name != '\0' ? xstrdup(common_name)
								  : client_address(req);
	cert.restricted = restricted;
	cert.projects = json_incref(projects);
	if (db_certificate_create(daemon_ctx->db, &cert, &err) < 0) {
		db_certificate_clear(&cert);
		return response_from_error(err);
	}
	cleanup_free char *url = xasprintf("/1.0/certificates/%s", cert.fingerprint);
	log_info("certificate %s (\"%s\", %s) added to the trust store%s", cert.fingerprint, cert.name, cert.type,
		 used != NULL ? " with a token" : req->trusted ? "" : " with the trust password");
	events_lifecycle("certificate-created", url, NULL);
	db_certificate_clear(&cert);
	struct response *resp = response_sync(NULL);
	/* LXD answers 201 Created with the new certificate's URL. */
	resp->status = 201;
	response_add_header(resp, "Location", url);
	return resp;
}

static struct response *certificate_get(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	struct db_certificate cert = { 0 };
	if (db_certificate_get(daemon_ctx->db, req->params[0], &cert, &err) < 0)
		return response_from_error(err);
	json_t *j = certificate_json(&cert);
	db_certificate_clear(&cert);
	return response_sync(j);
}

/* PUT replaces name, type, restricted and projects; PATCH only those given.
 * The certificate itself stays: a new one is a new entry. (No cleanup
 * variables after the first goto: it would jump over their start.) */
static struct response *certificate_update(struct request *req, bool replace)
{
	if (!json_is_object(req->body))
		return response_error(400, "Expected a JSON object");
	cleanup_error struct ferry_error *err = NULL;
	struct db_certificate cert = { 0 };
	if (db_certificate_get(daemon_ctx->db, req->params[0], &cert, &err) < 0)
		return response_from_error(err);
	json_t *name = json_object_get(req->body, "name");
	json_t *type = json_object_get(req->body, "type");
	json_t *restricted = json_object_get(req->body, "restricted");
	json_t *projects = json_object_get(req->body, "projects");
	const char *certificate = json_string_value(json_object_get(req->body, "certificate"));
	struct response *resp = NULL;
	if ((name != NULL && !json_is_string(name)) || (type != NULL && !json_is_string(type)) ||
	    (restricted != NULL && !json_is_boolean(restricted))) {
		resp = response_error(400, "Invalid certificate fields");
		goto out;
	}
	if (certificate != NULL && *certificate != '\0') {
		cleanup_free char *fingerprint = NULL;
		if (tls_certificate_parse(certificate, NULL, &fingerprint, NULL, &err) < 0) {
			resp = response_from_error(err);
			goto out;
		}
		if (strcmp(fingerprint, cert.fingerprint) != 0) {
			resp = response_error(400, "The certificate itself can't be changed: add the new one instead");
			goto out;
		}
	}
	if (name != NULL || replace) {
		free(cert.name);
		cert.name = xstrdup(name ? json_string_value(name) : "");
	}
	if (type != NULL || replace) {
		const char *t = type && *json_string_value(type) ? json_string_value(type) : "client";
		if (!certificate_type_valid(t)) {
			resp = response_error(400, "Invalid certificate type \"%s\"", t);
			goto out;
		}
		free(cert.type);
		cert.type = xstrdup(t);
	}
	if (restricted != NULL || replace)
		cert.restricted = json_is_true(restricted);
	if (projects != NULL || replace) {
		json_t *p = projects && !json_is_null(projects) ? projects : NULL;
		if (p != NULL && projects_check(p, &err) < 0) {
			resp = response_from_error(err);
			goto out;
		}
		json_decref(cert.projects);
		cert.projects = p != NULL ? json_incref(p) : json_array();
	}
	if (db_certificate_update(daemon_ctx->db, &cert, &err) < 0) {
		resp = response_from_error(err);
		goto out;
	}
	char *url = xasprintf("/1.0/certificates/%s", cert.fingerprint);
	events_lifecycle("certificate-updated", url, NULL);
	free(url);
	resp = response_sync(NULL);
out:
	db_certificate_clear(&cert);
	return resp;
}

static struct response *certificate_put(struct request *req)
{
	return certificate_update(req, true);
}

static struct response *certificate_patch(struct request *req)
{
	return certificate_update(req, false);
}

static struct response *certificate_delete(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	struct db_certificate cert = { 0 };
	if (db_certificate_get(daemon_ctx->db, req->params[0], &cert, &err) < 0)
		return response_from_error(err);
	/* Every request checks the trust store: from now on this certificate's
	 * holder is untrusted, also on its connections already open. */
	int r = db_certificate_delete(daemon_ctx->db, cert.fingerprint, &err);
	if (r == 0) {
		log_info("certificate %s (\"%s\") removed from the trust store", cert.fingerprint, cert.name);
		cleanup_free char *url = xasprintf("/1.0/certificates/%s", cert.fingerprint);
		events_lifecycle("certificate-deleted", url, NULL);
	}
	db_certificate_clear(&cert);
	return r < 0 ? response_from_error(err) : response_sync(NULL);
}

const struct route api_certificates_routes[] = {
	{ "GET", "/1.0/certificates", certificates_get },
	{ "POST", "/1.0/certificates", certificates_post, true },
	{ "GET", "/1.0/certificates/{fingerprint}", certificate_get },
	{ "PUT", "/1.0/certificates/{fingerprint}", certificate_put },
	{ "PATCH", "/1.0/certificates/{fingerprint}", certificate_patch },
	{ "DELETE", "/1.0/certificates/{fingerprint}", certificate_delete },
	{ NULL },
};
