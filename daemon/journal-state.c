/* SPDX-License-Identifier: MIT */
/*
 * journal-state: gmemd's records (journal-state.h).
 */
#include "journal-state.h"

#include <errno.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "conversion.h"
#include "guest.h"
#include "journal.h"
#include "log.h"
#include "manager.h"
#include "sharemap.h"

int jstate_append(struct manager *m, struct json_object *rec)
{
	if (!rec)
		return log_errno(LOG_ERR, -ENOMEM, "journal: building a record");
	int r = journal_append(&m->journal, rec);
	json_object_put(rec);
	if (r < 0)
		return log_errno(LOG_ERR, r, "journal: appending a record");
	/* Compaction runs on its own loop iteration: never inside a conversion step or a request. */
	if (journal_want_snapshot(&m->journal) && m->compact_ev)
		event_active(m->compact_ev, EV_TIMEOUT, 0);
	return 0;
}

struct json_object *jstate_ranges(const struct conv_range *r, size_t n)
{
	struct json_object *a = json_object_new_array_ext((int)n);
	for (size_t i = 0; a && i < n; i++) {
		struct json_object *p = json_object_new_array_ext(2);
		json_object_array_add(p, json_object_new_uint64(r[i].offset));
		json_object_array_add(p, json_object_new_uint64(r[i].length));
		json_object_array_add(a, p);
	}
	return a;
}

struct priv_walk {
	struct json_object *a;
	uint64_t granule;
};

static int add_private(uint64_t start, uint64_t len, enum share_state st, void *arg)
{
	struct priv_walk *w = arg;
	if (st != SHARE_PRIVATE)
		return 0;
	struct json_object *p = json_object_new_array_ext(2);
	json_object_array_add(p, json_object_new_uint64(start * w->granule));
	json_object_array_add(p, json_object_new_uint64(len * w->granule));
	json_object_array_add(w->a, p);
	return 0;
}

static void add_common(struct json_object *o, uint64_t id, const char *name, uint64_t size, uint64_t granule,
		       uid_t owner)
{
	json_object_object_add(o, "id", json_object_new_uint64(id));
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "size", json_object_new_uint64(size));
	json_object_object_add(o, "granule", json_object_new_uint64(granule));
	json_object_object_add(o, "owner", json_object_new_uint64(owner));
}

struct json_object *jstate_guest_record(struct manager *m, const struct guest *g)
{
	struct json_object *o = journal_record("guest");
	if (!o)
		return NULL;
	add_common(o, g->id, g->name, g->size, g->granule, g->owner);
	json_object_object_add(o, "dev", json_object_new_uint64(g->dev));
	json_object_object_add(o, "ino", json_object_new_uint64(g->ino));
	if (g->ident.module_id) {
		json_object_object_add(o, "kid", json_object_new_uint64(g->ident.module_id));
		json_object_object_add(o, "kcookie", json_object_new_uint64(g->ident.cookie));
		json_object_object_add(o, "kbase", json_object_new_uint64(g->ident.base));
	}
	uint64_t n = g->size / g->granule;
	if (sharemap_count_not(g->map, 0, n, SHARE_SHARED)) {
		struct priv_walk w = { .a = json_object_new_array(), .granule = g->granule };
		sharemap_walk(g->map, 0, n, add_private, &w);
		json_object_object_add(o, "private", w.a);
	}
	if (g->n_grants) {
		struct json_object *a = json_object_new_array();
		for (size_t i = 0; i < g->n_grants; i++) {
			struct json_object *e = json_object_new_object();
			json_object_object_add(e, "kind", json_object_new_string(g->grants[i].kind == GRANT_GID ? "gid" : "uid"));
			json_object_object_add(e, "who", json_object_new_uint64(g->grants[i].id));
			json_object_object_add(e, "role", json_object_new_string(gmem_role_names[g->grants[i].role]));
			json_object_array_add(a, e);
		}
		json_object_object_add(o, "grants", a);
	}
	(void)m;
	return o;
}

struct json_object *jstate_lost_record(const struct lost_guest *l)
{
	struct json_object *o = journal_record("guest");
	if (!o)
		return NULL;
	add_common(o, l->id, l->name, l->size, l->granule, l->owner);
	json_object_object_add(o, "lost", json_object_new_boolean(1));
	return o;
}

void jstate_destroy(struct manager *m, uint64_t id)
{
	struct json_object *o = journal_record("destroy");
	if (o)
		json_object_object_add(o, "id", json_object_new_uint64(id));
	(void)jstate_append(m, o);
}

int jstate_grant(struct manager *m, uint64_t guest_id, const struct grant *gr, bool grant)
{
	struct json_object *o = journal_record(grant ? "grant" : "revoke");
	if (o) {
		json_object_object_add(o, "id", json_object_new_uint64(guest_id));
		json_object_object_add(o, "kind", json_object_new_string(gr->kind == GRANT_GID ? "gid" : "uid"));
		json_object_object_add(o, "who", json_object_new_uint64(gr->id));
		json_object_object_add(o, "role", json_object_new_string(gmem_role_names[gr->role]));
	}
	return jstate_append(m, o);
}

int jstate_snapshot(struct manager *m)
{
	struct journal *j = &m->journal;

	journal_snapshot_begin(j, m->next_guest_id + 1);
	list_for_each(pos, &m->guests.order) {
		struct json_object *o = jstate_guest_record(m, list_entry(pos, struct guest, order));
		journal_snapshot_add(j, o);
		json_object_put(o);
	}
	list_for_each(pos, &m->lost) {
		struct json_object *o = jstate_lost_record(list_entry(pos, struct lost_guest, node));
		journal_snapshot_add(j, o);
		json_object_put(o);
	}
	for (size_t k = 0; k < m->outcomes.n; k++) {
		const struct replay_outcome *oc = &m->outcomes.v[(m->outcomes.head + k) % REPLAY_OUTCOMES_MAX];
		struct json_object *o = journal_record("outcome");
		if (o) {
			json_object_object_add(o, "epoch", json_object_new_uint64(oc->epoch));
			json_object_object_add(o, "seq", json_object_new_uint64(oc->seq));
			json_object_object_add(o, "guest", json_object_new_string(oc->guest));
			json_object_object_add(o, "outcome", json_object_new_string(gmem_outcome_names[oc->outcome]));
		}
		journal_snapshot_add(j, o);
		json_object_put(o);
	}
	/* Conversions in flight, as far as they got: a crash right after the snapshot must still find
	 * their begin and decision. */
	conversion_snapshot(m, j);
	int r = journal_snapshot_commit(j);
	if (r < 0)
		return log_errno(LOG_ERR, r, "journal: writing a snapshot (the journal keeps growing)");
	log_info("journal: compacted into %s", SNAPSHOT_FILE);
	return 0;
}
