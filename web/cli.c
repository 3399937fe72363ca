/*
 * cli.c: `spaces-server user add NAME [--admin] --database-url URL`.
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
	           "\n"
	           "Creates a user of the website (an administrator with --admin).\n"
	           "The password is the first line of standard input when it is not a\n"
	           "terminal; otherwise it is asked for twice, without echo.\n"
	           "The database URL may also come from SPACES_DATABASE_URL or DATABASE_URL,\n"
	           "the migrations' directory from SPACES_MIGRATIONS.\n"
	           "\n"
	           "Exit status: 0 created, 1 failed, 2 bad usage, 3 the name is taken.\n");
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
} insert_state;

static void pool_closed(db_pool *pool, void *ud)
{
	(void)pool;
	(void)ud;
}

static void inserted(const db_result *res, void *ud)
{
	insert_state *st = ud;

	if (db_ok(res)) {
		st->rc = 0;
		snprintf(st->user_id, sizeof(st->user_id), "%s", db_value(res, 0, 0));
	} else {
		st->rc = strcmp(db_sqlstate(res), "23505") == 0 ? 2 : 1;
		snprintf(st->error, sizeof(st->error), "%s", db_error(res) ? db_error(res) : "");
	}
	db_pool_close(st->pool, pool_closed, st);
}

static int insert_user(const char *url, const char *name, const char *hash, int admin,
                       insert_state *st)
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
	static const char sql[] = "INSERT INTO users (username, password_hash, is_admin) "
	                          "VALUES ($1, $2, $3) RETURNING id::text";
	const char *params[3] = {name, hash, admin ? "t" : "f"};
	int rc = db_query(st->pool, sql, 3, params, inserted, st);
	if (rc) {
		snprintf(st->error, sizeof(st->error), "%s", db_strerror(rc));
		db_pool_close(st->pool, pool_closed, st);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	db_pool_free(st->pool);
	uv_loop_close(&loop);
	return 0;
}

int web_cli_user_add(int argc, char **argv, const char *database_url, const char *migrations_dir)
{
	const char *name = NULL, *url = database_url, *migrations = migrations_dir;
	int admin = 0, status = 1;
	char pw[WEB_PASSWORD_MAX + 2];
	char hash[crypto_pwhash_STRBYTES];
	char err[512];

	if (argc < 2 || strcmp(argv[1], "add") != 0) {
		cli_usage(stderr);
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--admin") == 0) {
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
	if (read_password(name, pw, sizeof(pw)))
		goto out;
	if (strlen(pw) > WEB_PASSWORD_MAX) {
		fprintf(stderr, "spaces-server: the password is too long (at most %d bytes)\n",
		        WEB_PASSWORD_MAX);
		goto out;
	}
	int n = db_migrate(url, migrations, err, sizeof(err));
	if (n < 0) {
		fprintf(stderr, "spaces-server: database: %s (%s)\n", db_strerror(n), err);
		goto out;
	}
	if (crypto_pwhash_str(hash, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
	                      crypto_pwhash_MEMLIMIT_INTERACTIVE)) {
		fprintf(stderr, "spaces-server: out of memory hashing the password\n");
		goto out;
	}
	insert_state st;
	memset(&st, 0, sizeof(st));
	if (insert_user(url, name, hash, admin, &st) || st.rc) {
		if (st.rc == 2) {
			fprintf(stderr, "spaces-server: a user named '%s' already exists\n", name);
			status = 3;
		} else {
			fprintf(stderr, "spaces-server: cannot create the user: %s\n", st.error);
		}
		goto out;
	}
	printf("Created %s '%s' (id %s).\n", admin ? "administrator" : "user", name, st.user_id);
	status = 0;
out:
	sodium_memzero(pw, sizeof(pw));
	sodium_memzero(hash, sizeof(hash));
	return status;
}
