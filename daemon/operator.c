/* SPDX-License-Identifier: MIT */
/*
 * operator: listing a guest's holders, and eviction. A holder is a connection, not a process: one
 * process may hold several, and a file handed out stays in its process after its connection ends
 * (on memfd gmemd cannot take it back), so a listing shows what gmemd knows it handed out to whom.
 */
#include "operator.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "guest.h"
#include "manager.h"
#include "util.h"

static bool holds(const struct client *c, const struct guest *g, uint64_t *files, uint64_t *attachments)
{
	*files = *attachments = 0;
	list_for_each(pos, &c->holders) {
		const struct holder *h = list_entry(pos, struct holder, client_node);
		if (h->guest == g)
			*files += h->files;
	}
	list_for_each(pos, &c->attachments) {
		const struct attachment *a = list_entry(pos, struct attachment, client_node);
		*attachments += a->guest == g;
	}
	return g->lease == c || *files || *attachments;
}

int operator_holders(struct manager *m, const struct guest *g, uint64_t after, struct gmem_holders_reply *r)
{
	r->holders = calloc(GMEM_HOLDERS_PAGE, sizeof(*r->holders));
	if (!r->holders)
		return -ENOMEM;
	/* Clients are listed in connect order, which is id order. */
	list_for_each(pos, &m->clients) {
		struct client *c = list_entry(pos, struct client, node);
		uint64_t files, atts;
		if (c->id <= after || !holds(c, g, &files, &atts))
			continue;
		if (r->n_holders == GMEM_HOLDERS_PAGE) {
			r->next = r->holders[r->n_holders - 1].client_id;
			break;
		}
		struct gmem_wire_holder *w = &r->holders[r->n_holders++];
		w->client_id = c->id;
		w->pid = (uint64_t)c->pid;
		w->uid = c->uid;
		snprintf(w->client_name, sizeof(w->client_name), "%s", c->name);
		w->role = c->role;
		w->files = files;
		w->leased = g->lease == c;
		w->attachments = atts;
		if (!atts)
			continue;
		w->ranges = calloc(MIN(atts, GMEM_HOLDER_RANGES_MAX), sizeof(*w->ranges));
		if (!w->ranges)
			return -ENOMEM;
		list_for_each(p2, &c->attachments) {
			const struct attachment *a = list_entry(p2, struct attachment, client_node);
			if (a->guest != g || w->n_ranges == GMEM_HOLDER_RANGES_MAX)
				continue;
			w->ranges[w->n_ranges++] = (struct gmem_wire_attachment){
				.id = a->id, .offset = a->offset, .length = a->length, .kind = a->kind };
		}
	}
	return 0;
}

struct client *operator_find_client(struct manager *m, uint64_t id)
{
	list_for_each(pos, &m->clients) {
		struct client *c = list_entry(pos, struct client, node);
		if (c->id == id)
			return c;
	}
	return NULL;
}

void operator_evict(struct client *c, const char *why)
{
	/* The event every client already takes as "the connection closes next", with the reason. */
	struct gmem_shutdown_event ev;
	snprintf(ev.reason, sizeof(ev.reason), "%s", why);
	client_send_event(c, GMEM_WIRE_EVENT_SHUTDOWN, &ev);
	client_kill(c, why);
}

size_t operator_revoke_files(struct client *c)
{
	size_t n = 0;
	list_for_each(pos, &c->holders)
		n += manager_holder_revoke(c->m, list_entry(pos, struct holder, client_node));
	return n;
}

size_t operator_holder_clients(struct manager *m, const struct guest *g, const struct client *except,
			       struct client **out, size_t max)
{
	size_t n = 0;
	list_for_each(pos, &m->clients) {
		struct client *c = list_entry(pos, struct client, node);
		uint64_t files, atts;
		if (c != except && holds(c, g, &files, &atts) && n < max)
			out[n++] = c;
	}
	return n;
}
