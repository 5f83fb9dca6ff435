/* SPDX-License-Identifier: MIT */
/*
 * ops: one public function per protocol op, each a thin mapping between the public structs of gmem.h
 * and the wire structs of gmem-proto.h (kept apart so the wire can grow without breaking the ABI).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "util.h"

#define GMEM_EXPORT __attribute__((visibility("default")))

/* Names are checked here too, so a bad one fails fast with -EINVAL instead of a round trip. */
static int copy_name(char *dst, size_t size, const char *name)
{
	if (!name || !gmem_name_valid(name))
		return -EINVAL;
	snprintf(dst, size, "%s", name);
	return 0;
}

static void to_info(const struct gmem_wire_guest *w, struct gmem_guest_info *i)
{
	memset(i, 0, sizeof(*i));
	i->id = w->id;
	snprintf(i->name, sizeof(i->name), "%s", w->name);
	i->size = w->size;
	i->granule = w->granule;
	i->owner_uid = (uint32_t)w->owner;
	i->touched = w->touched;
	i->holders = w->holders;
	i->attachments = w->attachments;
	i->leased = w->leased;
}

GMEM_EXPORT int gmem_status(struct gmem_client *c, struct gmem_status *ret)
{
	struct gmem_status_args a = { 0 };
	struct gmem_status_reply r = { 0 };
	int e = gmem_call(c, GMEM_OP_STATUS, &a, &r, NULL);
	if (e < 0)
		return e;
	memset(ret, 0, sizeof(*ret));
	snprintf(ret->server, sizeof(ret->server), "%s", r.server);
	snprintf(ret->backend, sizeof(ret->backend), "%s", r.backend);
	ret->enforcing = r.enforcing;
	ret->pool_size = r.pool_size;
	ret->pool_used = r.pool_used;
	ret->touched = r.touched;
	ret->guests = r.guests;
	ret->clients = r.clients;
	return 0;
}

GMEM_EXPORT int gmem_guest_create_ex(struct gmem_client *c, const char *name, uint64_t size, uint64_t granule,
				     unsigned flags, struct gmem_guest_info *ret)
{
	struct gmem_create_args a = { .size = size, .granule = granule, .ephemeral = flags & GMEM_CREATE_EPHEMERAL };
	struct gmem_wire_guest r = { 0 };
	int e = copy_name(a.name, sizeof(a.name), name);
	if (e < 0 || (flags & ~(unsigned)GMEM_CREATE_EPHEMERAL))
		return -EINVAL;
	/* An older gmemd would refuse the unknown key anyway; say why without the round trip. */
	if (a.ephemeral && !(c->features & GMEM_FEATURE_EPHEMERAL)) {
		snprintf(c->err, sizeof(c->err), "this gmemd (%s) has no ephemeral guests", c->server);
		return -EOPNOTSUPP;
	}
	e = gmem_call(c, GMEM_OP_CREATE, &a, &r, NULL);
	if (e == 0 && ret)
		to_info(&r, ret);
	return e;
}

GMEM_EXPORT int gmem_guest_create(struct gmem_client *c, const char *name, uint64_t size, uint64_t granule,
				  struct gmem_guest_info *ret)
{
	return gmem_guest_create_ex(c, name, size, granule, 0, ret);
}

static int guest_op(struct gmem_client *c, enum gmem_op op, const char *name)
{
	struct gmem_guest_args a;
	struct gmem_empty_reply r;
	int e = copy_name(a.name, sizeof(a.name), name);
	return e < 0 ? e : gmem_call(c, op, &a, &r, NULL);
}

static int need_operator(struct gmem_client *c)
{
	if (c->features & GMEM_FEATURE_OPERATOR)
		return 0;
	snprintf(c->err, sizeof(c->err), "this gmemd (%s) has no operator controls", c->server);
	return -EOPNOTSUPP;
}

GMEM_EXPORT int gmem_guest_destroy_ex(struct gmem_client *c, const char *name, unsigned flags)
{
	struct gmem_destroy_args a = { .force = flags & GMEM_DESTROY_FORCE };
	struct gmem_empty_reply r;
	int e = copy_name(a.name, sizeof(a.name), name);
	if (e < 0 || (flags & ~(unsigned)GMEM_DESTROY_FORCE))
		return -EINVAL;
	if (a.force && (e = need_operator(c)) < 0)
		return e;
	return gmem_call(c, GMEM_OP_DESTROY, &a, &r, NULL);
}

GMEM_EXPORT int gmem_guest_destroy(struct gmem_client *c, const char *name)
{
	return gmem_guest_destroy_ex(c, name, 0);
}

