/* ferryd's TLS identity, certificates and the trust password, through
 * GnuTLS (see tls.h). No cryptography of our own: keys, certificates,
 * digests, PBKDF2, randomness and base64 all come from GnuTLS. */
#include "daemon/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

/* PBKDF2-HMAC-SHA256 iterations: OWASP's 2023 advice for this KDF. */
#define TRUST_PASSWORD_ITERATIONS 600000
#define TRUST_PASSWORD_SALT_SIZE 16
#define TRUST_PASSWORD_HASH_SIZE 32
/* Ten years, as LXD's certificates. */
#define CERTIFICATE_LIFETIME_S (10LL * 365 * 24 * 3600)

static char *server_cert_pem;
static char *server_key_pem;
static char server_fingerprint[TLS_FINGERPRINT_SIZE];

static void gnutls_free_datum(gnutls_datum_t *d)
{
	gnutls_free(d->data);
	d->data = NULL;
	d->size = 0;
}
#define cleanup_datum __attribute__((cleanup(gnutls_free_datum)))

static void x509_crt_deinitp(gnutls_x509_crt_t *crt)
{
	if (*crt != NULL)
		gnutls_x509_crt_deinit(*crt);
}
#define cleanup_crt __attribute__((cleanup(x509_crt_deinitp)))

static void x509_privkey_deinitp(gnutls_x509_privkey_t *key)
{
	if (*key != NULL)
		gnutls_x509_privkey_deinit(*key);
}
#define cleanup_privkey __attribute__((cleanup(x509_privkey_deinitp)))

static int gnutls_error(struct ferry_error **err, int status, int code, const char *what)
{
	return error_set(err, status, EPROTO, "%s: %s", what, gnutls_strerror(code));
}

static void hex_encode(const unsigned char *data, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[data[i] >> 4];
		out[2 * i + 1] = digits[data[i] & 15];
	}
	out[2 * len] = '\0';
}

static int crt_fingerprint(gnutls_x509_crt_t crt, char out[TLS_FINGERPRINT_SIZE], struct ferry_error **err)
{
	unsigned char digest[32];
	size_t size = sizeof(digest);
	int r = gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, digest, &size);
	if (r < 0 || size != sizeof(digest))
		return gnutls_error(err, 500, r, "certificate fingerprint");
	hex_encode(digest, size, out);
	return 0;
}

/* The subject's common name, or "". */
static char *crt_common_name(gnutls_x509_crt_t crt)
{
	char buf[256];
	size_t size = sizeof(buf);
	if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf, &size) < 0)
		return xstrdup("");
	return xstrdup(buf);
}

static char *crt_pem(gnutls_x509_crt_t crt, struct ferry_error **err)
{
	cleanup_datum gnutls_datum_t out = { 0 };
	int r = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &out);
	if (r < 0) {
		gnutls_error(err, 500, r, "export certificate");
		return NULL;
	}
	char *pem = xcalloc(1, out.size + 1);
	memcpy(pem, out.data, out.size);
	return pem;
}

/* A new self-signed certificate for key: see tls.h. */
static int identity_create(const char *hostname, char **key_pem, char **cert_pem, struct ferry_error **err)
{
	cleanup_privkey gnutls_x509_privkey_t key = NULL;
	cleanup_crt gnutls_x509_crt_t crt = NULL;
	int r;
	if ((r = gnutls_x509_privkey_init(&key)) < 0 ||
	    (r = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP384R1),
					      0)) < 0)
		return gnutls_error(err, 500, r, "generate an ECDSA P-384 key");
	cleanup_datum gnutls_datum_t key_out = { 0 };
	if ((r = gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &key_out)) < 0)
		return gnutls_error(err, 500, r, "export the key");

	unsigned char serial[16];
	if ((r = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial))) < 0)
		return gnutls_error(err, 500, r, "random serial");
	serial[0] &= 0x7f; /* a positive number */
	time_t now = time(NULL);
	static const char organization[] = "ferry";
	unsigned char ipv4[4], ipv6[16];
	inet_pton(AF_INET, "127.0.0.1", ipv4);
	inet_pton(AF_INET6, "::1", ipv6);
	if ((r = gnutls_x509_crt_init(&crt)) < 0 || (r = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
	    (r = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial))) < 0 ||
	    /* a minute back: clocks of two hosts differ a little */
	    (r = gnutls_x509_crt_set_activation_time(crt, now - 60)) < 0 ||
	    (r = gnutls_x509_crt_set_expiration_time(crt, now + CERTIFICATE_LIFETIME_S)) < 0 ||
	    (r = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_ORGANIZATION_NAME, 0, organization,
					       strlen(organization))) < 0 ||
	    (r = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, hostname, strlen(hostname))) < 0 ||
	    (r = gnutls_x509_crt_set_key(crt, key)) < 0 ||
	    (r = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) < 0 ||
	    (r = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_KEY_ENCIPHERMENT)) < 0 ||
	    (r = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0)) < 0 ||
	    (r = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_CLIENT, 0)) < 0 ||
	    /* The host name first: the lxc client verifies the name against the
	     * first DNS name of the certificate it pinned. */
	    (r = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, hostname, strlen(hostname),
						      GNUTLS_FSAN_APPEND)) < 0 ||
	    (r = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ipv4, sizeof(ipv4),
						      GNUTLS_FSAN_APPEND)) < 0 ||
	    (r = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ipv6, sizeof(ipv6),
						      GNUTLS_FSAN_APPEND)) < 0 ||
	    (r = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA384, 0)) < 0)
		return gnutls_error(err, 500, r, "make the server certificate");
	char *pem = crt_pem(crt, err);
	if (pem == NULL)
		return -1;
	*cert_pem = pem;
	*key_pem = xcalloc(1, key_out.size + 1);
	memcpy(*key_pem, key_out.data, key_out.size);
	return 0;
}

