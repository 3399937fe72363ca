/*
 * result.c: jobs (a query or a transaction on its way) and the db_result a
 * callback reads.
 *
 * A job holds copies of its SQL and parameters in one allocation, so a query
 * costs one malloc however many parameters it has. Its results are libpq's
 * PGresults, wrapped at the end in db_result structs on the stack: nothing
 * is copied out of libpq, and everything is freed when the callback returns.
 */
#include "db_internal.h"

#include <stdio.h>
#include <stdlib.h>

struct db_result {
	int status;
	const PGresult *pg; /* rows, when the statement returned any */
	const char *message;
	const char *detail;
	const char *sqlstate;
	unsigned nparts;
	const db_result *parts; /* the statements of a transaction; itself for a query */
	int failed;             /* index of the failing statement, or -1 */
};

/* ---- jobs --------------------------------------------------------------- */

static size_t align_up(size_t n)
{
	return (n + sizeof(void *) - 1) & ~(sizeof(void *) - 1);
}

db_job *db__job_new(const db_job_stmt *stmts, unsigned n, int is_tx, db_cb cb, void *ud)
{
	size_t size = align_up(sizeof(db_job));
	size_t stmts_off, res_off, ptrs_off, text_off;
	size_t nptrs = 0, text = 0;
	db_job *job;
	char *mem, *p;
	const char **ptrs;

	for (unsigned i = 0; i < n; i++) {
		nptrs += (size_t)stmts[i].nparams;
		text += strlen(stmts[i].sql) + 1;
		for (int k = 0; k < stmts[i].nparams; k++) {
			if (stmts[i].params[k] != NULL)
				text += strlen(stmts[i].params[k]) + 1;
		}
	}
	stmts_off = size;
	size += align_up(n * sizeof(db_job_stmt));
	res_off = size;
	size += align_up(n * sizeof(PGresult *));
	ptrs_off = size;
	size += align_up(nptrs * sizeof(char *));
	text_off = size;
	size += text;

	mem = calloc(1, size);
	if (mem == NULL)
		return NULL;
	job = (db_job *)mem;
	base_list_init(&job->link);
	base_timeq_entry_init(&job->timer);
	job->kind = DB_JOB_USER;
	job->is_tx = is_tx;
	job->nstmts = n;
	job->stmts = (db_job_stmt *)(mem + stmts_off);
	job->res = (PGresult **)(mem + res_off);
	job->cb = cb;
	job->ud = ud;

	ptrs = (const char **)(mem + ptrs_off);
	p = mem + text_off;
	for (unsigned i = 0; i < n; i++) {
		size_t len = strlen(stmts[i].sql) + 1;

		memcpy(p, stmts[i].sql, len);
		job->stmts[i].sql = p;
		p += len;
		job->stmts[i].nparams = stmts[i].nparams;
		job->stmts[i].params = ptrs;
		for (int k = 0; k < stmts[i].nparams; k++) {
			if (stmts[i].params[k] == NULL) {
				*ptrs++ = NULL;
				continue;
			}
			len = strlen(stmts[i].params[k]) + 1;
			memcpy(p, stmts[i].params[k], len);
			*ptrs++ = p;
			p += len;
		}
	}
	return job;
}

void db__job_clear_results(db_job *job)
{
	for (unsigned i = 0; i < job->nres; i++) {
		PQclear(job->res[i]);
		job->res[i] = NULL;
	}
	job->nres = 0;
	PQclear(job->extra);
	job->extra = NULL;
}

void db__job_free(db_job *job)
{
	if (job == NULL)
		return;
	db__job_clear_results(job);
	free(job->channel);
	free(job);
}

/* ---- building results ----------------------------------------------------- */

static const char *field_or(const PGresult *r, int code, const char *dflt)
{
	const char *v = PQresultErrorField(r, code);
	return v != NULL ? v : dflt;
}

