/* ferry exec NAME [flags] -- COMMAND...: run a command in an instance.
 * Interactive (a pty; stdin and stdout are terminals, or -t) or not
 * (separate stdout/stderr); exits with the command's exit code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/attach.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "cli/target.h"
#include "cli/terminal.h"
#include "common/util.h"

enum { OPT_CWD = 0x200, OPT_USER, OPT_GROUP, OPT_MODE };

static const struct option exec_options[] = {
	{ "env", required_argument, NULL, 'E' },
	{ "cwd", required_argument, NULL, OPT_CWD },
	{ "user", required_argument, NULL, OPT_USER },
	{ "group", required_argument, NULL, OPT_GROUP },
	{ "force-interactive", no_argument, NULL, 't' },
	{ "force-noninteractive", no_argument, NULL, 'T' },
	{ "mode", required_argument, NULL, OPT_MODE },
	{ 0 },
};

struct exec_session {
	struct client_ws *control, *fds[3];
};

static void exec_session_close(struct exec_session *s)
{
	if (s->control != NULL)
		ws_close(client_ws_get(s->control), 1000, "");
	client_ws_free(s->control);
	for (int i = 0; i < 3; i++)
		client_ws_free(s->fds[i]);
}

/* Connect the operation's websockets; fds is {"0": secret, ..., "control": secret}. */
static int exec_connect(struct client *client, const char *op_id, json_t *fds, bool interactive,
			struct exec_session *s, struct ferry_error **err)
{
	const char *control = json_string_value(json_object_get(fds, "control"));
	if (control == NULL)
		return error_set(err, 502, 0, "ferryd's exec operation has no control websocket");
	if (client_websocket(client, op_id, control, &s->control, err) < 0)
		return -1;
	for (int i = 0; i < (interactive ? 1 : 3); i++) {
		char key[2] = { (char)('0' + i), '\0' };
		const char *secret = json_string_value(json_object_get(fds, key));
		if (secret == NULL)
			return error_set(err, 502, 0, "ferryd's exec operation has no websocket for fd %d", i);
		if (client_websocket(client, op_id, secret, &s->fds[i], err) < 0)
			return -1;
	}
	return 0;
}

struct op_watch {
	struct client *client;
	const char *path;
};

/* Has the exec operation ended (status code 200 and up)? */
static bool exec_op_done(void *ctx)
{
	struct op_watch *w = ctx;
	json_t *op = NULL;
	cleanup_error struct ferry_error *err = NULL;
	if (client_query(w->client, "GET", w->path, NULL, &op, &err) < 0)
		return err->status == 404;
	bool done = json_integer_value(json_object_get(op, "status_code")) >= 200;
	json_decref(op);
	return done;
}

static int exec_run(struct client *client, const char *name, json_t *body, bool interactive, int *exit_code,
		    struct ferry_error **err)
{
	cleanup_free char *escaped = client_escape(name);
	cleanup_free char *path = xasprintf("/1.0/instances/%s/exec", escaped);
	json_t *op = NULL;
	if (client_query_operation(client, "POST", path, body, &op, err) < 0)
		return -1;
	if (op == NULL)
		return error_set(err, 502, 0, "ferryd answered exec without an operation");
	struct exec_session s = { 0 };
	int r = exec_connect(client, client_operation_id(op), json_object_get(json_object_get(op, "metadata"), "fds"),
			     interactive, &s, err);
	if (r == 0) {
		attach_block_signals();
		bool raw = interactive && isatty(STDIN_FILENO) && terminal_make_raw(STDIN_FILENO, NULL) == 0;
		struct pump in = { .ws = client_ws_get(s.fds[0]), .fd = STDIN_FILENO, .close_on_eof = !interactive,
				   .eof_byte = interactive ? 0x04 : -1 };
		struct pump out = { .ws = client_ws_get(s.fds[0]), .fd = STDOUT_FILENO };
		struct pump errp = { .fd = STDERR_FILENO };
		struct pump *outputs[2] = { &out, &errp };
		if (!interactive) {
			out.ws = client_ws_get(s.fds[1]);
			errp.ws = client_ws_get(s.fds[2]);
			pump_start_ws_to_fd(&errp);
		}
		pump_start_ws_to_fd(&out);
		pump_start_fd_to_ws(&in);
		cleanup_free char *op_id = client_escape(client_operation_id(op));
		cleanup_free char *op_path = xasprintf("/1.0/operations/%s", op_id);
		struct op_watch watch = { client, op_path };
		attach_forward_signals(client_ws_get(s.control), interactive && isatty(STDOUT_FILENO) ? STDOUT_FILENO : -1,
				       outputs, interactive ? 1 : 2, NULL, exec_op_done, &watch);
		/* Pumps still running (a websocket the server left open) die with the process. */
		if (out.done)
			pump_join(&out);
		if (errp.done)
			pump_join(&errp);
		if (raw)
			terminal_restore();
		json_t *final = NULL;
		r = client_operation_wait(client, op, NULL, &final, err);
		if (r == 0) {
			json_t *ret = json_object_get(json_object_get(final, "metadata"), "return");
			*exit_code = json_is_integer(ret) ? (int)json_integer_value(ret) : 0;
		}
		json_decref(final);
		/* The stdin pump may still be blocked in read(): don't free what it uses. */
		if (r == 0) {
			fflush(stdout);
			json_decref(op);
			return 0;
		}
	}
	exec_session_close(&s);
	json_decref(op);
	return r;
}

