/* SPDX-License-Identifier: MIT */
/*
 * delegation: the records and tokens of delegation.h. The requests that use them are in requests.c.
 */
#include "delegation.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "guest.h"
#include "log.h"
#include "manager.h"

static void on_expire(evutil_socket_t fd, short what, void *arg)
{
	struct delegation *d = arg;
	(void)fd;
	(void)what;
	log_debug("delegation %llu of '%s' expired unredeemed", (unsigned long long)d->id, d->g->name);
	delegation_free(d);
}

int delegation_new(struct manager *m, struct client *from, struct guest *g, enum grant_kind kind, uint32_t who,
		   uint64_t offset, uint64_t length, int akind, uint64_t ttl_ms, struct delegation **ret)
{
	unsigned char rnd[GMEM_TOKEN_LEN / 2];
	struct delegation *d;

	/* The token is the only thing that stands between a guessing client and the grantee's memory. */
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return errno ? -errno : -EIO;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->expire = evtimer_new(m->base, on_expire, d);
	if (!d->expire) {
		free(d);
		return -ENOMEM;
	}
	struct timeval tv = { .tv_sec = (time_t)(ttl_ms / 1000), .tv_usec = (suseconds_t)(ttl_ms % 1000) * 1000 };
	if (evtimer_add(d->expire, &tv) < 0) {
		event_free(d->expire);
		free(d);
		return -ENOMEM;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(d->token + 2 * i, 3, "%02x", rnd[i]);
	d->id = ++m->next_delegation_id;
	d->m = m;
	d->g = g;
	d->from = from;
	d->who_kind = kind;
	d->who_id = who;
	d->offset = offset;
	d->length = length;
	d->kind = akind;
	list_add_tail(&m->delegations, &d->node);
	*ret = d;
	return 0;
}

void delegation_free(struct delegation *d)
{
	if (!d)
		return;
	if (d->at)
		d->at->delegation = NULL;
	if (d->expire)
		event_free(d->expire);
	list_del(&d->node);
	explicit_bzero(d->token, sizeof(d->token));
	free(d);
}

struct delegation *delegation_find_token(struct manager *m, const char *token)
{
	size_t len = strnlen(token, GMEM_TOKEN_LEN + 1);
	struct delegation *found = NULL;

	if (len != GMEM_TOKEN_LEN)
		return NULL;
	list_for_each(pos, &m->delegations) {
		struct delegation *d = list_entry(pos, struct delegation, node);
		unsigned char diff = 0;
		if (!d->token[0])
			continue; /* redeemed */
		/* No early exit: how long a comparison takes says nothing about how much of a token matched. */
		for (size_t i = 0; i < GMEM_TOKEN_LEN; i++)
			diff |= (unsigned char)(d->token[i] ^ token[i]);
		if (!diff)
			found = d;
	}
	return found;
}

struct delegation *delegation_find(struct manager *m, uint64_t id)
{
	list_for_each(pos, &m->delegations) {
		struct delegation *d = list_entry(pos, struct delegation, node);
		if (d->id == id)
			return d;
	}
	return NULL;
}

unsigned delegation_count_pending(struct manager *m, const struct client *from)
{
	unsigned n = 0;
	list_for_each(pos, &m->delegations) {
		struct delegation *d = list_entry(pos, struct delegation, node);
		n += d->token[0] && d->from == from;
	}
	return n;
}

unsigned delegation_count_guest(struct manager *m, const struct guest *g)
{
	unsigned n = 0;
	list_for_each(pos, &m->delegations)
		n += list_entry(pos, struct delegation, node)->g == g;
	return n;
}

void delegation_client_gone(struct manager *m, struct client *c)
{
	list_for_each_safe(pos, &m->delegations) {
		struct delegation *d = list_entry(pos, struct delegation, node);
		if (d->from != c)
			continue;
		if (d->token[0])
			delegation_free(d);
		else
			d->from = NULL;
	}
}

void delegation_guest_gone(struct manager *m, struct guest *g)
{
	list_for_each_safe(pos, &m->delegations) {
		struct delegation *d = list_entry(pos, struct delegation, node);
		if (d->g == g)
			delegation_free(d);
	}
}