static void result_from_pg(db_result *out, const PGresult *r)
{
	memset(out, 0, sizeof(*out));
	out->sqlstate = "";
	out->nparts = 1;
	out->parts = out;
	out->failed = -1;
	if (r == NULL) {
		out->status = DB_ESKIPPED;
		out->message = base_strerror(DB_ESKIPPED);
		return;
	}
	switch (PQresultStatus(r)) {
	case PGRES_TUPLES_OK:
	case PGRES_COMMAND_OK:
	case PGRES_EMPTY_QUERY:
		out->pg = r;
		return;
	case PGRES_PIPELINE_ABORTED:
		out->status = DB_ESKIPPED;
		out->message = base_strerror(DB_ESKIPPED);
		return;
	case PGRES_FATAL_ERROR:
	case PGRES_NONFATAL_ERROR:
	case PGRES_BAD_RESPONSE:
		out->status = DB_ESERVER;
		out->message = field_or(r, PG_DIAG_MESSAGE_PRIMARY, PQresultErrorMessage(r));
		out->detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
		out->sqlstate = field_or(r, PG_DIAG_SQLSTATE, "");
		return;
	default:
		/* COPY and other modes a parameterised statement cannot enter. */
		out->status = DB_EPROTOCOL;
		out->message = "unsupported result (COPY is not available through the pool)";
		return;
	}
}

static void deliver(db_pool *pool, db_job *job, const db_result *top)
{
	if (job->kind != DB_JOB_USER) {
		db__listen_job_done(pool, job, top);
		return;
	}
	if (top->status == 0)
		pool->completed++;
	else
		pool->failed++;
	{
		static const uint64_t bounds[DB_LAT_BUCKETS - 1] = DB_LAT_BOUNDS_MS;
		uint64_t ms = job->queued_ms ? uv_now(pool->loop) - job->queued_ms : 0;
		unsigned i = 0;

		while (i < DB_LAT_BUCKETS - 1 && ms > bounds[i])
			i++;
		pool->lat_bucket[i]++;
		pool->lat_sum_ms += ms;
	}
	if (job->cb != NULL) {
		job->cb(top, job->ud);
	} else if (top->status != 0) {
		BASE_LOGW(DB_LOG, "query failed (nobody waits for its result): %s%s%s: %.200s",
		          top->message ? top->message : base_strerror(top->status),
		          top->sqlstate[0] ? " SQLSTATE " : "", top->sqlstate, job->stmts[0].sql);
	}
}

void db__job_complete(db_pool *pool, db_job *job)
{
	db_result parts[DB_MAX_TX_STMTS];
	db_result top;

	for (unsigned i = 0; i < job->nstmts; i++)
		result_from_pg(&parts[i], i < job->nres ? job->res[i] : NULL);

	if (!job->is_tx) {
		top = parts[0];
		top.parts = &top;
	} else {
		memset(&top, 0, sizeof(top));
		top.sqlstate = "";
		top.nparts = job->nstmts;
		top.parts = parts;
		top.failed = -1;
		for (unsigned i = 0; i < job->nstmts; i++) {
			if (parts[i].status != 0 && parts[i].status != DB_ESKIPPED) {
				top.status = parts[i].status;
				top.message = parts[i].message;
				top.detail = parts[i].detail;
				top.sqlstate = parts[i].sqlstate;
				top.failed = (int)i;
				break;
			}
		}
		if (top.status == 0 && job->nres < job->nstmts) {
			top.status = DB_EPROTOCOL;
			top.message = "the server answered fewer statements than were sent";
		}
	}
	/*
	 * An error after the last statement's result comes from the commit at
	 * the Sync (a deferred constraint, a serialisation failure): the whole
	 * transaction was rolled back.
	 */
	if (top.status == 0 && job->extra != NULL) {
		db_result extra;

		result_from_pg(&extra, job->extra);
		if (extra.status != 0) {
			top.status = extra.status;
			top.message = extra.message;
			top.detail = extra.detail;
			top.sqlstate = extra.sqlstate;
			top.pg = NULL;
		}
	}
	db__owner_job_done(pool, job);
	deliver(pool, job, &top);
	db__job_free(job);
}

