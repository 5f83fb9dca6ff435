/* SPDX-License-Identifier: MIT */
/*
 * adopt: memory that outlived a gmemd, taken back (adopt.h).
 */
#include "adopt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "conversion.h"
#include "guest.h"
#include "journal-state.h"
#include "log.h"
#include "manager.h"
#include "notify.h"
#include "sharemap.h"
#include "util.h"

_printf_(4, 5) static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

struct diff_walk {
	const struct sharemap *other;
	uint64_t differ;
};

static int count_diff(uint64_t start, uint64_t len, enum share_state st, void *arg)
{
	struct diff_walk *w = arg;
	w->differ += sharemap_count_not(w->other, start, len, st);
	return 0;
}

int adopt_map(struct manager *m, const char *name, struct backend_guest *mem, uint64_t size, uint64_t granule,
	      struct sharemap *journal, struct sharemap **ret)
{
	struct conv_range *priv = NULL;
	struct sharemap *mod = NULL;
	uint64_t n = size / granule;
	size_t n_priv = 0;
	int r;

	if (!m->bops->guest_private) {
		/* Only the journal knows (memfd): it is the map. */
		if (!journal)
			return sharemap_new(n, SHARE_SHARED, ret);
		*ret = journal;
		return 0;
	}
	r = m->bops->guest_private(m->backend, mem, &priv, &n_priv);
	if (r < 0 && journal) {
		log_errno(LOG_WARNING, r, "guest '%s': reading the module's shared/private state; keeping the "
			  "journal's", name);
		*ret = journal;
		return 0;
	}
	if (r < 0)
		return r; /* an orphan: nothing else says which ranges are private */
	r = sharemap_new(n, SHARE_SHARED, &mod);
	for (size_t i = 0; r == 0 && i < n_priv; i++)
		r = sharemap_set(mod, priv[i].offset / granule, priv[i].length / granule, SHARE_PRIVATE);
	free(priv);
	if (r < 0) {
		sharemap_free(mod);
		sharemap_free(journal);
		return r;
	}
	if (journal) {
		/* They differ only where the journal missed a change the module made (a crash between the
		 * module's step and the journal's "applied" record, or a journal cut short by recovery). */
		struct diff_walk w = { .other = mod };
		sharemap_walk(journal, 0, n, count_diff, &w);
		if (w.differ)
			log_notice("guest '%s': the module's shared/private state differs from the journal's in %llu of "
				   "%llu granules; the module's is kept (it is what the kernel enforces)", name,
				   (unsigned long long)w.differ, (unsigned long long)n);
		sharemap_free(journal);
	}
	*ret = mod;
	return 0;
}

static struct guest *guest_of_module(struct manager *m, uint64_t module_id)
{
	list_for_each(pos, &m->guests.order) {
		struct guest *g = list_entry(pos, struct guest, order);
		if (g->ident.module_id == module_id)
			return g;
	}
	return NULL;
}

static int no_orphans(struct manager *m, char *err, size_t errlen)
{
	return fail(err, errlen, -EOPNOTSUPP, "the %s backend keeps no guest memory outside gmemd: it has no "
		    "orphans", m->bops->name);
}

/* The backend guest module_id if it is an orphan: -ENOENT when there is none, -EBUSY when it is ours. */
static int find_orphan(struct manager *m, uint64_t module_id, struct backend_module_guest *ret, char *err,
		       size_t errlen)
{
	size_t n = 0;
	bool more;

	if (!m->bops->module_list)
		return no_orphans(m, err, errlen);
	struct guest *g = guest_of_module(m, module_id);
	if (g)
		return fail(err, errlen, -EBUSY, "module guest %llu is guest '%s', not an orphan",
			    (unsigned long long)module_id, g->name);
	int r = m->bops->module_list(m->backend, module_id - 1, ret, 1, &n, &more);
	if (r < 0)
		return fail(err, errlen, r, "the module cannot list its guests: %s", strerror(-r));
	if (n == 0 || ret->module_id != module_id)
		return fail(err, errlen, -ENOENT, "the module holds no guest %llu", (unsigned long long)module_id);
	return 0;
}

int orphans_list(struct manager *m, uint64_t after, struct gmem_orphans_reply *r, char *err, size_t errlen)
{
	struct backend_module_guest v[64];
	bool more = true;
	size_t n;

	if (!m->bops->module_list)
		return no_orphans(m, err, errlen);
	r->orphans = calloc(GMEM_ORPHANS_PAGE, sizeof(*r->orphans));
	if (!r->orphans)
		return -ENOMEM;
	while (more) {
		int k = m->bops->module_list(m->backend, after, v, ARRAY_SIZE(v), &n, &more);
		if (k < 0)
			return fail(err, errlen, k, "the module cannot list its guests: %s", strerror(-k));
		if (n == 0)
			break;
		for (size_t i = 0; i < n; i++) {
			after = v[i].module_id;
			if (guest_of_module(m, v[i].module_id))
				continue;
			if (r->n_orphans == GMEM_ORPHANS_PAGE) {
				r->next = r->orphans[r->n_orphans - 1].id;
				return 0;
			}
			r->orphans[r->n_orphans++] = (struct gmem_wire_orphan){
				.id = v[i].module_id, .size = v[i].size, .granule = v[i].granule,
				.on_node = v[i].node >= 0, .node = v[i].node >= 0 ? (uint64_t)v[i].node : 0,
				.private_bytes = v[i].private_bytes, .holders = v[i].holders, .cookie = v[i].cookie,
			};
		}
	}
	return 0;
}

