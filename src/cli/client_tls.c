/* The client's TLS identity and certificate pins: see client_tls.h. */
#include "cli/client_tls.h"

#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/remotes.h"
#include "common/util.h"

#define CLIENT_CERT_LIFETIME_S (10LL * 365 * 24 * 3600)

static void datum_freep(gnutls_datum_t *d)
{
	gnutls_free(d->data);
	d->data = NULL;
}
#define cleanup_datum __attribute__((cleanup(datum_freep)))

static void crt_deinitp(gnutls_x509_crt_t *crt)
{
	if (*crt != NULL)
		gnutls_x509_crt_deinit(*crt);
}
#define cleanup_crt __attribute__((cleanup(crt_deinitp)))

static void privkey_deinitp(gnutls_x509_privkey_t *key)
{
	if (*key != NULL)
		gnutls_x509_privkey_deinit(*key);
}

static void pubkey_deinitp(gnutls_pubkey_t *key)
{
	if (*key != NULL)
		gnutls_pubkey_deinit(*key);
}

static int tls_error(struct ferry_error **err, int code, const char *what)
{
	return error_set(err, 500, EPROTO, "%s: %s", what, gnutls_strerror(code));
}

static int crt_from_pem(const char *pem, gnutls_x509_crt_t *out, struct ferry_error **err)
{
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t d = { (unsigned char *)pem, strlen(pem) };
	int r = gnutls_x509_crt_init(&crt);
	if (r >= 0)
		r = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM);
	if (r < 0) {
		if (crt != NULL)
			gnutls_x509_crt_deinit(crt);
		return error_set(err, 400, EINVAL, "Invalid certificate: %s", gnutls_strerror(r));
	}
	*out = crt;
	return 0;
}

static int identity_create(const char *cert_path, const char *key_path, struct ferry_error **err)
{
	__attribute__((cleanup(privkey_deinitp))) gnutls_x509_privkey_t key = NULL;
	cleanup_crt gnutls_x509_crt_t crt = NULL;
	int r;
	if ((r = gnutls_x509_privkey_init(&key)) < 0 ||
	    (r = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP384R1),
					      0)) < 0)
		return tls_error(err, r, "generate the client's ECDSA P-384 key");
	cleanup_datum gnutls_datum_t key_pem = { 0 };
	if ((r = gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &key_pem)) < 0)
		return tls_error(err, r, "export the client's key");

	char host[256] = "localhost";
	gethostname(host, sizeof(host) - 1);
	cleanup_free char *cn = xasprintf("root@%s", host);
	unsigned char serial[16];
	if ((r = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial))) < 0)
		return tls_error(err, r, "random serial");
	serial[0] &= 0x7f;
	time_t now = time(NULL);
	static const char organization[] = "ferry";
	if ((r = gnutls_x509_crt_init(&crt)) < 0 || (r = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
	    (r = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial))) < 0 ||
	    (r = gnutls_x509_crt_set_activation_time(crt, now - 60)) < 0 ||
	    (r = gnutls_x509_crt_set_expiration_time(crt, now + CLIENT_CERT_LIFETIME_S)) < 0 ||
	    (r = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_ORGANIZATION_NAME, 0, organization,
					       strlen(organization))) < 0 ||
	    (r = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, strlen(cn))) < 0 ||
	    (r = gnutls_x509_crt_set_key(crt, key)) < 0 ||
	    (r = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) < 0 ||
	    (r = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE)) < 0 ||
	    (r = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_CLIENT, 0)) < 0 ||
	    (r = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA384, 0)) < 0)
		return tls_error(err, r, "make the client certificate");
	cleanup_datum gnutls_datum_t crt_pem = { 0 };
	if ((r = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &crt_pem)) < 0)
		return tls_error(err, r, "export the client certificate");
	/* The key first: a certificate without its key would be useless. */
	if (file_write_atomic(key_path, key_pem.data, key_pem.size, 0600, err) < 0 ||
	    file_write_atomic(cert_path, crt_pem.data, crt_pem.size, 0644, err) < 0)
		return error_wrap(err, "store the client's TLS identity");
	return 0;
}