int tls_identity_init(const char *root, const char *hostname, struct ferry_error **err)
{
	cleanup_free char *key_path = xasprintf("%s/server.key", root);
	cleanup_free char *cert_path = xasprintf("%s/server.crt", root);
	cleanup_free char *key_pem = NULL, *cert_pem = NULL;
	if (access(key_path, F_OK) == 0 || access(cert_path, F_OK) == 0) {
		if (file_read(key_path, &key_pem, NULL, err) < 0 || file_read(cert_path, &cert_pem, NULL, err) < 0)
			return error_wrap(err, "load the server's TLS identity");
		/* Whatever happened to it since: the key is the server's alone. */
		if (chmod(key_path, 0600) < 0)
			return error_sys(err, errno, "chmod %s", key_path);
	} else {
		if (identity_create(hostname && *hostname ? hostname : "ferry", &key_pem, &cert_pem, err) < 0)
			return error_wrap(err, "make the server's TLS identity");
		if (file_write_atomic(key_path, key_pem, strlen(key_pem), 0600, err) < 0 ||
		    file_write_atomic(cert_path, cert_pem, strlen(cert_pem), 0644, err) < 0)
			return error_wrap(err, "store the server's TLS identity");
		log_info("made the server's key and certificate: %s, %s", key_path, cert_path);
	}
	cleanup_free char *fingerprint = NULL;
	if (tls_certificate_parse(cert_pem, NULL, &fingerprint, NULL, err) < 0)
		return error_wrap(err, "server certificate %s", cert_path);
	/* The key must be the certificate's: a mismatch would only show at the first handshake. */
	gnutls_certificate_credentials_t creds = NULL;
	gnutls_datum_t cert_d = { (unsigned char *)cert_pem, strlen(cert_pem) };
	gnutls_datum_t key_d = { (unsigned char *)key_pem, strlen(key_pem) };
	int r = gnutls_certificate_allocate_credentials(&creds);
	if (r >= 0)
		r = gnutls_certificate_set_x509_key_mem(creds, &cert_d, &key_d, GNUTLS_X509_FMT_PEM);
	if (creds != NULL)
		gnutls_certificate_free_credentials(creds);
	if (r < 0)
		return gnutls_error(err, 500, r, "server key and certificate");
	free(server_cert_pem);
	free(server_key_pem);
	server_cert_pem = steal_pointer(&cert_pem);
	server_key_pem = steal_pointer(&key_pem);
	snprintf(server_fingerprint, sizeof(server_fingerprint), "%s", fingerprint);
	log_info("server certificate fingerprint %s", server_fingerprint);
	return 0;
}

const char *tls_server_certificate_pem(void)
{
	return server_cert_pem ? server_cert_pem : "";
}

const char *tls_server_key_pem(void)
{
	return server_key_pem ? server_key_pem : "";
}

const char *tls_server_fingerprint(void)
{
	return server_fingerprint;
}

