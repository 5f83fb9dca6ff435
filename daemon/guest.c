/* SPDX-License-Identifier: MIT */
/*
 * guest: the name table (chained hash, doubled when the load passes 1) and range checks.
 */
#include "guest.h"

#include "delegation.h"

#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash_name(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a: names are short and not adversarial to a chain */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

int guest_table_init(struct guest_table *t)
{
	t->n_buckets = 64;
	t->count = 0;
	t->buckets = calloc(t->n_buckets, sizeof(*t->buckets));
	list_init(&t->order);
	return t->buckets ? 0 : -ENOMEM;
}

void guest_table_deinit(struct guest_table *t)
{
	free(t->buckets);
	t->buckets = NULL;
	t->n_buckets = t->count = 0;
}

struct guest *guest_table_find(const struct guest_table *t, const char *name)
{
	for (struct guest *g = t->buckets[hash_name(name) & (t->n_buckets - 1)]; g; g = g->hash_next)
		if (strcmp(g->name, name) == 0)
			return g;
	return NULL;
}

static int grow(struct guest_table *t)
{
	size_t n = t->n_buckets * 2;
	struct guest **b = calloc(n, sizeof(*b));
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < t->n_buckets; i++) {
		for (struct guest *g = t->buckets[i], *next; g; g = next) {
			next = g->hash_next;
			size_t k = hash_name(g->name) & (n - 1);
			g->hash_next = b[k];
			b[k] = g;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->n_buckets = n;
	return 0;
}

int guest_table_add(struct guest_table *t, struct guest *g)
{
	if (guest_table_find(t, g->name))
		return -EEXIST;
	/* A failed grow only costs longer chains; the add itself still succeeds. */
	if (t->count >= t->n_buckets)
		(void)grow(t);
	size_t k = hash_name(g->name) & (t->n_buckets - 1);
	g->hash_next = t->buckets[k];
	t->buckets[k] = g;
	list_add_tail(&t->order, &g->order);
	t->count++;
	return 0;
}

void guest_table_remove(struct guest_table *t, struct guest *g)
{
	struct guest **p = &t->buckets[hash_name(g->name) & (t->n_buckets - 1)];
	for (; *p; p = &(*p)->hash_next)
		if (*p == g) {
			*p = g->hash_next;
			g->hash_next = NULL;
			list_del(&g->order);
			t->count--;
			return;
		}
}

struct guest *guest_table_next(const struct guest_table *t, uint64_t after)
{
	/* Ids grow along the list, so a page is a walk from the front; lists are paged by the client, a
	 * few hundred guests per request, which keeps this linear walk cheap next to the message itself. */
	list_for_each(pos, &t->order) {
		struct guest *g = list_entry(pos, struct guest, order);
		if (g->id > after)
			return g;
	}
	return NULL;
}

void attachment_free(struct attachment *a)
{
	/* A redeemed delegation lives as long as its attachment, however the attachment ends. */
	if (a->delegation) {
		a->delegation->at = NULL;
		delegation_free(a->delegation);
	}
	list_del(&a->client_node);
	list_del(&a->guest_node);
	a->guest->n_attachments--;
	a->client->n_attachments--;
	free(a);
}

int guest_check_range(const struct guest *g, uint64_t off, uint64_t len)
{
	if (len == 0 || off % g->granule || len % g->granule)
		return -EINVAL;
	if (off > g->size || len > g->size - off)
		return -ERANGE;
	return 0;
}

struct guest *guest_alloc(uint64_t id, const char *name, uint64_t size, uint64_t granule, uid_t owner)
{
	struct guest *g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->id = id;
	snprintf(g->name, sizeof(g->name), "%s", name);
	g->size = size;
	g->granule = granule;
	g->owner = owner;
	list_init(&g->conversions);
	list_init(&g->attachments);
	list_init(&g->pid_attachments);
	list_init(&g->holders);
	list_init(&g->order);
	return g;
}
