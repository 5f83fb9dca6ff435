/* SPDX-License-Identifier: MIT */
/*
 * quarantine: the records of memory held back for an IOMMU holder (quarantine.h says why). A record is
 * one holder and either a range of a live guest (a to-private commit it did not ack) or the whole memory
 * of a destroyed guest, shared with the other records of that guest through a quarantine_mem, which
 * gives the memory back to the backend when its last record goes. Records of a live guest turn into
 * records of its memory when the guest is destroyed: the holder still reaches those PFNs.
 */
#include "quarantine.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "client.h"
#include "conversion.h"
#include "guest.h"
#include "log.h"
#include "manager.h"
#include "policy.h"
#include "util.h"

/* A destroyed guest's memory, allocated in the backend until its last record is released. */
struct quarantine_mem {
	struct backend_guest *mem; /* owned */
	uint64_t size;
	unsigned refs;
	struct list_node node;
};

struct quarantine_rec {
	struct manager *m;
	uint64_t guest_id;
	char guest[GMEM_NAME_MAX + 1];
	uid_t owner;
	struct guest *g;            /* live guest (borrowed); NULL once destroyed */
	struct quarantine_mem *mem; /* destroyed guest: a reference */
	uint64_t offset, length;
	uint64_t epoch, seq;        /* the conversion not acked; seq 0 for a destroy */
	uint64_t client_id;
	pid_t pid;
	char client_name[GMEM_NAME_MAX + 1];
	int pidfd;
	struct event *exit_ev;
	struct list_node node;
};

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

void quarantine_init(struct quarantine_set *q)
{
	list_init(&q->records);
	list_init(&q->mems);
}

static void mem_put(struct manager *m, struct quarantine_mem *qm, bool destroy)
{
	if (!qm || --qm->refs)
		return;
	list_del(&qm->node);
	/* The backend scrubs what it gives back to the pool (the module on free, memfd by punching). */
	if (destroy)
		m->bops->guest_destroy(m->backend, qm->mem);
	else
		m->bops->guest_release(m->backend, qm->mem);
	free(qm);
}

static void rec_free(struct quarantine_rec *q, bool destroy)
{
	if (!q)
		return;
	list_del(&q->node);
	if (q->exit_ev)
		event_free(q->exit_ev);
	safe_close(q->pidfd);
	mem_put(q->m, q->mem, destroy);
	free(q);
}

static void release(struct quarantine_rec *q, const char *why)
{
	struct manager *m = q->m;
	log_notice("quarantine of '%s'%s [%llu, +%llu) released: client %llu (pid %d) %s", q->guest,
		   q->g ? "" : " (destroyed)", (unsigned long long)q->offset, (unsigned long long)q->length,
		   (unsigned long long)q->client_id, (int)q->pid, why);
	rec_free(q, true);
	notify_changed(m->notify);
}

static void on_holder_exit(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	release(arg, "exited");
}

static int rec_new(struct manager *m, struct guest *g, const struct quarantine_holder *h, struct quarantine_rec **ret)
{
	struct quarantine_rec *q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	list_init(&q->node);
	q->m = m;
	q->pidfd = -EBADF;
	q->guest_id = g->id;
	snprintf(q->guest, sizeof(q->guest), "%s", g->name);
	q->owner = g->owner;
	q->g = g;
	q->client_id = h->client_id;
	q->pid = h->pid;
	snprintf(q->client_name, sizeof(q->client_name), "%s", h->name ? h->name : "");
	/* No pidfd (a kernel or a tool without pidfd_open): nothing tells us of its exit, so only an ack
	 * releases it. Safe rather than sorry. */
	if (h->pidfd < 0) {
		log_warning("quarantine for client %llu: no pidfd, released only by its ack",
			    (unsigned long long)h->client_id);
		list_add_tail(&m->quarantine.records, &q->node);
		*ret = q;
		return 0;
	}
	/* Our own pidfd: the client's closes with its connection, and the process may outlive that. */
	q->pidfd = fcntl(h->pidfd, F_DUPFD_CLOEXEC, 3);
	if (q->pidfd < 0) {
		int r = negative_errno();
		free(q);
		return r;
	}
	q->exit_ev = event_new(m->base, q->pidfd, EV_READ, on_holder_exit, q);
	if (!q->exit_ev || event_add(q->exit_ev, NULL) < 0) {
		if (q->exit_ev)
			event_free(q->exit_ev);
		close(q->pidfd);
		free(q);
		return -ENOMEM;
	}
	list_add_tail(&m->quarantine.records, &q->node);
	*ret = q;
	return 0;
}

