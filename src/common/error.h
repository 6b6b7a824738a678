/* One error type carried up the stack, with context added at each level.
 *
 * Every fallible function returns < 0 and fills `struct ferry_error **err`;
 * callers add context with error_wrap() and pass it on. Nothing prints and
 * returns -1 with the reason lost. */
#pragma once

#include <stdarg.h>

struct ferry_error {
	int errnum;  /* errno of the root cause, or 0 */
	int status;  /* HTTP status the API answers with (400, 404, 409, 500, ...) */
	char *msg;   /* "context: context: cause" */
};

/* Set *err (if err is not NULL) and return -1. errnum may be 0.
 * status is the HTTP status for the API; 0 means 500. */
int error_set(struct ferry_error **err, int status, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Like error_set, with strerror(errnum) appended: "msg: No such file". */
int error_sys(struct ferry_error **err, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Prefix the message of *err with context ("context: old message"). Returns -1. */
int error_wrap(struct ferry_error **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void error_free(struct ferry_error **err);
/* Move *src into *dst (dst must be empty or NULL-able). */
void error_move(struct ferry_error **dst, struct ferry_error **src);

/* Shorthands for the statuses the API uses. */
#define error_bad_request(err, ...) error_set(err, 400, EINVAL, __VA_ARGS__)
#define error_not_found(err, ...) error_set(err, 404, ENOENT, __VA_ARGS__)
#define error_conflict(err, ...) error_set(err, 409, EEXIST, __VA_ARGS__)

#define cleanup_error __attribute__((cleanup(error_free)))
