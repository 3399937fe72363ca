/*
 * migrate.c: the migrations runner.
 *
 * It runs once at start-up, before the loop, so it uses libpq's blocking
 * calls on a connection of its own; nothing here may be called from the
 * loop. Each file is executed as one simple-protocol query string (several
 * statements) between BEGIN and COMMIT, together with the INSERT that
 * records it, so a migration is applied entirely or not at all.
 *
 * Processes starting together serialise on a session advisory lock; the
 * one that waited then finds the versions already recorded and skips them.
 */
#include "db_internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

/* The advisory lock of the migrations: keys ('SPAC' as an int4, 1). */
#define MIGRATE_LOCK_SQL "SELECT pg_advisory_lock(1397768515, 1)"
#define MIGRATE_MAX_FILES 10000
#define MIGRATE_MAX_SIZE (16u << 20)

typedef struct {
	char *name;
	char version[24];
} mig_file;

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* NNNN_description.sql: writes the digits to version. */
static int parse_name(const char *name, char *version, size_t vlen)
{
	size_t n = 0, len = strlen(name);

	while (isdigit((unsigned char)name[n]))
		n++;
	if (n < 4 || n >= vlen || name[n] != '_')
		return 0;
	if (len < n + 1 + 4 || strcmp(name + len - 4, ".sql") != 0)
		return 0;
	memcpy(version, name, n);
	version[n] = '\0';
	return 1;
}

/* Compares two versions as numbers ("0010" > "0009", "0001" == "00001"). */
static int version_cmp(const char *a, const char *b)
{
	size_t la, lb;

	while (*a == '0' && a[1] != '\0')
		a++;
	while (*b == '0' && b[1] != '\0')
		b++;
	la = strlen(a);
	lb = strlen(b);
	if (la != lb)
		return la < lb ? -1 : 1;
	return strcmp(a, b);
}

static int file_cmp(const void *x, const void *y)
{
	const mig_file *a = x, *b = y;

	return version_cmp(a->version, b->version);
}

static void files_free(mig_file *files, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(files[i].name);
	free(files);
}