static int crt_outputs(gnutls_x509_crt_t crt, char **pem, char **fingerprint, char **common_name,
		       struct ferry_error **err)
{
	char fp[TLS_FINGERPRINT_SIZE];
	if (crt_fingerprint(crt, fp, err) < 0)
		return -1;
	char *p = NULL;
	if (pem != NULL && (p = crt_pem(crt, err)) == NULL)
		return -1;
	if (pem != NULL)
		*pem = p;
	if (fingerprint != NULL)
		*fingerprint = xstrdup(fp);
	if (common_name != NULL)
		*common_name = crt_common_name(crt);
	return 0;
}

int tls_certificate_parse(const char *text, char **pem, char **fingerprint, char **common_name,
			  struct ferry_error **err)
{
	cleanup_crt gnutls_x509_crt_t crt = NULL;
	int r = gnutls_x509_crt_init(&crt);
	if (r < 0)
		return gnutls_error(err, 500, r, "certificate");
	if (strstr(text, "-----BEGIN CERTIFICATE-----") != NULL) {
		gnutls_datum_t d = { (unsigned char *)text, strlen(text) };
		r = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM);
	} else {
		cleanup_free unsigned char *der = NULL;
		size_t len = 0;
		if (tls_base64_decode(text, &der, &len) < 0)
			return error_bad_request(err, "Invalid certificate: neither PEM nor base64");
		gnutls_datum_t d = { der, len };
		r = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER);
	}
	if (r < 0)
		return gnutls_error(err, 400, r, "Invalid certificate material");
	time_t now = time(NULL);
	if (gnutls_x509_crt_get_expiration_time(crt) < now)
		return error_bad_request(err, "Invalid certificate: it has expired");
	return crt_outputs(crt, pem, fingerprint, common_name, err);
}

static gnutls_session_t connection_session(struct MHD_Connection *conn)
{
	if (conn == NULL)
		return NULL;
	const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	return info != NULL ? (gnutls_session_t)info->tls_session : NULL;
}

int tls_connection_peer(struct MHD_Connection *conn, char **pem, char **fingerprint, char **common_name)
{
	gnutls_session_t session = connection_session(conn);
	if (session == NULL)
		return -1;
	unsigned int n = 0;
	const gnutls_datum_t *peers = gnutls_certificate_get_peers(session, &n);
	if (peers == NULL || n == 0)
		return -1;
	cleanup_crt gnutls_x509_crt_t crt = NULL;
	if (gnutls_x509_crt_init(&crt) < 0 || gnutls_x509_crt_import(crt, &peers[0], GNUTLS_X509_FMT_DER) < 0)
		return -1;
	/* The handshake proved the client holds the key; a certificate past
	 * its dates proves nothing more to us than a fresh one, but LXD
	 * refuses those too. */
	time_t now = time(NULL);
	if (gnutls_x509_crt_get_expiration_time(crt) < now || gnutls_x509_crt_get_activation_time(crt) > now + 300)
		return -1;
	return crt_outputs(crt, pem, fingerprint, common_name, NULL);
}

void tls_connection_request_peer(struct MHD_Connection *conn)
{
	gnutls_session_t session = connection_session(conn);
	if (session == NULL)
		return;
	gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUEST);
	gnutls_certificate_send_x509_rdn_sequence(session, 1);
}

char *tls_base64_encode(const void *data, size_t len)
{
	gnutls_datum_t in = { (unsigned char *)data, len };
	cleanup_datum gnutls_datum_t out = { 0 };
	if (gnutls_base64_encode2(&in, &out) < 0)
		abort();
	char *text = xcalloc(1, out.size + 1);
	memcpy(text, out.data, out.size);
	return text;
}

int tls_base64_decode(const char *text, unsigned char **data, size_t *len)
{
	gnutls_datum_t in = { (unsigned char *)text, strlen(text) };
	cleanup_datum gnutls_datum_t out = { 0 };
	if (in.size == 0 || gnutls_base64_decode2(&in, &out) < 0)
		return -1;
	*data = xcalloc(1, out.size + 1);
	memcpy(*data, out.data, out.size);
	*len = out.size;
	return 0;
}

char *tls_random_hex(size_t n)
{
	unsigned char *bytes = xcalloc(1, n);
	if (gnutls_rnd(GNUTLS_RND_RANDOM, bytes, n) < 0)
		abort();
	char *hex = xcalloc(1, 2 * n + 1);
	hex_encode(bytes, n, hex);
	free(bytes);
	return hex;
}

