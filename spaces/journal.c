/*
 * journal.c: the results journal, DATA_DIR/results.journal.
 *
 * An app's result must survive PostgreSQL being away and the server being
 * killed meanwhile. Each result taken is appended to this file as one line,
 * "<crc32, 8 hex digits> <JSON object>\n", and kept there until PostgreSQL
 * has it. At start-up the file is read again and every record handed back
 * to the caller, which writes them (idempotently) once more.
 *
 * The file is touched off the loop only: appends (with fdatasync) and
 * compactions run one at a time on the libuv threadpool. Records that come
 * while one runs are gathered and go together in the next append, so one
 * fdatasync covers many results. A record released before its turn is never
 * written at all. With a delay (sp_journal_set_delay, --journal-delay-ms),
 * a record's turn comes only once it has waited that long, as a group
 * commit does: while PostgreSQL answers within the delay, results are
 * released before their turn and the file is never touched. Once every
 * record is released the file is truncated; when at least half of a large
 * file is released records, it is rewritten (temporary file, fdatasync,
 * rename, fsync of the directory). The records not yet released never take
 * more than max_bytes: past that, new ones are refused.
 *
 * A lock file (DATA_DIR/lock, flock) keeps a second process from sharing
 * the journal.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "spaces_internal.h"

#define JOURNAL_FILE "results.journal"
/* A file smaller than this is not rewritten just to drop released records. */
#define JOURNAL_COMPACT_MIN (1u << 20)

enum { JR_QUEUED, JR_WRITING, JR_DURABLE, JR_LOST };
enum { OP_NONE, OP_APPEND, OP_REWRITE, OP_TRUNCATE };

struct sp_jrec {
	base_list link; /* in the journal's queued, writing, live or lost list */
	int state;
	int released;
	uint64_t due; /* loop time (ms) its append may start */
	size_t len;   /* of line */
	char line[];  /* "<crc> <json>\n" */
};

struct sp_journal {
	uv_loop_t *loop;
	char path[PATH_MAX];
	char tmp_path[PATH_MAX];
	char dir[PATH_MAX];
	int fd, lock_fd;
	uint64_t max_bytes;
	uint64_t file_bytes;   /* the file's size */
	uint64_t held_bytes;   /* records not released */
	uint64_t live_bytes;   /* of the live list */
	uint64_t queued_bytes; /* of the queued list */
	base_list queued;      /* waiting for the next append */
	base_list writing;     /* in the append running now */
	base_list live;        /* in the file, not released */
	base_list lost;        /* their append failed: in memory only */
	int busy;              /* an operation runs on the threadpool */
	int broken;            /* an append failed: nothing more is taken */
	int freeing;           /* sp_journal_free was called while busy */
	int compact_failed;    /* the last compaction failed: wait for the next change */
	uint64_t delay_ms;     /* how long a record waits for its release before its append */
	uv_timer_t *timer;     /* wakes kick() when the oldest queued record is due */
	int timer_on;
	/* the operation off the loop; the loop does not touch these while busy */
	uv_work_t work;
	int op;
	char *buf;
	size_t buf_len;
	int err; /* errno of the operation, 0 when it worked */
};

static void kick(sp_journal *j);

