/* SPDX-License-Identifier: MIT */
/*
 * replay-manager: a replayed state (replay.h) made live — guests back in the table with the memory the
 * fd store returned (checked to be the very file the journal names), lost ones listed as lost, and the
 * conversions a crash left half-done finished for good, their outcomes kept for the participants that
 * come back in doubt.
 */
#include "replay.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "adopt.h"
#include "backend.h"
#include "fdstore.h"
#include "guest.h"
#include "journal-state.h"
#include "journal.h"
#include "log.h"
#include "manager.h"
#include "sharemap.h"
#include "testhook.h"
#include "util.h"

static int make_lost(struct manager *m, const struct replay_guest *rg, const char *why)
{
	struct lost_guest *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->id = rg->id;
	snprintf(l->name, sizeof(l->name), "%s", rg->name);
	l->size = rg->size;
	l->granule = rg->granule;
	l->owner = rg->owner;
	list_add_tail(&m->lost, &l->node);
	m->n_lost++;
	if (why)
		log_warning("guest '%s' is lost: %s; it is listed as lost and never recreated empty "
			    "(gmemctl forget %s clears it)", rg->name, why, rg->name);
	return 0;
}

static const char *adopt_failure(int r)
{
	switch (r) {
	case -ENOENT:
		return "the module no longer holds it";
	case -ESTALE:
		return "the module's guest is not the recorded one (size, granule, cookie or PFN base differ)";
	case -EBUSY:
		return "another guest of the journal names the same module guest";
	default:
		return "the backend refused its memory";
	}
}

/* *found_ident: the backend told an ident the journal did not record (a journal of an older gmemd). */
static int restore_guest(struct manager *m, struct replay_guest *rg, struct fdstore *fds, bool *found_ident)
{
	struct backend_guest *mem = NULL;
	struct stat st;
	int fd = -EBADF;
	int r;

	if (rg->lost)
		return make_lost(m, rg, NULL);
	if (!m->bops->guest_adopt)
		return make_lost(m, rg, "this backend cannot take memory back");
	if (!m->bops->keeps_memory) {
		/* memfd: the memory is a file only the service manager's fd store kept. */
		fd = fdstore_take(fds, rg->id);
		if (fd < 0)
			return make_lost(m, rg, "its memory did not come back from the fd store");
		if (fstat(fd, &st) < 0 || (uint64_t)st.st_dev != rg->dev || (uint64_t)st.st_ino != rg->ino) {
			safe_close(fd);
			return make_lost(m, rg, "the fd store gave back a file that is not its memory (st_dev/st_ino "
					 "differ)");
		}
	}
	r = m->bops->guest_adopt(m->backend, rg->id, rg->name, rg->size, rg->granule, fd, &rg->ident, &mem);
	if (r < 0) {
		log_errno(LOG_WARNING, r, "guest '%s': taking its memory back", rg->name);
		return make_lost(m, rg, adopt_failure(r));
	}

	struct guest *g = guest_alloc(rg->id, rg->name, rg->size, rg->granule, rg->owner);
	if (!g) {
		m->bops->guest_release(m->backend, mem);
		return -ENOMEM;
	}
	g->dev = rg->dev;
	g->ino = rg->ino;
	g->mem = mem;
	if (m->bops->guest_ident) {
		m->bops->guest_ident(m->backend, mem, &g->ident);
		*found_ident |= !rg->ident.module_id;
	}
	r = adopt_map(m, rg->name, mem, rg->size, rg->granule, TAKE_PTR(rg->map), &g->map);
	if (r < 0) {
		m->bops->guest_release(m->backend, mem);
		free(g);
		return r;
	}
	g->grants = TAKE_PTR(rg->grants);
	g->n_grants = rg->n_grants;
	r = guest_table_add(&m->guests, g);
	if (r < 0) {
		m->bops->guest_release(m->backend, mem);
		sharemap_free(g->map);
		free(g->grants);
		free(g);
	}
	return r;
}

static struct guest *guest_by_id(struct manager *m, uint64_t id)
{
	list_for_each(pos, &m->guests.order) {
		struct guest *g = list_entry(pos, struct guest, order);
		if (g->id == id)
			return g;
	}
	return NULL;
}

static struct json_object *conv_record(const struct replay_conv *c, const char *type)
{
	struct json_object *o = journal_record(type);
	if (o) {
		json_object_object_add(o, "epoch", json_object_new_uint64(c->epoch));
		json_object_object_add(o, "seq", json_object_new_uint64(c->seq));
	}
	return o;
}

