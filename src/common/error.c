#include "common/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int error_vset(struct ferry_error **err, int status, int errnum, const char *suffix, const char *fmt,
		      va_list ap)
{
	if (err == NULL)
		return -1;
	error_free(err);
	struct ferry_error *e = calloc(1, sizeof(*e));
	if (e == NULL)
		abort();
	char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	if (suffix != NULL) {
		char *full = NULL;
		if (asprintf(&full, "%s: %s", msg, suffix) < 0)
			abort();
		free(msg);
		msg = full;
	}
	e->errnum = errnum;
	e->status = status ? status : 500;
	e->msg = msg;
	*err = e;
	return -1;
}

int error_set(struct ferry_error **err, int status, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	error_vset(err, status, errnum, NULL, fmt, ap);
	va_end(ap);
	return -1;
}

int error_sys(struct ferry_error **err, int errnum, const char *fmt, ...)
{
	va_list ap;
	int status = errnum == ENOENT ? 404 : errnum == EEXIST ? 409 : errnum == EINVAL ? 400 : 500;
	va_start(ap, fmt);
	error_vset(err, status, errnum, strerror(errnum), fmt, ap);
	va_end(ap);
	return -1;
}

int error_wrap(struct ferry_error **err, const char *fmt, ...)
{
	if (err == NULL || *err == NULL)
		return -1;
	char *ctx = NULL, *full = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&ctx, fmt, ap) < 0)
		abort();
	va_end(ap);
	if (asprintf(&full, "%s: %s", ctx, (*err)->msg) < 0)
		abort();
	free(ctx);
	free((*err)->msg);
	(*err)->msg = full;
	return -1;
}

void error_free(struct ferry_error **err)
{
	if (err == NULL || *err == NULL)
		return;
	free((*err)->msg);
	free(*err);
	*err = NULL;
}

void error_move(struct ferry_error **dst, struct ferry_error **src)
{
	if (dst == NULL) {
		error_free(src);
		return;
	}
	error_free(dst);
	*dst = *src;
	*src = NULL;
}