/* ---- on the threadpool ---------------------------------------------------- */

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int rewrite_file(sp_journal *j)
{
	int fd = open(j->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno;
	int err = write_all(fd, j->buf, j->buf_len);
	if (!err && fdatasync(fd))
		err = errno;
	close(fd);
	if (!err && rename(j->tmp_path, j->path))
		err = errno;
	if (err) {
		unlink(j->tmp_path);
		return err;
	}
	/* The rename is durable once the directory is. */
	int dfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	fd = open(j->path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return errno;
	close(j->fd);
	j->fd = fd;
	return 0;
}

static void work_run(uv_work_t *w)
{
	sp_journal *j = w->data;
	j->err = 0;
	switch (j->op) {
	case OP_APPEND:
		j->err = write_all(j->fd, j->buf, j->buf_len);
		if (!j->err && fdatasync(j->fd))
			j->err = errno;
		break;
	case OP_TRUNCATE:
		if (ftruncate(j->fd, 0) || fdatasync(j->fd))
			j->err = errno;
		break;
	case OP_REWRITE:
		j->err = rewrite_file(j);
		break;
	}
}

/* ---- on the loop ------------------------------------------------------------ */

static void rec_free_list(base_list *head)
{
	while (!base_list_empty(head)) {
		sp_jrec *r = BASE_CONTAINER_OF(head->next, sp_jrec, link);
		base_list_remove(&r->link);
		free(r);
	}
}

static void journal_destroy(sp_journal *j)
{
	if (j->timer) {
		j->timer->data = NULL;
		uv_close((uv_handle_t *)j->timer, (uv_close_cb)free);
	}
	rec_free_list(&j->queued);
	rec_free_list(&j->writing);
	rec_free_list(&j->live);
	rec_free_list(&j->lost);
	if (j->fd >= 0)
		close(j->fd);
	if (j->lock_fd >= 0)
		close(j->lock_fd); /* and the lock with it */
	free(j->buf);
	free(j);
}

static void work_done(uv_work_t *w, int status)
{
	sp_journal *j = w->data;
	int op = j->op;
	int err = status ? -status : j->err;
	j->busy = 0;
	j->op = OP_NONE;
	free(j->buf);
	j->buf = NULL;
	if (op == OP_APPEND) {
		if (err) {
			j->broken = 1;
			BASE_LOGE("spaces",
			          "writing the results journal %s failed: %s; results are "
			          "refused from now on (those taken are kept in memory)",
			          j->path, strerror(err));
		} else {
			j->file_bytes += j->buf_len;
		}
		while (!base_list_empty(&j->writing)) {
			sp_jrec *r = BASE_CONTAINER_OF(j->writing.next, sp_jrec, link);
			base_list_remove(&r->link);
			if (r->released) {
				free(r);
				continue;
			}
			r->state = err ? JR_LOST : JR_DURABLE;
			base_list_insert_tail(err ? &j->lost : &j->live, &r->link);
			if (!err)
				j->live_bytes += r->len;
		}
	} else if (op == OP_TRUNCATE || op == OP_REWRITE) {
		if (err) {
			/* The old file is still whole: only the space is not won back. */
			BASE_LOGW("spaces", "compacting the results journal %s failed: %s", j->path,
			          strerror(err));
			j->compact_failed =
			    1; /* tried again at the next record added or released */
		} else {
			j->file_bytes = op == OP_TRUNCATE ? 0 : j->buf_len;
		}
	}
	j->buf_len = 0;
	if (j->freeing) {
		sp_journal_free(j);
		return;
	}
	kick(j);
}

static void start_op(sp_journal *j, int op)
{
	j->op = op;
	j->busy = 1;
	j->work.data = j;
	int rc = uv_queue_work(j->loop, &j->work, work_run, work_done);
	if (rc) {
		/* Only with a bad loop: run it here rather than lose it. */
		work_run(&j->work);
		work_done(&j->work, 0);
	}
}

/* Every record of list concatenated into j->buf. 0 or BASE_ENOMEM. */
static int gather(sp_journal *j, base_list *list)
{
	size_t n = 0;
	base_list *pos;
	for (pos = list->next; pos != list; pos = pos->next)
		n += BASE_CONTAINER_OF(pos, sp_jrec, link)->len;
	j->buf = malloc(n ? n : 1);
	if (!j->buf)
		return BASE_ENOMEM;
	j->buf_len = 0;
	for (pos = list->next; pos != list; pos = pos->next) {
		sp_jrec *r = BASE_CONTAINER_OF(pos, sp_jrec, link);
		memcpy(j->buf + j->buf_len, r->line, r->len);
		j->buf_len += r->len;
	}
	return 0;
}

static void on_due(uv_timer_t *t)
{
	sp_journal *j = t->data;
	if (j) {
		j->timer_on = 0;
		kick(j);
	}
}

/* 1 when the oldest queued record's turn has come; else the timer is armed for it. */
static int queued_due(sp_journal *j)
{
	if (base_list_empty(&j->queued) || j->broken)
		return 0;
	uint64_t due = BASE_CONTAINER_OF(j->queued.next, sp_jrec, link)->due;
	uint64_t now = uv_now(j->loop);
	if (due <= now)
		return 1;
	if (!j->timer_on && j->timer) {
		uv_timer_start(j->timer, on_due, due - now, 0);
		j->timer_on = 1;
	}
	return 0;
}

/* Starts the next operation, if there is one and none runs. */
static void kick(sp_journal *j)
{
	if (j->busy || j->fd < 0 || j->compact_failed)
		return;
	uint64_t live = j->live_bytes;
	if (queued_due(j)) {
		/* The file stays within its bound: released records go first. */
		if (j->file_bytes + j->queued_bytes > j->max_bytes && j->file_bytes > live) {
			if (live == 0 || gather(j, &j->live) == 0)
				start_op(j, live == 0 ? OP_TRUNCATE : OP_REWRITE);
			return;
		}
		if (gather(j, &j->queued))
			return; /* out of memory: tried again at the next record */
		while (!base_list_empty(&j->queued)) {
			sp_jrec *r = BASE_CONTAINER_OF(j->queued.next, sp_jrec, link);
			base_list_remove(&r->link);
			r->state = JR_WRITING;
			base_list_insert_tail(&j->writing, &r->link);
		}
		j->queued_bytes = 0;
		start_op(j, OP_APPEND);
		return;
	}
	if (j->file_bytes > 0 && live == 0) {
		start_op(j, OP_TRUNCATE);
	} else if (j->file_bytes >= JOURNAL_COMPACT_MIN && live * 2 < j->file_bytes) {
		if (gather(j, &j->live) == 0)
			start_op(j, OP_REWRITE);
	}
}

/* The JSON of a line "<crc> <json>\n" (len without the newline), or NULL. */
static const char *check_line(const char *line, size_t len, size_t *json_len)
{
	if (len < 10 || line[8] != ' ')
		return NULL;
	char hex[9];
	memcpy(hex, line, 8);
	hex[8] = 0;
	char *end;
	unsigned long want = strtoul(hex, &end, 16);
	if (*end)
		return NULL;
	const char *json = line + 9;
	*json_len = len - 9;
	uLong crc = crc32(0L, (const Bytef *)json, (uInt)*json_len);
	return crc == want ? json : NULL;
}

/* Reads the file back; returns the length of its valid part, or -1. */
static long long replay(sp_journal *j, sp_journal_replay_cb cb, void *ud)
{
	FILE *f = fopen(j->path, "r");
	if (!f)
		return errno == ENOENT ? 0 : -1;
	char *line = NULL;
	size_t cap = 0;
	long long good = 0;
	ssize_t n;
	unsigned count = 0;
	while ((n = getline(&line, &cap, f)) > 0) {
		size_t json_len;
		const char *json =
		    line[n - 1] == '\n' ? check_line(line, (size_t)n - 1, &json_len) : NULL;
		if (!json) {
			/* A record cut by a crash before its fdatasync returned: it was
			 * never taken. What follows it cannot be trusted either. */
			BASE_LOGW("spaces",
			          "results journal %s: damaged record at byte %lld; it and the "
			          "rest of the file are dropped",
			          j->path, good);
			break;
		}
		sp_jrec *r = malloc(sizeof(*r) + (size_t)n + 1);
		if (!r) {
			fclose(f);
			free(line);
			return -1;
		}
		memcpy(r->line, line, (size_t)n);
		r->line[n] = 0;
		r->len = (size_t)n;
		r->state = JR_DURABLE;
		r->released = 0;
		base_list_insert_tail(&j->live, &r->link);
		j->held_bytes += r->len;
		j->live_bytes += r->len;
		good += n;
		count++;
		cb(r, r->line + 9, json_len, ud); /* which may release r */
	}
	free(line);
	fclose(f);
	if (count)
		BASE_LOGI("spaces", "results journal %s: %u record(s) to write again", j->path,
		          count);
	return good;
}

int sp_journal_open(uv_loop_t *loop, const char *dir, uint64_t max_bytes, sp_journal_replay_cb cb,
                    void *ud, sp_journal **out)
{
	*out = NULL;
	sp_journal *j = calloc(1, sizeof(*j));
	if (!j)
		return BASE_ENOMEM;
	j->loop = loop;
	j->fd = j->lock_fd = -1;
	j->max_bytes = max_bytes;
	base_list_init(&j->queued);
	base_list_init(&j->writing);
	base_list_init(&j->live);
	base_list_init(&j->lost);
	char lock_path[PATH_MAX];
	if (strlen(dir) > PATH_MAX - 64) {
		BASE_LOGE("spaces", "data directory name too long: %s", dir);
		goto fail;
	}
	snprintf(j->dir, sizeof(j->dir), "%s", dir);
	snprintf(j->path, sizeof(j->path), "%s/" JOURNAL_FILE, dir);
	snprintf(j->tmp_path, sizeof(j->tmp_path), "%s/" JOURNAL_FILE ".tmp", dir);
	snprintf(lock_path, sizeof(lock_path), "%s/lock", dir);
	if (base_mkdirs(dir, 0700)) {
		BASE_LOGE("spaces", "cannot create the data directory %s: %s", dir,
		          strerror(errno));
		goto fail;
	}
	j->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (j->lock_fd < 0) {
		BASE_LOGE("spaces", "cannot open %s: %s", lock_path, strerror(errno));
		goto fail;
	}
	if (flock(j->lock_fd, LOCK_EX | LOCK_NB)) {
		BASE_LOGE("spaces",
		          "the data directory %s is in use by another process (%s): give each "
		          "spaces-server its own --data-dir",
		          dir, strerror(errno));
		goto fail;
	}
	unlink(j->tmp_path); /* a compaction cut short */
	long long good = replay(j, cb, ud);
	if (good < 0) {
		BASE_LOGE("spaces", "cannot read the results journal %s: %s", j->path,
		          strerror(errno));
		goto fail;
	}
	j->fd = open(j->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (j->fd < 0) {
		BASE_LOGE("spaces", "cannot open the results journal %s: %s", j->path,
		          strerror(errno));
		goto fail;
	}
	struct stat st;
	if (fstat(j->fd, &st) == 0 && (long long)st.st_size > good) {
		/* Drop the damaged tail, so that new records follow good ones. */
		if (ftruncate(j->fd, (off_t)good) || fdatasync(j->fd)) {
			BASE_LOGE("spaces", "cannot truncate the results journal %s: %s", j->path,
			          strerror(errno));
			goto fail;
		}
	}
	j->file_bytes = (uint64_t)good;
	j->timer = malloc(sizeof(*j->timer));
	if (!j->timer || uv_timer_init(loop, j->timer)) {
		free(j->timer);
		j->timer = NULL;
		goto fail;
	}
	j->timer->data = j;
	kick(j);
	*out = j;
	return 0;
fail:
	journal_destroy(j);
	return BASE_EINVAL;
}

int sp_journal_add(sp_journal *j, const char *json, size_t len, sp_jrec **out)
{
	*out = NULL;
	if (j->broken)
		return BASE_ECLOSED;
	size_t line_len = 9 + len + 1;
	if (j->held_bytes + line_len > j->max_bytes)
		return BASE_ELIMIT;
	sp_jrec *r = malloc(sizeof(*r) + line_len + 1);
	if (!r)
		return BASE_ENOMEM;
	uLong crc = crc32(0L, (const Bytef *)json, (uInt)len);
	snprintf(r->line, 10, "%08lx ", (unsigned long)crc);
	memcpy(r->line + 9, json, len);
	r->line[9 + len] = '\n';
	r->line[line_len] = 0;
	r->len = line_len;
	r->state = JR_QUEUED;
	r->released = 0;
	r->due = uv_now(j->loop) + j->delay_ms;
	base_list_insert_tail(&j->queued, &r->link);
	j->held_bytes += line_len;
	j->queued_bytes += line_len;
	j->compact_failed = 0;
	kick(j);
	*out = r;
	return 0;
}

void sp_journal_release(sp_journal *j, sp_jrec *r)
{
	if (!r || r->released)
		return;
	r->released = 1;
	j->held_bytes -= r->len;
	if (r->state == JR_WRITING)
		return; /* freed when its append is done */
	if (r->state == JR_DURABLE)
		j->live_bytes -= r->len;
	else if (r->state == JR_QUEUED)
		j->queued_bytes -= r->len;
	base_list_remove(&r->link);
	free(r);
	j->compact_failed = 0;
	kick(j);
}

void sp_journal_set_delay(sp_journal *j, unsigned ms)
{
	j->delay_ms = ms;
}

void sp_journal_flush(sp_journal *j)
{
	base_list *pos;
	uint64_t now = uv_now(j->loop);
	for (pos = j->queued.next; pos != &j->queued; pos = pos->next)
		BASE_CONTAINER_OF(pos, sp_jrec, link)->due = now;
	kick(j);
}

uint64_t sp_journal_held_bytes(const sp_journal *j)
{
	return j->held_bytes;
}

void sp_journal_free(sp_journal *j)
{
	if (!j)
		return;
	if (j->busy) {
		j->freeing = 1; /* work_done comes back here */
		return;
	}
	/* Shutting down: what is still queued goes to the file now (the loop is
	 * ending, so waiting here blocks nobody), to be written at the next start. */
	if (!base_list_empty(&j->queued) && !j->broken && j->fd >= 0 &&
	    gather(j, &j->queued) == 0) {
		if (write_all(j->fd, j->buf, j->buf_len) || fdatasync(j->fd))
			BASE_LOGE("spaces", "writing the results journal %s failed: %s", j->path,
			          strerror(errno));
	}
	journal_destroy(j);
}
