/*
 * cli.c: `spaces-server user add NAME [--admin] --database-url URL`, and
 * `user passwd NAME`, `user disable NAME`, `user enable NAME`.
 *
 * A command, run before any server loop: it may block. The migrations are
 * applied first (db_migrate), so a fresh database can get its first admin
 * before the server ever ran. The user is written through the ordinary
 * asynchronous pool on a loop of its own, so libpq stays inside spaces/db/.
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include "web_internal.h"

static void cli_usage(FILE *f)
{
	fprintf(f, "Usage: spaces-server user add NAME [--admin] --database-url URL "
	           "[--migrations DIR]\n"
	           "       spaces-server user passwd NAME --database-url URL\n"
	           "       spaces-server user disable NAME --database-url URL\n"
	           "       spaces-server user enable NAME --database-url URL\n"
	           "\n"
	           "add:     creates a user of the website (an administrator with --admin).\n"
	           "passwd:  gives a user a new password; their sessions end.\n"
	           "disable: the user cannot log in any more; their sessions end.\n"
	           "enable:  the user can log in again.\n"
	           "Running servers close the live pages of ended sessions at once.\n"
	           "\n"
	           "The password is the first line of standard input when it is not a\n"
	           "terminal; otherwise it is asked for twice, without echo. A weak\n"
	           "password is accepted with a warning.\n"
	           "The database URL may also come from SPACES_DATABASE_URL or DATABASE_URL,\n"
	           "the migrations' directory from SPACES_MIGRATIONS.\n"
	           "\n"
	           "Exit status: 0 done, 1 failed, 2 bad usage, 3 the name is taken (add),\n"
	           "4 no such user.\n");
}

/* Reads one line without its newline. Returns its length, or -1 at EOF or when too long. */
static int read_line(FILE *in, char *buf, size_t cap)
{
	size_t n;

	if (!fgets(buf, (int)cap, in))
		return -1;
	n = strlen(buf);
	if (n && buf[n - 1] == '\n')
		buf[--n] = 0;
	else if (n == cap - 1)
		return -1; /* longer than the buffer */
	if (n && buf[n - 1] == '\r')
		buf[--n] = 0;
	return (int)n;
}

static int prompt_hidden(const char *prompt, char *buf, size_t cap)
{
	struct termios old, quiet;
	int rc;

	fputs(prompt, stderr);
	fflush(stderr);
	if (tcgetattr(STDIN_FILENO, &old) != 0)
		return -1;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	quiet.c_lflag |= ECHONL;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) != 0)
		return -1;
	rc = read_line(stdin, buf, cap);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	return rc;
}

static int read_password(const char *name, char *pw, size_t cap)
{
	char again[WEB_PASSWORD_MAX + 2];
	char prompt[128];
	int n;

	if (!isatty(STDIN_FILENO)) {
		n = read_line(stdin, pw, cap);
		if (n <= 0) {
			fprintf(stderr,
			        "spaces-server: no password on standard input (first line)\n");
			return -1;
		}
		return 0;
	}
	snprintf(prompt, sizeof(prompt), "Password for %s: ", name);
	n = prompt_hidden(prompt, pw, cap);
	if (n <= 0) {
		fprintf(stderr, "spaces-server: no password given\n");
		return -1;
	}
	n = prompt_hidden("Again: ", again, sizeof(again));
	int same = n >= 0 && strcmp(again, pw) == 0;
	sodium_memzero(again, sizeof(again));
	if (!same) {
		fprintf(stderr, "spaces-server: the passwords do not match\n");
		return -1;
	}
	return 0;
}

typedef struct {
	db_pool *pool;
	int rc;
	char error[512];
	char user_id[32];
} cli_state;

static void pool_closed(db_pool *pool, void *ud)
{
	(void)pool;
	(void)ud;
}

static void answered(const db_result *res, void *ud)
{
	cli_state *st = ud;

	if (db_ok(res)) {
		const db_result *first = db_tx_count(res) > 0 ? db_tx_result(res, 0) : res;

		st->rc = db_ntuples(first) == 1 ? 0 : 4;
		if (st->rc == 0)
			snprintf(st->user_id, sizeof(st->user_id), "%s", db_value(first, 0, 0));
	} else {
		st->rc = strcmp(db_sqlstate(res), "23505") == 0 ? 3 : 1;
		snprintf(st->error, sizeof(st->error), "%s", db_error(res) ? db_error(res) : "");
	}
	db_pool_close(st->pool, pool_closed, st);
}