GMEM_EXPORT int gmem_holders(struct gmem_client *c, const char *name, struct gmem_holder_info **ret, size_t *ret_n)
{
	struct gmem_holder_info *all = NULL;
	size_t n = 0;
	uint64_t after = 0;
	int e = need_operator(c);
	if (e < 0)
		return e;
	do {
		struct gmem_holders_args a = { .after = after };
		struct gmem_holders_reply r = { 0 };
		if ((e = copy_name(a.name, sizeof(a.name), name)) < 0 ||
		    (e = gmem_call(c, GMEM_OP_HOLDERS, &a, &r, NULL)) < 0) {
			free(all);
			return e;
		}
		struct gmem_holder_info *grown = realloc(all, (n + r.n_holders + 1) * sizeof(*all));
		if (!grown) {
			gmem_fields_release(gmem_holders_reply_fields, &r);
			free(all);
			return -ENOMEM;
		}
		all = grown;
		for (size_t i = 0; i < r.n_holders; i++) {
			const struct gmem_wire_holder *w = &r.holders[i];
			struct gmem_holder_info *h = &all[n++];
			memset(h, 0, sizeof(*h));
			h->client_id = w->client_id;
			h->pid = (uint32_t)w->pid;
			h->uid = (uint32_t)w->uid;
			snprintf(h->client_name, sizeof(h->client_name), "%s", w->client_name);
			h->role = (enum gmem_role)w->role;
			h->files = w->files;
			h->leased = w->leased;
			h->attachments = w->attachments;
			for (size_t k = 0; k < w->n_ranges && k < GMEM_HOLDER_RANGES; k++) {
				h->ranges[k].id = w->ranges[k].id;
				h->ranges[k].offset = w->ranges[k].offset;
				h->ranges[k].length = w->ranges[k].length;
				h->ranges[k].kind = (enum gmem_attach_kind)w->ranges[k].kind;
				h->n_ranges++;
			}
		}
		/* Ids only grow, so paging by id never repeats a holder. */
		after = r.next;
		gmem_fields_release(gmem_holders_reply_fields, &r);
	} while (after);
	*ret = all;
	*ret_n = n;
	return 0;
}

GMEM_EXPORT int gmem_cancel(struct gmem_client *c, uint64_t epoch, uint64_t seq)
{
	struct gmem_cancel_args a = { .epoch = epoch, .seq = seq };
	struct gmem_empty_reply r;
	int e = need_operator(c);
	return e < 0 ? e : gmem_call(c, GMEM_OP_CANCEL, &a, &r, NULL);
}

GMEM_EXPORT int gmem_evict(struct gmem_client *c, uint64_t client_id)
{
	struct gmem_evict_args a = { .client_id = client_id };
	struct gmem_empty_reply r;
	int e = need_operator(c);
	return e < 0 ? e : gmem_call(c, GMEM_OP_EVICT, &a, &r, NULL);
}

GMEM_EXPORT int gmem_lease(struct gmem_client *c, const char *name)
{
	return guest_op(c, GMEM_OP_LEASE, name);
}

GMEM_EXPORT int gmem_release(struct gmem_client *c, const char *name)
{
	return guest_op(c, GMEM_OP_RELEASE, name);
}

GMEM_EXPORT int gmem_guest_list(struct gmem_client *c, struct gmem_guest_info **ret, size_t *ret_n)
{
	struct gmem_guest_info *all = NULL;
	size_t n = 0;
	uint64_t after = 0;

	/* Pages keep every reply under the datagram limit; ids only grow, so paging by id never repeats. */
	do {
		struct gmem_list_args a = { .after = after };
		struct gmem_list_reply r = { 0 };
		int e = gmem_call(c, GMEM_OP_LIST, &a, &r, NULL);
		if (e < 0) {
			free(all);
			return e;
		}
		struct gmem_guest_info *grown = realloc(all, (n + r.n_guests + 1) * sizeof(*all));
		if (!grown) {
			gmem_fields_release(gmem_list_reply_fields, &r);
			free(all);
			return -ENOMEM;
		}
		all = grown;
		for (size_t i = 0; i < r.n_guests; i++)
			to_info(&r.guests[i], &all[n++]);
		after = r.next;
		gmem_fields_release(gmem_list_reply_fields, &r);
	} while (after);
	*ret = all;
	*ret_n = n;
	return 0;
}