void db__job_fail(db_pool *pool, db_job *job, int status, const char *sqlstate, const char *msg)
{
	db_result parts[DB_MAX_TX_STMTS];
	db_result top;

	memset(&top, 0, sizeof(top));
	top.status = status;
	top.message = msg != NULL ? msg : base_strerror(status);
	top.sqlstate = sqlstate != NULL ? sqlstate : "";
	top.failed = -1;
	top.nparts = job->nstmts;
	if (job->is_tx) {
		for (unsigned i = 0; i < job->nstmts; i++) {
			parts[i] = top;
			parts[i].nparts = 1;
			parts[i].parts = &parts[i];
		}
		top.parts = parts;
	} else {
		top.parts = &top;
	}
	db__owner_job_done(pool, job);
	deliver(pool, job, &top);
	db__job_free(job);
}

/* ---- accessors ------------------------------------------------------------ */

int db_ok(const db_result *res)
{
	return res->status == 0;
}

int db_status(const db_result *res)
{
	return res->status;
}

const char *db_error(const db_result *res)
{
	return res->status == 0 ? NULL : res->message;
}

const char *db_error_detail(const db_result *res)
{
	return res->status == 0 ? NULL : res->detail;
}

const char *db_sqlstate(const db_result *res)
{
	return res->sqlstate != NULL ? res->sqlstate : "";
}

int db_ntuples(const db_result *res)
{
	return res->pg != NULL ? PQntuples(res->pg) : 0;
}

int db_nfields(const db_result *res)
{
	return res->pg != NULL ? PQnfields(res->pg) : 0;
}

int db_field_index(const db_result *res, const char *name)
{
	int n = db_nfields(res);

	/* PQfnumber folds case like SQL identifiers; callers expect exact names. */
	for (int i = 0; i < n; i++) {
		if (strcmp(PQfname(res->pg, i), name) == 0)
			return i;
	}
	return -1;
}

const char *db_field_name(const db_result *res, int col)
{
	if (col < 0 || col >= db_nfields(res))
		return NULL;
	return PQfname(res->pg, col);
}

static int in_range(const db_result *res, int row, int col)
{
	return res->pg != NULL && row >= 0 && col >= 0 && row < PQntuples(res->pg) &&
	       col < PQnfields(res->pg);
}

const char *db_value(const db_result *res, int row, int col)
{
	return in_range(res, row, col) ? PQgetvalue(res->pg, row, col) : NULL;
}

size_t db_value_len(const db_result *res, int row, int col)
{
	return in_range(res, row, col) ? (size_t)PQgetlength(res->pg, row, col) : 0;
}

int db_isnull(const db_result *res, int row, int col)
{
	return in_range(res, row, col) ? PQgetisnull(res->pg, row, col) : 1;
}

uint64_t db_affected(const db_result *res)
{
	const char *s;

	if (res->pg == NULL)
		return 0;
	s = PQcmdTuples((PGresult *)res->pg);
	return s != NULL && s[0] != '\0' ? strtoull(s, NULL, 10) : 0;
}

unsigned db_tx_count(const db_result *res)
{
	return res->nparts;
}

const db_result *db_tx_result(const db_result *res, unsigned i)
{
	if (i >= res->nparts)
		return NULL;
	return &res->parts[i];
}

int db_tx_failed(const db_result *res)
{
	return res->failed;
}

/* ---- helpers ---------------------------------------------------------------- */

void db__oneline(char *buf, size_t len, const char *msg)
{
	size_t o = 0;
	int space = 0;

	if (len == 0)
		return;
	if (msg == NULL)
		msg = "";
	/* libpq messages end with a newline and continue on tab-indented lines. */
	for (; *msg != '\0' && o + 1 < len; msg++) {
		unsigned char ch = (unsigned char)*msg;

		if (ch == '\n' || ch == '\t' || ch == '\r' || ch == ' ') {
			space = o > 0;
			continue;
		}
		if (space && o + 2 < len)
			buf[o++] = ' ';
		space = 0;
		buf[o++] = (char)ch;
	}
	buf[o] = '\0';
}

int db__sqlstate_fatal(const char *sqlstate)
{
	if (sqlstate == NULL)
		return 0;
	return strncmp(sqlstate, "57P", 3) == 0 || strncmp(sqlstate, "08", 2) == 0;
}
