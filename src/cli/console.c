/* ferry console NAME: attach to the instance's console (ctrl+a q
 * detaches), or --show-log to print what it wrote. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/attach.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "cli/target.h"
#include "cli/terminal.h"
#include "common/util.h"

enum { OPT_SHOW_LOG = 0x200 };

static const struct option console_options[] = {
	{ "show-log", no_argument, NULL, OPT_SHOW_LOG },
	{ "type", required_argument, NULL, 't' },
	{ 0 },
};

static int console_attach(struct client *client, const char *name, struct ferry_error **err)
{
	int width, height;
	terminal_size(STDOUT_FILENO, &width, &height);
	cleanup_free char *escaped = client_escape(name);
	cleanup_free char *path = xasprintf("/1.0/instances/%s/console", escaped);
	json_t *body = json_pack("{s:i, s:i, s:s}", "width", width, "height", height, "type", "console");
	json_t *op = NULL;
	int r = client_query_operation(client, "POST", path, body, &op, err);
	json_decref(body);
	if (r < 0)
		return -1;
	if (op == NULL)
		return error_set(err, 502, 0, "ferryd answered console without an operation");
	json_t *fds = json_object_get(json_object_get(op, "metadata"), "fds");
	const char *id = client_operation_id(op);
	struct client_ws *control = NULL, *data = NULL;
	const char *control_secret = json_string_value(json_object_get(fds, "control"));
	const char *data_secret = json_string_value(json_object_get(fds, "0"));
	if (control_secret == NULL || data_secret == NULL) {
		json_decref(op);
		return error_set(err, 502, 0, "ferryd's console operation has no websockets");
	}
	if (client_websocket(client, id, control_secret, &control, err) < 0 ||
	    client_websocket(client, id, data_secret, &data, err) < 0) {
		client_ws_free(control);
		json_decref(op);
		return -1;
	}
	if (isatty(STDOUT_FILENO))
		printf("To detach from the console, press: <ctrl>+a q\n\r");
	fflush(stdout);
	attach_block_signals();
	bool raw = isatty(STDIN_FILENO) && terminal_make_raw(STDIN_FILENO, NULL) == 0;
	struct pump in = { .ws = client_ws_get(data), .fd = STDIN_FILENO, .eof_byte = -1, .detach_keys = true };
	struct pump out = { .ws = client_ws_get(data), .fd = STDOUT_FILENO };
	struct pump *outputs[] = { &out, &in };
	pump_start_ws_to_fd(&out);
	pump_start_fd_to_ws(&in);
	/* Ends on detach, or when ferryd closes the console (instance stopped). */
	attach_forward_signals(client_ws_get(control), STDOUT_FILENO, outputs, 1, &in, NULL, NULL);
	if (raw)
		terminal_restore();
	ws_close(client_ws_get(control), 1000, "detach");
	json_decref(op);
	if (in.detached) {
		printf("\n");
		/* The stdin pump has returned: closing is safe; the output pump ends with the close. */
		ws_close(client_ws_get(data), 1000, "detach");
		pump_join(&out);
		client_ws_free(data);
		client_ws_free(control);
	}
	return 0;
}

int cmd_console(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "console",
		.usage = "[<remote>:]<instance> [flags]",
		.summary = "Attach to instance consoles (detach with <ctrl>+a q)",
		.help = "      --show-log   Retrieve the container's console log\n"
			"  -t, --type       Type of connection to establish: 'console' (default)\n",
		.shortopts = "t:",
		.longopts = console_options,
	};
	bool show_log = false;
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1) {
		switch (c) {
		case OPT_SHOW_LOG:
			show_log = true;
			break;
		case 't':
			if (strcmp(optarg, "console") != 0)
				return cli_usage_error(&cmd, "Unknown console type \"%s\": only \"console\"", optarg);
			break;
		case CLI_OPT_HELP:
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	int rc = cli_check_args(&cmd, argc - optind, 1, 1);
	if (rc != 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	if (target_parse(argv[optind], &t, &err) < 0 || client_open(t.remote, &client, &err) < 0)
		return cli_fail(err);
	if (show_log) {
		cleanup_free char *escaped = client_escape(t.name);
		cleanup_free char *path = xasprintf("/1.0/instances/%s/console", escaped);
		struct client_raw raw = { 0 };
		int r = client_download(client, path, STDOUT_FILENO, &raw, &err);
		client_raw_clear(&raw);
		return r < 0 ? cli_fail(err) : EXIT_OK;
	}
	return console_attach(client, t.name, &err) < 0 ? cli_fail(err) : EXIT_OK;
}