/* Runs the statements in one transaction on a loop of its own; st->rc: 0, 1, 3 taken, 4 no row. */
static int run_tx(const char *url, const db_stmt *stmts, unsigned n, cli_state *st)
{
	uv_loop_t loop;
	db_options o;
	char err[256] = "";

	if (uv_loop_init(&loop))
		return -1;
	db_options_init(&o);
	o.size = 1;
	o.queue_timeout_ms = 15000;
	st->rc = 1;
	st->pool = db_pool_new_opts(&loop, url, &o, err, sizeof(err));
	if (!st->pool) {
		snprintf(st->error, sizeof(st->error), "%s", err);
		uv_loop_close(&loop);
		return -1;
	}
	int rc = db_query_tx(st->pool, stmts, n, answered, st);
	if (rc) {
		snprintf(st->error, sizeof(st->error), "%s", base_strerror(rc));
		db_pool_close(st->pool, pool_closed, st);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	db_pool_free(st->pool);
	uv_loop_close(&loop);
	return 0;
}

/* A weak password is the operator's choice here; say so, do not refuse. */
static void warn_weak(const char *name, const char *pw)
{
	const char *why = web_password_problem(name, pw, 1);

	if (why)
		fprintf(stderr, "spaces-server: warning: weak password (%s); accepted anyway\n",
		        why);
}

int web_cli_user(int argc, char **argv, const char *database_url, const char *migrations_dir)
{
	const char *name = NULL, *url = database_url, *migrations = migrations_dir;
	int admin = 0, status = 1;
	web_cli_cmd cmd;
	char pw[WEB_PASSWORD_MAX + 2] = "";
	char hash[crypto_pwhash_STRBYTES] = "";
	char err[512];

	if (argc < 2) {
		cli_usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "add") == 0)
		cmd = WEB_CLI_ADD;
	else if (strcmp(argv[1], "passwd") == 0)
		cmd = WEB_CLI_PASSWD;
	else if (strcmp(argv[1], "disable") == 0)
		cmd = WEB_CLI_DISABLE;
	else if (strcmp(argv[1], "enable") == 0)
		cmd = WEB_CLI_ENABLE;
	else if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		cli_usage(stdout);
		return 0;
	} else {
		cli_usage(stderr);
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--admin") == 0 && cmd == WEB_CLI_ADD) {
			admin = 1;
		} else if (strcmp(a, "--database-url") == 0 && i + 1 < argc) {
			url = argv[++i];
		} else if (strncmp(a, "--database-url=", 15) == 0) {
			url = a + 15;
		} else if (strcmp(a, "--migrations") == 0 && i + 1 < argc) {
			migrations = argv[++i];
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			cli_usage(stdout);
			return 0;
		} else if (a[0] != '-' && !name) {
			name = a;
		} else {
			fprintf(stderr, "spaces-server: unexpected argument '%s'\n", a);
			cli_usage(stderr);
			return 2;
		}
	}
	if (!name || !url || !*url) {
		cli_usage(stderr);
		return 2;
	}
	if (!web_username_ok(name)) {
		fprintf(stderr,
		        "spaces-server: invalid user name '%s': 1 to 64 letters, digits "
		        "or underscores\n",
		        name);
		return 2;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "spaces-server: libsodium failed to start\n");
		return 1;
	}
	if (cmd == WEB_CLI_ADD || cmd == WEB_CLI_PASSWD) {
		if (read_password(name, pw, sizeof(pw)))
			goto out;
		if (strlen(pw) > WEB_PASSWORD_MAX) {
			fprintf(stderr,
			        "spaces-server: the password is too long (at most %d bytes)\n",
			        WEB_PASSWORD_MAX);
			goto out;
		}
		warn_weak(name, pw);
	}
	int n = db_migrate(url, migrations, err, sizeof(err));
	if (n < 0) {
		fprintf(stderr, "spaces-server: database: %s (%s)\n", base_strerror(n), err);
		goto out;
	}
	if ((cmd == WEB_CLI_ADD || cmd == WEB_CLI_PASSWD) &&
	    crypto_pwhash_str(hash, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
	                      crypto_pwhash_MEMLIMIT_INTERACTIVE)) {
		fprintf(stderr, "spaces-server: out of memory hashing the password\n");
		goto out;
	}

	const char *params[3][3];
	db_stmt st[3];
	unsigned n_st = web__acct_cli_statements(cmd, name, hash, admin, params, st);
	cli_state cs;
	memset(&cs, 0, sizeof(cs));
	if (run_tx(url, st, n_st, &cs) || cs.rc) {
		if (cs.rc == 3) {
			fprintf(stderr, "spaces-server: a user named '%s' already exists\n", name);
			status = 3;
		} else if (cs.rc == 4) {
			fprintf(stderr, "spaces-server: there is no user named '%s'\n", name);
			status = 4;
		} else {
			fprintf(stderr, "spaces-server: cannot %s the user: %s\n",
			        cmd == WEB_CLI_ADD ? "create" : "change", cs.error);
		}
		goto out;
	}
	switch (cmd) {
	case WEB_CLI_ADD:
		printf("Created %s '%s' (id %s).\n", admin ? "administrator" : "user", name,
		       cs.user_id);
		break;
	case WEB_CLI_PASSWD:
		printf("New password for '%s' (id %s); their sessions have ended.\n", name,
		       cs.user_id);
		break;
	case WEB_CLI_DISABLE:
		printf("Disabled '%s' (id %s); their sessions have ended.\n", name, cs.user_id);
		break;
	default:
		printf("Enabled '%s' (id %s).\n", name, cs.user_id);
		break;
	}
	status = 0;
out:
	sodium_memzero(pw, sizeof(pw));
	sodium_memzero(hash, sizeof(hash));
	return status;
}