int orphan_adopt(struct manager *m, const struct gmem_adopt_args *a, struct guest **ret, char *err, size_t errlen)
{
	struct backend_module_guest o;
	struct backend_guest *mem = NULL;
	int r;

	if (!gmem_name_valid(a->name))
		return fail(err, errlen, -EINVAL, "guest names are 1..%d bytes of [A-Za-z0-9._-], not starting with "
			    "'.' or '-'", GMEM_NAME_MAX);
	if (guest_table_find(&m->guests, a->name))
		return fail(err, errlen, -EEXIST, "a guest named '%s' exists", a->name);
	if (manager_lost_find(m, a->name))
		return fail(err, errlen, -EEXIST, "a lost guest is named '%s' (gmemctl forget clears it)", a->name);
	r = find_orphan(m, a->id, &o, err, errlen);
	if (r < 0)
		return r;

	uint64_t id = m->next_guest_id + 1;
	struct backend_ident ident = { .module_id = o.module_id, .cookie = o.cookie, .base = o.base };
	r = m->bops->guest_adopt(m->backend, id, a->name, o.size, o.granule, -EBADF, &ident, &mem);
	if (r < 0)
		return fail(err, errlen, r, "the backend refused module guest %llu: %s", (unsigned long long)a->id,
			    strerror(-r));
	struct guest *g = guest_alloc(id, a->name, o.size, o.granule, (uid_t)a->owner);
	if (!g) {
		m->bops->guest_release(m->backend, mem);
		return -ENOMEM;
	}
	g->mem = mem;
	if (m->bops->guest_ident)
		m->bops->guest_ident(m->backend, mem, &g->ident);
	r = adopt_map(m, a->name, mem, o.size, o.granule, NULL, &g->map);
	if (r < 0) {
		(void)fail(err, errlen, r, "reading the module's shared/private state of module guest %llu: %s",
			   (unsigned long long)a->id, strerror(-r));
		goto out_release;
	}
	/* Recorded before it is served: a crash from here on brings it back as a journaled guest. */
	r = jstate_append(m, jstate_guest_record(m, g));
	if (r == 0)
		r = guest_table_add(&m->guests, g);
	if (r < 0) {
		(void)fail(err, errlen, r, "gmemd cannot record the guest in its journal: %s", strerror(-r));
		goto out_release;
	}
	m->next_guest_id = id;
	notify_changed(m->notify);
	log_notice("module guest %llu (cookie %llu, %llu bytes, %llu private, %u files open) adopted as guest '%s', "
		   "owner uid %llu", (unsigned long long)o.module_id, (unsigned long long)o.cookie,
		   (unsigned long long)o.size, (unsigned long long)o.private_bytes, o.holders, a->name,
		   (unsigned long long)a->owner);
	*ret = g;
	return 0;

out_release:
	/* The module keeps the memory: it is an orphan again. */
	m->bops->guest_release(m->backend, mem);
	sharemap_free(g->map);
	free(g);
	return r;
}

int orphan_destroy(struct manager *m, uint64_t id, char *err, size_t errlen)
{
	struct backend_module_guest o;
	int r = find_orphan(m, id, &o, err, errlen);
	if (r < 0)
		return r;
	/* Files an earlier gmemd handed out are open on it: an IOMMU mapping behind one of them could still
	 * reach its PFNs after they go to another guest, and gmemd cannot tell (DESIGN.md, "What the kernel
	 * can and cannot audit"). Their processes end first; then the memory goes. */
	if (o.holders)
		return fail(err, errlen, -EBUSY, "module guest %llu has %u files open in processes (a device "
			    "could still reach its memory): end those processes first", (unsigned long long)id,
			    o.holders);
	r = m->bops->module_destroy(m->backend, id);
	if (r < 0)
		return fail(err, errlen, r, "the module refused to destroy guest %llu: %s", (unsigned long long)id,
			    strerror(-r));
	notify_changed(m->notify);
	log_notice("orphan module guest %llu (cookie %llu, %llu bytes) destroyed: its memory is back in the pool",
		   (unsigned long long)id, (unsigned long long)o.cookie, (unsigned long long)o.size);
	return 0;
}