int quarantine_unacked(struct manager *m, struct guest *g, uint64_t epoch, uint64_t seq,
		       const struct quarantine_holder *h, const struct conv_range *ranges, size_t n)
{
	if (!QUARANTINE_ENABLED || n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		struct quarantine_rec *q;
		int r = rec_new(m, g, h, &q);
		if (r < 0)
			return log_errno(LOG_CRIT, r, "quarantine of '%s' [%llu, +%llu) for client %llu", g->name,
					 (unsigned long long)ranges[i].offset, (unsigned long long)ranges[i].length,
					 (unsigned long long)h->client_id);
		q->offset = ranges[i].offset;
		q->length = ranges[i].length;
		q->epoch = epoch;
		q->seq = seq;
		log_warning("quarantine of '%s' [%llu, +%llu): client %llu (pid %d) did not ack the to-private commit "
			    "of conversion %llu; its IOMMU may still reach the range", g->name,
			    (unsigned long long)q->offset, (unsigned long long)q->length,
			    (unsigned long long)h->client_id, (int)h->pid, (unsigned long long)seq);
	}
	notify_changed(m->notify);
	return 0;
}

int quarantine_ack(struct manager *m, const struct client *c, uint64_t epoch, uint64_t seq)
{
	int released = 0;
	list_for_each_safe(pos, &m->quarantine.records) {
		struct quarantine_rec *q = list_entry(pos, struct quarantine_rec, node);
		if (q->seq && q->seq == seq && q->epoch == epoch && q->client_id == c->id) {
			release(q, "acked late");
			released = 1;
		}
	}
	return released;
}

bool quarantine_guest_destroy(struct manager *m, struct guest *g)
{
	if (!QUARANTINE_ENABLED)
		return false;
	struct quarantine_mem *qm = calloc(1, sizeof(*qm));
	if (!qm) {
		/* Cannot hold it: keeping the guest alive forever is worse than the hazard logged here. */
		log_errno(LOG_CRIT, -ENOMEM, "quarantine of destroyed guest '%s'", g->name);
		return false;
	}
	list_init(&qm->node);
	qm->size = g->size;

	/* Its unacked ranges: the holder may still reach any of the guest's PFNs once they are reused. */
	list_for_each(pos, &m->quarantine.records) {
		struct quarantine_rec *q = list_entry(pos, struct quarantine_rec, node);
		if (q->g != g)
			continue;
		q->g = NULL;
		q->mem = qm;
		q->offset = 0;
		q->length = g->size;
		qm->refs++;
	}
	/* Every live process with an iommu attachment on it, once each. */
	list_for_each(pos, &g->attachments) {
		struct attachment *a = list_entry(pos, struct attachment, guest_node);
		struct client *c = a->client;
		if (a->kind != GMEM_ATTACH_IOMMU)
			continue;
		bool seen = false;
		list_for_each(p2, &m->quarantine.records) {
			struct quarantine_rec *q = list_entry(p2, struct quarantine_rec, node);
			seen |= q->mem == qm && q->client_id == c->id;
		}
		if (seen)
			continue;
		struct quarantine_holder h = { .client_id = c->id, .pid = c->pid, .pidfd = c->pidfd, .name = c->name };
		struct quarantine_rec *q;
		int r = rec_new(m, g, &h, &q);
		if (r < 0) {
			log_errno(LOG_CRIT, r, "quarantine of destroyed guest '%s' for client %llu", g->name,
				  (unsigned long long)c->id);
			continue;
		}
		q->g = NULL;
		q->mem = qm;
		q->length = g->size;
		qm->refs++;
	}
	if (!qm->refs) {
		free(qm);
		return false;
	}
	qm->mem = g->mem;
	list_add_tail(&m->quarantine.mems, &qm->node);
	log_warning("guest '%s' destroyed while %u IOMMU holder(s) live: its %llu bytes stay allocated until they "
		    "exit", g->name, qm->refs, (unsigned long long)g->size);
	notify_changed(m->notify);
	return true;
}