static int is_regular(const char *dir, const struct dirent *d)
{
	char path[4096];
	struct stat st;

	if (d->d_type == DT_REG)
		return 1;
	if (d->d_type != DT_UNKNOWN && d->d_type != DT_LNK)
		return 0;
	snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int scan_dir(const char *dir, mig_file **out, size_t *nout, char *err, size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	mig_file *files = NULL;
	size_t n = 0, cap = 0;
	int ret = 0;

	if (d == NULL) {
		set_err(err, errlen, "cannot read the migrations directory %s: %s", dir,
		        strerror(errno));
		return BASE_EINVAL;
	}
	while ((e = readdir(d)) != NULL) {
		char version[24];

		if (e->d_name[0] == '.' || !is_regular(dir, e))
			continue;
		if (!parse_name(e->d_name, version, sizeof(version))) {
			size_t len = strlen(e->d_name);

			if (len > 4 && strcmp(e->d_name + len - 4, ".sql") == 0)
				BASE_LOGW(DB_LOG, "migrations: ignoring %s (not NNNN_name.sql)",
				          e->d_name);
			continue;
		}
		if (n == MIGRATE_MAX_FILES) {
			set_err(err, errlen, "more than %d migrations in %s", MIGRATE_MAX_FILES,
			        dir);
			ret = BASE_ELIMIT;
			goto out;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			mig_file *nf = realloc(files, ncap * sizeof(*nf));

			if (nf == NULL) {
				ret = BASE_ENOMEM;
				goto out;
			}
			files = nf;
			cap = ncap;
		}
		files[n].name = strdup(e->d_name);
		if (files[n].name == NULL) {
			ret = BASE_ENOMEM;
			goto out;
		}
		snprintf(files[n].version, sizeof(files[n].version), "%s", version);
		n++;
	}
	if (n > 1)
		qsort(files, n, sizeof(*files), file_cmp);
	for (size_t i = 1; i < n; i++) {
		if (version_cmp(files[i - 1].version, files[i].version) == 0) {
			set_err(err, errlen, "migrations %s and %s have the same number",
			        files[i - 1].name, files[i].name);
			ret = DB_EMIGRATE;
			goto out;
		}
	}
out:
	closedir(d);
	if (ret != 0) {
		if (ret == BASE_ENOMEM)
			set_err(err, errlen, "out of memory");
		files_free(files, n);
		return ret;
	}
	*out = files;
	*nout = n;
	return 0;
}

static char *read_file(const char *dir, const char *name, char *err, size_t errlen)
{
	char path[4096];
	FILE *f;
	char *buf = NULL;
	long size;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (f == NULL) {
		set_err(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
	    (unsigned long)size > MIGRATE_MAX_SIZE) {
		set_err(err, errlen, "cannot read %s (or larger than %u bytes)", path,
		        MIGRATE_MAX_SIZE);
		goto out;
	}
	buf = malloc((size_t)size + 1);
	if (buf == NULL) {
		set_err(err, errlen, "out of memory");
		goto out;
	}
	if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
		set_err(err, errlen, "cannot read %s", path);
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[size] = '\0';
out:
	fclose(f);
	return buf;
}

/* The line of a 1-based character position (the server counts characters, not bytes). */
static unsigned line_of(const char *sql, long pos)
{
	unsigned line = 1;
	long chars = 0;

	for (const unsigned char *p = (const unsigned char *)sql; *p != '\0'; p++) {
		if ((*p & 0xC0) != 0x80 && ++chars >= pos)
			break;
		if (*p == '\n')
			line++;
	}
	return line;
}

static void quiet_notice(void *arg, const char *msg)
{
	char line[DB_ERRBUF];

	(void)arg;
	db__oneline(line, sizeof(line), msg);
	BASE_LOGD(DB_LOG, "migrations: %s", line);
}

/* Runs sql; returns 0, or -1 with the server's message in err (prefixed by what). */
static int exec_ok(PGconn *pg, const char *sql, const char *what, char *err, size_t errlen)
{
	PGresult *r = PQexec(pg, sql);
	ExecStatusType st = PQresultStatus(r);
	char msg[DB_ERRBUF];
	int ret = 0;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
		db__oneline(msg, sizeof(msg), r ? PQresultErrorMessage(r) : PQerrorMessage(pg));
		set_err(err, errlen, "%s: %s", what, msg);
		ret = -1;
	}
	PQclear(r);
	return ret;
}

static int is_applied(PGconn *pg, const char *version, char *err, size_t errlen)
{
	const char *params[1] = {version};
	PGresult *r = PQexecParams(pg, "SELECT 1 FROM schema_migrations WHERE version = $1", 1,
	                           NULL, params, NULL, NULL, 0);
	int ret;
	char msg[DB_ERRBUF];

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		db__oneline(msg, sizeof(msg), r ? PQresultErrorMessage(r) : PQerrorMessage(pg));
		set_err(err, errlen, "reading schema_migrations: %s", msg);
		ret = -1;
	} else {
		ret = PQntuples(r) > 0;
	}
	PQclear(r);
	return ret;
}