int cmd_exec(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "exec",
		.usage = "[<remote>:]<instance> [flags] [--] <command line>",
		.summary = "Execute commands in instances",
		.help = "      --cwd                    Directory to run the command in (default /root)\n"
			"      --env                    Environment variable to set (e.g. HOME=/home/foo)\n"
			"  -t, --force-interactive      Force pseudo-terminal allocation\n"
			"  -T, --force-noninteractive   Disable pseudo-terminal allocation\n"
			"      --group                  Group ID to run the command as (default 0)\n"
			"      --mode                   Override the terminal mode (auto, interactive or non-interactive)\n"
			"      --user                   User ID to run the command as (default 0)\n",
		.shortopts = "tT",
		.longopts = exec_options,
	};
	json_t *env = json_object();
	const char *cwd = NULL;
	long long uid = -1, gid = -1;
	int force = 0; /* 1 interactive, -1 non-interactive */
	int exit_code = EXIT_FAIL;
	cleanup_error struct ferry_error *err = NULL;
	/* Declared before the first goto: cleanup must never see them uninitialised. */
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1) {
		switch (c) {
		case 'E': {
			cleanup_free char *key = NULL;
			cleanup_free char *value = NULL;
			if (cli_parse_key_value(optarg, &key, &value, &err) < 0) {
				exit_code = cli_usage_error(&cmd, "%s", err->msg);
				goto out;
			}
			json_object_set_new(env, key, json_string(value));
			break;
		}
		case OPT_CWD:
			cwd = optarg;
			break;
		case OPT_USER:
		case OPT_GROUP: {
			long long v;
			if (cli_parse_int(optarg, &v, &err) < 0 || v < 0) {
				exit_code = cli_usage_error(&cmd, "Invalid %s ID: %s", c == OPT_USER ? "user" : "group", optarg);
				goto out;
			}
			*(c == OPT_USER ? &uid : &gid) = v;
			break;
		}
		case 't':
			force = 1;
			break;
		case 'T':
			force = -1;
			break;
		case OPT_MODE:
			if (strcmp(optarg, "interactive") == 0)
				force = 1;
			else if (strcmp(optarg, "non-interactive") == 0)
				force = -1;
			else if (strcmp(optarg, "auto") != 0) {
				exit_code = cli_usage_error(&cmd, "Invalid mode: %s (auto, interactive or non-interactive)", optarg);
				goto out;
			}
			break;
		case CLI_OPT_HELP:
			exit_code = EXIT_OK;
			goto out;
		default:
			exit_code = EXIT_USAGE;
			goto out;
		}
	}
	if ((exit_code = cli_check_args(&cmd, argc - optind, 2, -1)) != 0)
		goto out;
	exit_code = EXIT_FAIL;
	bool interactive = force > 0 || (force == 0 && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO));
	if (interactive && json_object_get(env, "TERM") == NULL)
		json_object_set_new(env, "TERM", json_string(getenv("TERM") ? getenv("TERM") : "xterm"));

	json_t *command = json_array();
	for (int i = optind + 1; i < argc; i++)
		json_array_append_new(command, json_string(argv[i]));
	int width = 80, height = 24;
	if (interactive)
		terminal_size(isatty(STDOUT_FILENO) ? STDOUT_FILENO : STDIN_FILENO, &width, &height);
	json_t *body = json_pack("{s:o, s:O, s:b, s:b, s:b, s:i, s:i}", "command", command, "environment", env,
				 "interactive", interactive, "wait-for-websocket", true, "record-output", false,
				 "width", width, "height", height);
	if (cwd != NULL)
		json_object_set_new(body, "cwd", json_string(cwd));
	if (uid >= 0)
		json_object_set_new(body, "user", json_integer(uid));
	if (gid >= 0)
		json_object_set_new(body, "group", json_integer(gid));

	int code = 0;
	if (target_parse(argv[optind], &t, &err) < 0 || client_open(t.remote, &client, &err) < 0 ||
	    exec_run(client, t.name, body, interactive, &code, &err) < 0)
		exit_code = cli_fail(err);
	else
		exit_code = code;
	json_decref(body);
out:
	json_decref(env);
	return exit_code;
}