bool quarantine_overlaps(const struct manager *m, const struct guest *g, uint64_t off, uint64_t len, char *who,
			 size_t wholen)
{
	list_for_each(pos, &m->quarantine.records) {
		const struct quarantine_rec *q = list_entry(pos, struct quarantine_rec, node);
		if (q->g != g || !overlaps(q->offset, q->length, off, len))
			continue;
		if (who)
			snprintf(who, wholen, "[%llu, +%llu) is quarantined: client %llu '%s' (pid %d) did not ack the "
				 "to-private commit of conversion %llu; it is released when that client acks or its "
				 "process exits", (unsigned long long)q->offset, (unsigned long long)q->length,
				 (unsigned long long)q->client_id, q->client_name, (int)q->pid,
				 (unsigned long long)q->seq);
		return true;
	}
	return false;
}

static int cmp_span(const void *a, const void *b)
{
	const struct gmem_wire_range *x = a, *y = b;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Ranges of one guest may be held by several holders: each byte counts once. */
static uint64_t live_bytes(const struct manager *m, const struct guest *g)
{
	size_t n = 0, i = 0;
	list_for_each(pos, &m->quarantine.records)
		n += list_entry(pos, struct quarantine_rec, node)->g == g;
	if (n == 0)
		return 0;
	struct gmem_wire_range *s = calloc(n, sizeof(*s));
	uint64_t bytes = 0, end = 0;
	list_for_each(pos, &m->quarantine.records) {
		const struct quarantine_rec *q = list_entry(pos, struct quarantine_rec, node);
		if (q->g != g)
			continue;
		if (!s) { /* out of memory: an upper bound rather than nothing */
			bytes += q->length;
			continue;
		}
		s[i].offset = q->offset;
		s[i++].length = q->length;
	}
	if (!s)
		return bytes;
	qsort(s, n, sizeof(*s), cmp_span);
	for (i = 0; i < n; i++) {
		uint64_t a = MAX(s[i].offset, end), b = s[i].offset + s[i].length;
		if (b > a)
			bytes += b - a;
		end = MAX(end, b);
	}
	free(s);
	return bytes;
}

uint64_t quarantine_bytes(const struct manager *m, const struct guest *g)
{
	if (g)
		return live_bytes(m, g);
	uint64_t bytes = 0;
	list_for_each(pos, &m->quarantine.records) {
		const struct quarantine_rec *q = list_entry(pos, struct quarantine_rec, node);
		bool first = q->g != NULL;
		/* Once per live guest: at its first record. */
		list_for_each(p2, &m->quarantine.records) {
			if (p2 == pos)
				break;
			first &= list_entry(p2, struct quarantine_rec, node)->g != q->g;
		}
		if (first)
			bytes += live_bytes(m, q->g);
	}
	list_for_each(pos, &m->quarantine.mems)
		bytes += list_entry(pos, struct quarantine_mem, node)->size;
	return bytes;
}

static bool may_see(const struct manager *m, const struct client *who, const struct quarantine_rec *q)
{
	if (q->g)
		return policy_perms(m, who, q->g) & PERM_SEE;
	return who->uid == 0 || who->uid == m->self_uid || who->uid == q->owner || who->id == q->client_id;
}

size_t quarantine_list(const struct manager *m, const struct client *who, const struct guest *g,
		       struct gmem_wire_quarantine *out, size_t max)
{
	size_t n = 0;
	list_for_each(pos, &m->quarantine.records) {
		const struct quarantine_rec *q = list_entry(pos, struct quarantine_rec, node);
		if (n == max)
			break;
		if ((g && q->g != g) || !may_see(m, who, q))
			continue;
		struct gmem_wire_quarantine *w = &out[n++];
		memset(w, 0, sizeof(*w));
		snprintf(w->guest, sizeof(w->guest), "%s", q->guest);
		w->destroyed = !q->g;
		w->offset = q->offset;
		w->length = q->length;
		w->seq = q->seq;
		w->client_id = q->client_id;
		w->pid = (uint64_t)q->pid;
		snprintf(w->client_name, sizeof(w->client_name), "%s", q->client_name);
	}
	return n;
}

void quarantine_release_all(struct manager *m)
{
	list_for_each_safe(pos, &m->quarantine.records)
		release(list_entry(pos, struct quarantine_rec, node), "released (reset)");
}

void quarantine_deinit(struct manager *m)
{
	/* gmemd stops, the memory stays as guests' does (a restarted gmemd finds the module's guests). */
	list_for_each_safe(pos, &m->quarantine.records)
		rec_free(list_entry(pos, struct quarantine_rec, node), false);
}
