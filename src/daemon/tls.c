/* ferryd over HTTPS with mutual TLS: see tls.h. */