/* Presumed abort, or a decided commit finished again: either way it ends here, for everyone. */
static void finish_conv(struct manager *m, struct replay_state *s, const struct replay_conv *c)
{
	struct guest *g = guest_by_id(m, c->guest_id);
	struct replay_guest *rg = replay_find_guest(s, c->guest_id);
	const char *name = rg ? rg->name : "?";
	bool commit = (c->decision == 0) != test_broken("replay-outcome");
	int outcome = commit ? GMEM_COMMITTED : GMEM_ABORTED;

	if (commit && !c->applied && g) {
		/* Idempotent: the backend step sets the same state again; the map records it. No audit: the
		 * holders of the last run are not known to this one (a kmod audit would name strangers). */
		int r = m->bops->guest_convert(m->backend, g->mem, c->ranges, c->n_ranges, c->to_private, c->zero,
					       NULL);
		if (r < 0)
			log_errno(LOG_ERR, r, "conversion %llu of '%s': backend, at replay", (unsigned long long)c->seq,
				  name);
		for (size_t i = 0; i < c->n_ranges; i++)
			(void)sharemap_set(g->map, c->ranges[i].offset / g->granule, c->ranges[i].length / g->granule,
					   c->to_private ? SHARE_PRIVATE : SHARE_SHARED);
		(void)jstate_append(m, conv_record(c, "applied"));
	}
	if (c->decision < 0) {
		struct json_object *o = conv_record(c, "decide");
		if (o)
			json_object_object_add(o, "commit", json_object_new_boolean(0));
		(void)jstate_append(m, o);
	}
	struct json_object *o = conv_record(c, "done");
	if (o)
		json_object_object_add(o, "outcome", json_object_new_string(gmem_outcome_names[outcome]));
	(void)jstate_append(m, o);
	o = conv_record(c, "outcome");
	if (o) {
		json_object_object_add(o, "guest", json_object_new_string(name));
		json_object_object_add(o, "outcome", json_object_new_string(gmem_outcome_names[outcome]));
	}
	(void)jstate_append(m, o);
	outcome_ring_add(&m->outcomes, c->epoch, c->seq, name, outcome);
	log_notice("conversion %llu (epoch %llu) of '%s' to %s, left in flight by the last gmemd: %s (%s)",
		   (unsigned long long)c->seq, (unsigned long long)c->epoch, name, c->to_private ? "private" : "shared",
		   gmem_outcome_names[outcome],
		   commit ? "its commit was decided: finished again" : "no decision was written: presumed abort");
}

int replay_restore(struct manager *m)
{
	struct replay_state s;
	struct fdstore *fds = &m->fdstore;
	int r;

	r = replay_load(m->state_fd, m->bops->name, m->cfg.recover_from_snapshot, &s);
	if (r < 0)
		return r;
	r = fdstore_collect(fds);
	if (r < 0)
		log_errno(LOG_WARNING, r, "reading the fds passed at start (LISTEN_FDS)");
	m->next_guest_id = s.next_guest_id - 1;
	m->outcomes = s.outcomes;
	if (s.rewrite) {
		/* Keep the damaged journal for a post-mortem; a fresh one starts with the snapshot below. */
		if (renameat(m->state_fd, JOURNAL_FILE, m->state_fd, JOURNAL_FILE ".damaged") < 0)
			log_errno(LOG_WARNING, -errno, "keeping the damaged journal aside");
	}
	r = journal_open(&m->journal, m->state_fd, m->bops->name, s.good_end, s.n, m->cfg.journal_compact_records);
	if (r < 0) {
		log_errno(LOG_ERR, r, "opening the journal");
		goto out;
	}
	size_t lost_before = m->n_lost;
	bool found_ident = false;
	for (size_t i = 0; i < s.n_guests; i++) {
		r = restore_guest(m, &s.guests[i], fds, &found_ident);
		if (r < 0)
			goto out;
	}
	for (size_t i = 0; i < s.n_convs; i++)
		finish_conv(m, &s, &s.convs[i]);
	/* A snapshot records what was recovered, and the module ids an older journal lacked (the next
	 * restart then checks them rather than searching by cookie). */
	if ((s.rewrite || found_ident) && (r = jstate_snapshot(m)) < 0)
		goto out;
	if (s.records)
		log_notice("replayed %llu journal records: %zu guests back, %zu lost, %zu conversions finished",
			   (unsigned long long)s.records, m->guests.count, m->n_lost - lost_before, s.n_convs);
	r = 0;
out:
	replay_state_free(&s);
	return r;
}