/* Applies one migration in a transaction. Returns 0 or DB_EMIGRATE / BASE_ENOMEM. */
static int apply_one(PGconn *pg, const char *dir, const mig_file *f, char *err, size_t errlen)
{
	const char *params[1] = {f->version};
	char *sql = read_file(dir, f->name, err, errlen);
	PGresult *r = NULL;
	ExecStatusType st;
	char msg[DB_ERRBUF];
	int ret = DB_EMIGRATE;

	if (sql == NULL)
		return DB_EMIGRATE;
	if (exec_ok(pg, "BEGIN", "BEGIN", err, errlen) != 0)
		goto out;
	r = PQexec(pg, sql);
	st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
		const char *pos = r ? PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION) : NULL;
		const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

		db__oneline(msg, sizeof(msg),
		            r && PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
		                ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
		                : PQerrorMessage(pg));
		if (pos != NULL)
			set_err(err, errlen, "migration %s failed at line %u: %s (SQLSTATE %s)",
			        f->name, line_of(sql, atol(pos)), msg, state ? state : "?");
		else
			set_err(err, errlen, "migration %s failed: %s (SQLSTATE %s)", f->name, msg,
			        state ? state : "?");
		goto rollback;
	}
	if (PQtransactionStatus(pg) != PQTRANS_INTRANS) {
		set_err(err, errlen,
		        "migration %s ended its transaction itself (no BEGIN/COMMIT in migrations)",
		        f->name);
		goto rollback;
	}
	PQclear(r);
	r = PQexecParams(pg, "INSERT INTO schema_migrations (version) VALUES ($1)", 1, NULL, params,
	                 NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		db__oneline(msg, sizeof(msg), PQresultErrorMessage(r));
		set_err(err, errlen, "recording migration %s: %s", f->name, msg);
		goto rollback;
	}
	if (exec_ok(pg, "COMMIT", "COMMIT", err, errlen) != 0)
		goto out;
	ret = 0;
	goto out;

rollback:
	PQclear(PQexec(pg, "ROLLBACK"));
out:
	PQclear(r);
	free(sql);
	return ret;
}

int db_migrate(const char *conninfo, const char *dir, char *err, size_t errlen)
{
	PQconninfoOption *parsed;
	PGconn *pg = NULL;
	mig_file *files = NULL;
	size_t nfiles = 0;
	char *perr = NULL;
	char msg[DB_ERRBUF];
	int ret, applied = 0;

	set_err(err, errlen, "%s", "");
	if (conninfo == NULL || dir == NULL) {
		set_err(err, errlen, "no connection string or no directory");
		return BASE_EINVAL;
	}
	parsed = PQconninfoParse(conninfo, &perr);
	if (parsed == NULL) {
		db__oneline(msg, sizeof(msg), perr != NULL ? perr : "out of memory");
		PQfreemem(perr);
		set_err(err, errlen, "invalid connection string: %s", msg);
		return DB_ECONNINFO;
	}
	PQconninfoFree(parsed);

	ret = scan_dir(dir, &files, &nfiles, err, errlen);
	if (ret != 0)
		return ret;

	pg = PQconnectdb(conninfo);
	if (pg == NULL || PQstatus(pg) != CONNECTION_OK) {
		db__oneline(msg, sizeof(msg), pg ? PQerrorMessage(pg) : "out of memory");
		set_err(err, errlen, "cannot connect to the database: %s", msg);
		ret = DB_ECONNECT;
		goto out;
	}
	PQsetNoticeProcessor(pg, quiet_notice, NULL);
	if (exec_ok(pg, "SET client_min_messages = warning", "setting up", err, errlen) != 0 ||
	    exec_ok(pg, MIGRATE_LOCK_SQL, "taking the migrations lock", err, errlen) != 0 ||
	    exec_ok(pg,
	            "CREATE TABLE IF NOT EXISTS schema_migrations ("
	            " version text PRIMARY KEY,"
	            " applied_at timestamptz NOT NULL DEFAULT now())",
	            "creating schema_migrations", err, errlen) != 0) {
		ret = DB_EMIGRATE;
		goto out;
	}
	for (size_t i = 0; i < nfiles; i++) {
		uint64_t t0 = base_now_ms();
		int done = is_applied(pg, files[i].version, err, errlen);

		if (done < 0) {
			ret = DB_EMIGRATE;
			goto out;
		}
		if (done)
			continue;
		ret = apply_one(pg, dir, &files[i], err, errlen);
		if (ret != 0) {
			BASE_LOGE(DB_LOG, "%s", err ? err : "migration failed");
			goto out;
		}
		applied++;
		BASE_LOGI(DB_LOG, "applied migration %s (%llu ms)", files[i].name,
		          (unsigned long long)(base_now_ms() - t0));
	}
	ret = applied;
out:
	/* Closing the session releases the advisory lock. */
	PQfinish(pg);
	files_free(files, nfiles);
	return ret;
}