static int pbkdf2(const char *password, const unsigned char *salt, size_t salt_len, unsigned iterations,
		  unsigned char out[TRUST_PASSWORD_HASH_SIZE])
{
	gnutls_datum_t key = { (unsigned char *)password, strlen(password) };
	gnutls_datum_t salt_d = { (unsigned char *)salt, salt_len };
	return gnutls_pbkdf2(GNUTLS_MAC_SHA256, &key, &salt_d, iterations, out, TRUST_PASSWORD_HASH_SIZE);
}

char *trust_password_hash(const char *password)
{
	unsigned char salt[TRUST_PASSWORD_SALT_SIZE], hash[TRUST_PASSWORD_HASH_SIZE];
	if (gnutls_rnd(GNUTLS_RND_RANDOM, salt, sizeof(salt)) < 0 ||
	    pbkdf2(password, salt, sizeof(salt), TRUST_PASSWORD_ITERATIONS, hash) < 0)
		abort();
	cleanup_free char *salt_b64 = tls_base64_encode(salt, sizeof(salt));
	cleanup_free char *hash_b64 = tls_base64_encode(hash, sizeof(hash));
	gnutls_memset(hash, 0, sizeof(hash));
	return xasprintf("pbkdf2-sha256$%u$%s$%s", TRUST_PASSWORD_ITERATIONS, salt_b64, hash_b64);
}

bool trust_password_check(const char *stored_hash, const char *password)
{
	/* One check at a time: the KDF's cost then bounds the guesses per
	 * second for everyone together, and the CPU it can take. */
	static pthread_mutex_t check_lock = PTHREAD_MUTEX_INITIALIZER;
	if (stored_hash == NULL || password == NULL)
		return false;
	unsigned iterations = 0;
	char salt_b64[64], hash_b64[64];
	if (sscanf(stored_hash, "pbkdf2-sha256$%u$%63[^$]$%63s", &iterations, salt_b64, hash_b64) != 3 ||
	    iterations < 1000 || iterations > 100000000) {
		/* The D1 format (sha256:SALT:HASH) was a fast hash: not accepted. */
		log_warn("core.trust_password is stored in a format this ferryd does not accept: set it again");
		return false;
	}
	cleanup_free unsigned char *salt = NULL, *expected = NULL;
	size_t salt_len = 0, expected_len = 0;
	if (tls_base64_decode(salt_b64, &salt, &salt_len) < 0 ||
	    tls_base64_decode(hash_b64, &expected, &expected_len) < 0 || expected_len != TRUST_PASSWORD_HASH_SIZE)
		return false;
	unsigned char hash[TRUST_PASSWORD_HASH_SIZE];
	pthread_mutex_lock(&check_lock);
	int r = pbkdf2(password, salt, salt_len, iterations, hash);
	pthread_mutex_unlock(&check_lock);
	bool match = r >= 0 && gnutls_memcmp(hash, expected, sizeof(hash)) == 0;
	gnutls_memset(hash, 0, sizeof(hash));
	return match;
}

int trust_token_expiry(const char *text, time_t from, time_t *at, struct ferry_error **err)
{
	static const char units[] = "SMHdwmy";
	long long amount[sizeof(units) - 1] = { 0 };
	bool seen[sizeof(units) - 1] = { false };
	const char *p = text;
	while (*p == ' ')
		p++;
	if (*p == '\0')
		return error_bad_request(err, "Invalid expiry expression \"%s\"", text);
	while (*p != '\0') {
		char *end = NULL;
		if (*p < '0' || *p > '9')
			return error_bad_request(err, "Invalid expiry expression \"%s\"", text);
		long long n = strtoll(p, &end, 10);
		const char *unit = *end != '\0' ? strchr(units, *end) : NULL;
		if (unit == NULL || n > 100000 || (end[1] != '\0' && end[1] != ' ') || seen[unit - units])
			return error_bad_request(err, "Invalid expiry expression \"%s\"", text);
		seen[unit - units] = true;
		amount[unit - units] = n;
		p = end + 1;
		while (*p == ' ')
			p++;
	}
	/* Calendar units through mktime, as Go's AddDate: a month from
	 * January 31 is March 3 (or 2). */
	struct tm tm;
	localtime_r(&from, &tm);
	tm.tm_year += amount[6];
	tm.tm_mon += amount[5];
	tm.tm_mday += amount[3] + 7 * amount[4];
	tm.tm_isdst = -1;
	time_t day = mktime(&tm);
	if (day == (time_t)-1)
		return error_bad_request(err, "Invalid expiry expression \"%s\"", text);
	*at = day + amount[2] * 3600 + amount[1] * 60 + amount[0];
	return 0;
}

