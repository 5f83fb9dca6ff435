/* SPDX-License-Identifier: MIT */
#include "audit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "guest.h"
#include "log.h"
#include "manager.h"

static struct client *client_by_id(struct manager *m, uint64_t id)
{
	list_for_each(pos, &m->clients) {
		struct client *c = list_entry(pos, struct client, node);
		if (c->id == id)
			return c;
	}
	return NULL;
}

/*
 * The lease holder's whole-guest mapping is how KVM sees guest memory: it must stay and fault. A file
 * an earlier gmemd made (before a restart) names no client of this run: its mapping is the lease
 * holder's only where it lives in the lease holder's own process — a VMM that came back after the
 * restart still maps its old file. A live mapping's mapper pid cannot have been reused (its process is
 * alive), and fork does not carry these mappings (VM_DONTCOPY).
 */
static bool exempt(const struct guest *g, const struct backend_audit_hit *h)
{
	if (!g->lease)
		return false;
	return h->foreign ? h->mapper_pid == g->lease->pid : h->tag == g->lease->id;
}

/* Whether an earlier entry revoked this file already. An exempt mapping does not count: the same old
 * file mapped in another process too is revoked (revocation is per file: the lease holder's mapping of
 * it goes as well, which safety requires). */
static bool seen(const struct guest *g, const struct backend_audit *a, size_t upto, uint64_t holder_id)
{
	for (size_t i = 0; i < upto; i++)
		if (a->hits[i].holder_id == holder_id && !exempt(g, &a->hits[i]))
			return true;
	return false;
}

size_t audit_enforce(struct manager *m, struct guest *g, uint64_t seq, const struct backend_audit *a,
		     struct gmem_wire_party *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < a->n; i++) {
		const struct backend_audit_hit *h = &a->hits[i];
		if (exempt(g, h))
			continue;
		if (seen(g, a, i, h->holder_id)) /* one file, several mappings: revoked and named once */
			continue;
		int r = m->bops->holder_revoke ? m->bops->holder_revoke(m->backend, g->mem, h->holder_id) : -EOPNOTSUPP;
		struct client *c = h->foreign ? NULL : client_by_id(m, h->tag);
		char whose[64];
		if (h->foreign)
			snprintf(whose, sizeof(whose), "a client of an earlier gmemd");
		else
			snprintf(whose, sizeof(whose), "client %llu", (unsigned long long)h->tag);
		log_warning("conversion %llu of '%s': file %llu of %s (pid %d) is still mapped by pid %d at "
			    "[%#llx, +%#llx) after the to-private commit: %s", (unsigned long long)seq, g->name,
			    (unsigned long long)h->holder_id, whose, (int)h->owner_pid, (int)h->mapper_pid,
			    (unsigned long long)h->offset, (unsigned long long)h->length,
			    r == 0 ? "revoked for good" : "could not be revoked");
		if (r < 0)
			log_errno(LOG_CRIT, r, "conversion %llu of '%s': revoking file %llu", (unsigned long long)seq,
				  g->name, (unsigned long long)h->holder_id);
		if (n < max) {
			struct gmem_wire_party *w = &out[n++];
			w->client_id = h->tag;
			w->pid = (uint64_t)(h->mapper_pid > 0 ? h->mapper_pid : h->owner_pid);
			snprintf(w->client_name, sizeof(w->client_name), "%s", c ? c->name : "");
		}
	}
	return n;
}

int audit_client_files(struct client *c, struct guest *g, uint64_t **ids, size_t *n)
{
	*ids = NULL;
	*n = 0;
	list_for_each(pos, &c->holders) {
		struct holder *h = list_entry(pos, struct holder, client_node);
		if (h->guest != g || !h->n_file_ids)
			continue;
		*ids = malloc(h->n_file_ids * sizeof(**ids));
		if (!*ids)
			return -ENOMEM;
		memcpy(*ids, h->file_ids, h->n_file_ids * sizeof(**ids));
		*n = h->n_file_ids;
		break; /* one holder record per client and guest */
	}
	return 0;
}

void audit_revoke_files(struct manager *m, struct guest *g, uint64_t seq, uint64_t client_id, pid_t pid,
			const uint64_t *ids, size_t n)
{
	if (!m->bops->holder_revoke)
		return;
	for (size_t i = 0; i < n; i++) {
		int r = m->bops->holder_revoke(m->backend, g->mem, ids[i]);
		log_warning("conversion %llu of '%s': client %llu (pid %d) voted yes and left before acking: its "
			    "file %llu %s", (unsigned long long)seq, g->name, (unsigned long long)client_id, (int)pid,
			    (unsigned long long)ids[i], r == 0 ? "is revoked for good" : "could not be revoked");
	}
}