GMEM_EXPORT int gmem_guest_open(struct gmem_client *c, const char *name, int *ret_fd,
				struct gmem_guest_info *ret_info)
{
	struct gmem_guest_args a;
	struct gmem_open_reply r = { 0 };
	int fd = -EBADF;
	int e = copy_name(a.name, sizeof(a.name), name);
	if (e < 0)
		return e;
	e = gmem_call(c, GMEM_OP_OPEN, &a, &r, &fd);
	if (e < 0)
		return e;
	if (ret_info)
		to_info(&r.guest, ret_info);
	*ret_fd = fd;
	return 0;
}

GMEM_EXPORT int gmem_attach(struct gmem_client *c, const char *name, uint64_t offset, uint64_t length,
			    enum gmem_attach_kind kind, uint64_t *ret_id)
{
	struct gmem_attach_args a = { .offset = offset, .length = length, .kind = (int)kind };
	struct gmem_attach_reply r = { 0 };
	if ((unsigned)kind > GMEM_ATTACH_KVM)
		return -EINVAL;
	int e = copy_name(a.name, sizeof(a.name), name);
	if (e < 0)
		return e;
	e = gmem_call(c, GMEM_OP_ATTACH, &a, &r, NULL);
	if (e == 0 && ret_id)
		*ret_id = r.id;
	return e;
}

static int grant_op(struct gmem_client *c, enum gmem_op op, const char *name, const char *who, enum gmem_role role)
{
	struct gmem_grant_args a = { .role = (int)role };
	struct gmem_empty_reply r;
	int e = copy_name(a.name, sizeof(a.name), name);
	if (e < 0 || !who || strlen(who) >= sizeof(a.who) || (role != GMEM_ROLE_DEVICE && role != GMEM_ROLE_VMM))
		return -EINVAL;
	snprintf(a.who, sizeof(a.who), "%s", who);
	return gmem_call(c, op, &a, &r, NULL);
}

GMEM_EXPORT int gmem_grant(struct gmem_client *c, const char *name, const char *who, enum gmem_role role)
{
	return grant_op(c, GMEM_OP_GRANT, name, who, role);
}

GMEM_EXPORT int gmem_revoke(struct gmem_client *c, const char *name, const char *who, enum gmem_role role)
{
	return grant_op(c, GMEM_OP_REVOKE, name, who, role);
}

GMEM_EXPORT int gmem_detach(struct gmem_client *c, uint64_t id)
{
	struct gmem_detach_args a = { .id = id };
	struct gmem_empty_reply r;
	return gmem_call(c, GMEM_OP_DETACH, &a, &r, NULL);
}

GMEM_EXPORT int gmem_stats(struct gmem_client *c, struct gmem_guest_stats **ret, size_t *ret_n, uint64_t *quarantined)
{
	struct gmem_guest_stats *all = NULL;
	size_t n = 0;
	uint64_t after = 0, q = 0;

	if (!(c->features & GMEM_FEATURE_STATS)) {
		snprintf(c->err, sizeof(c->err), "this gmemd (%s) keeps no statistics", c->server);
		return -EOPNOTSUPP;
	}
	do {
		struct gmem_list_args a = { .after = after };
		struct gmem_stats_reply r = { 0 };
		int e = gmem_call(c, GMEM_OP_STATS, &a, &r, NULL);
		if (e < 0) {
			free(all);
			return e;
		}
		struct gmem_guest_stats *grown = realloc(all, (n + r.n_guests + 1) * sizeof(*all));
		if (!grown) {
			gmem_fields_release(gmem_stats_reply_fields, &r);
			free(all);
			return -ENOMEM;
		}
		all = grown;
		for (size_t i = 0; i < r.n_guests; i++) {
			const struct gmem_wire_guest_stats *w = &r.guests[i];
			struct gmem_guest_stats *s = &all[n++];
			memset(s, 0, sizeof(*s));
			s->id = w->id;
			snprintf(s->name, sizeof(s->name), "%s", w->name);
			s->conversions = w->conversions;
			s->committed = w->committed;
			s->aborted = w->aborted;
			s->unverified = w->unverified;
			s->queued = w->queued;
			s->window = w->window;
			s->p50_us = w->p50_us;
			s->p99_us = w->p99_us;
			s->quarantined_bytes = w->quarantined_bytes;
			s->slowest.client_id = w->slowest_client_id;
			s->slowest.pid = (uint32_t)w->slowest_pid;
			snprintf(s->slowest.client_name, sizeof(s->slowest.client_name), "%s", w->slowest_name);
			s->slowest.vote_us = w->slowest_vote_us;
		}
		q = r.quarantined_bytes;
		after = r.next;
		gmem_fields_release(gmem_stats_reply_fields, &r);
	} while (after);
	*ret = all;
	*ret_n = n;
	if (quarantined)
		*quarantined = q;
	return 0;
}