int client_tls_identity(char **cert_path, char **key_path, struct ferry_error **err)
{
	cleanup_free char *dir = remotes_conf_dir();
	cleanup_free char *cert = remotes_conf_path("client.crt");
	cleanup_free char *key = remotes_conf_path("client.key");
	if (access(cert, F_OK) != 0 || access(key, F_OK) != 0) {
		if (mkdir_p(dir, 0700, err) < 0 || identity_create(cert, key, err) < 0)
			return -1;
	} else {
		/* Whatever happened to it since, the key is ours alone. */
		struct stat st;
		if (stat(key, &st) == 0 && (st.st_mode & 077) != 0 && chmod(key, 0600) < 0)
			return error_sys(err, errno, "chmod %s", key);
	}
	*cert_path = steal_pointer(&cert);
	*key_path = steal_pointer(&key);
	return 0;
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

int client_tls_fingerprint(const char *pem, char **fingerprint, struct ferry_error **err)
{
	cleanup_crt gnutls_x509_crt_t crt = NULL;
	if (crt_from_pem(pem, &crt, err) < 0)
		return -1;
	unsigned char digest[32];
	size_t size = sizeof(digest);
	int r = gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, digest, &size);
	if (r < 0 || size != sizeof(digest))
		return tls_error(err, r, "certificate fingerprint");
	char hex[65];
	hex_encode(digest, size, hex);
	*fingerprint = xstrdup(hex);
	return 0;
}

int client_tls_pin(const char *pem, char **pin, struct ferry_error **err)
{
	cleanup_crt gnutls_x509_crt_t crt = NULL;
	if (crt_from_pem(pem, &crt, err) < 0)
		return -1;
	__attribute__((cleanup(pubkey_deinitp))) gnutls_pubkey_t pub = NULL;
	cleanup_datum gnutls_datum_t spki = { 0 };
	int r;
	if ((r = gnutls_pubkey_init(&pub)) < 0 || (r = gnutls_pubkey_import_x509(pub, crt, 0)) < 0 ||
	    (r = gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &spki)) < 0)
		return tls_error(err, r, "certificate public key");
	unsigned char digest[32];
	if ((r = gnutls_hash_fast(GNUTLS_DIG_SHA256, spki.data, spki.size, digest)) < 0)
		return tls_error(err, r, "public key digest");
	gnutls_datum_t in = { digest, sizeof(digest) };
	cleanup_datum gnutls_datum_t b64 = { 0 };
	if ((r = gnutls_base64_encode2(&in, &b64)) < 0)
		return tls_error(err, r, "base64");
	*pin = xasprintf("sha256//%.*s", (int)b64.size, (const char *)b64.data);
	return 0;
}

char *client_tls_base64_encode(const void *data, size_t len)
{
	gnutls_datum_t in = { (unsigned char *)data, len };
	cleanup_datum gnutls_datum_t out = { 0 };
	if (gnutls_base64_encode2(&in, &out) < 0)
		abort();
	char *text = xcalloc(1, out.size + 1);
	size_t n = 0;
	for (size_t i = 0; i < out.size; i++)
		if (out.data[i] != '\n' && out.data[i] != '\r')
			text[n++] = (char)out.data[i];
	return text;
}

int client_tls_base64_decode(const char *text, char **data, size_t *len)
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

static char *date_text(time_t t)
{
	struct tm tm;
	char buf[32];
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%b %d, %Y at %I:%M%p (UTC)", &tm);
	return xstrdup(buf);
}

int client_tls_describe(const char *pem, char **common_name, char **not_before, char **not_after,
			struct ferry_error **err)
{
	cleanup_crt gnutls_x509_crt_t crt = NULL;
	if (crt_from_pem(pem, &crt, err) < 0)
		return -1;
	if (common_name != NULL) {
		char buf[256] = "";
		size_t size = sizeof(buf);
		if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf, &size) < 0)
			buf[0] = '\0';
		*common_name = xstrdup(buf);
	}
	if (not_before != NULL)
		*not_before = date_text(gnutls_x509_crt_get_activation_time(crt));
	if (not_after != NULL)
		*not_after = date_text(gnutls_x509_crt_get_expiration_time(crt));
	return 0;
}
