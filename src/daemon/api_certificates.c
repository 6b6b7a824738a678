#include "daemon/request.h"

const struct route api_certificates_routes[] = {
	{ NULL },
};
