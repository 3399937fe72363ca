/*
 * pwhash.c: password hashing on the threadpool, at most one hash in flight
 * per client address.
 *
 * An argon2id hash takes about a tenth of a second of CPU and 64 MiB, and
 * the libuv threadpool has a handful of threads shared by every hash and
 * every file operation. Sixteen registrations at once from one client
 * used to fill it, and everybody else's login waited seconds behind them.
 * So each address gets one hash at a time; a few more of its requests wait
 * in a small queue of their own, and beyond that the address is told to
 * slow down (429). Other addresses' hashes never wait behind that queue.
 *
 * Everything here runs on the loop; only the job's work function runs on a
 * thread, and it touches nothing but its own job.
 */
#include <stdio.h>
#include <stdlib.h>

#include "web_internal.h"

#define GATE_BUCKETS 256
#define GATE_QUEUE_MAX 3   /* waiting hashes per address, besides the running one */
#define GATE_TOTAL_MAX 512 /* running and waiting hashes of all addresses */

typedef struct gate_entry {
	struct gate_entry *next; /* in its bucket */
	base_list queue;         /* web_hash_job.link, waiting */
	unsigned n_queued;
	int running;
	char addr[48];
} gate_entry;

struct web_hash_gate {
	gate_entry *buckets[GATE_BUCKETS];
	unsigned total;
};

web_hash_gate *web__hash_gate_new(void)
{
	return calloc(1, sizeof(web_hash_gate));
}

void web__hash_gate_free(web_hash_gate *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < GATE_BUCKETS; i++) {
		gate_entry *e = g->buckets[i];

		while (e) {
			gate_entry *next = e->next;

			free(e);
			e = next;
		}
	}
	free(g);
}

static uint32_t addr_hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static gate_entry **find(web_hash_gate *g, const char *addr)
{
	gate_entry **p = &g->buckets[addr_hash(addr) % GATE_BUCKETS];

	while (*p && strcmp((*p)->addr, addr) != 0)
		p = &(*p)->next;
	return p;
}

static void job_work(uv_work_t *req)
{
	web_hash_job *j = req->data;

	j->work(j);
}

static void job_done(uv_work_t *req, int status);

static int job_start(web_hash_job *j)
{
	j->uv.data = j;
	return uv_queue_work(j->site->loop, &j->uv, job_work, job_done);
}

/* The address's hash ended: start its next waiting one, or forget the address. */
static void entry_next(web_site *site, const char *addr)
{
	web_hash_gate *g = site->hash_gate;
	gate_entry **p = find(g, addr);
	gate_entry *e = *p;

	if (!e)
		return;
	while (!base_list_empty(&e->queue)) {
		web_hash_job *j = BASE_CONTAINER_OF(e->queue.next, web_hash_job, link);

		base_list_remove(&j->link);
		e->n_queued--;
		if (job_start(j) == 0)
			return; /* e->running stays 1 */
		g->total--;
		j->done(j, UV_EBUSY);
	}
	e->running = 0;
	*p = e->next;
	free(e);
}

static void job_done(uv_work_t *req, int status)
{
	web_hash_job *j = req->data;
	web_site *site = j->site;
	char addr[48];

	snprintf(addr, sizeof(addr), "%s", j->addr);
	site->hash_gate->total--;
	/* Keep the site alive across the callback, which may free the job's request. */
	web__site_ref(site);
	j->done(j, status);
	entry_next(site, addr);
	web__site_unref(site);
}

int web__hash_run(web_site *site, web_hash_job *j, const char *addr)
{
	web_hash_gate *g = site->hash_gate;
	gate_entry **p;
	gate_entry *e;

	j->site = site;
	snprintf(j->addr, sizeof(j->addr), "%s", addr ? addr : "");
	if (g->total >= GATE_TOTAL_MAX)
		return BASE_ENOMEM; /* the server is busy */
	p = find(g, j->addr);
	e = *p;
	if (e && e->n_queued >= GATE_QUEUE_MAX)
		return BASE_ELIMIT;
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e)
			return BASE_ENOMEM;
		base_list_init(&e->queue);
		snprintf(e->addr, sizeof(e->addr), "%s", j->addr);
		e->next = g->buckets[addr_hash(j->addr) % GATE_BUCKETS];
		g->buckets[addr_hash(j->addr) % GATE_BUCKETS] = e;
	}
	if (e->running) {
		base_list_insert_tail(&e->queue, &j->link);
		e->n_queued++;
		g->total++;
		return 0;
	}
	if (job_start(j) != 0) {
		if (base_list_empty(&e->queue)) {
			*find(g, j->addr) = e->next;
			free(e);
		}
		return BASE_ENOMEM; /* the server is busy */
	}
	e->running = 1;
	g->total++;
	return 0;
}
