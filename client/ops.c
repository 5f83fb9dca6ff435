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
	i->delegations = w->delegations;
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
	/* The reply's quarantine records are gmem_quarantine_list's business. */
	gmem_fields_release(gmem_status_reply_fields, &r);
	return 0;
}

static void copy_quarantine(struct gmem_quarantine_info *o, const struct gmem_wire_quarantine *w)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->guest, sizeof(o->guest), "%s", w->guest);
	o->destroyed = w->destroyed;
	o->offset = w->offset;
	o->length = w->length;
	o->seq = w->seq;
	o->client_id = w->client_id;
	o->pid = (uint32_t)w->pid;
	snprintf(o->client_name, sizeof(o->client_name), "%s", w->client_name);
}

GMEM_EXPORT int gmem_quarantine_list(struct gmem_client *c, const char *name, struct gmem_quarantine_info **ret,
				     size_t *ret_n, uint64_t *ret_bytes)
{
	struct gmem_status_reply sr = { 0 };
	struct gmem_map_reply mr = { 0 };
	const struct gmem_wire_quarantine *w;
	size_t n;
	uint64_t bytes;
	int e;

	/* The status reply lists them over the pool; the map reply counts one guest's bytes. */
	struct gmem_status_args sa = { 0 };
	e = gmem_call(c, GMEM_OP_STATUS, &sa, &sr, NULL);
	if (e < 0)
		return e;
	w = sr.quarantine, n = 0, bytes = sr.quarantined;
	if (name) {
		struct gmem_map_args a = { 0 };
		e = copy_name(a.name, sizeof(a.name), name);
		if (e == 0)
			e = gmem_call(c, GMEM_OP_MAP, &a, &mr, NULL);
		bytes = mr.quarantined_bytes;
	}
	if (e < 0)
		goto out_release;
	for (size_t i = 0; i < sr.n_quarantine; i++)
		n += !name || (!w[i].destroyed && strcmp(w[i].guest, name) == 0);
	struct gmem_quarantine_info *out = NULL;
	if (n) {
		out = calloc(n, sizeof(*out));
		if (!out) {
			e = -ENOMEM;
			goto out_release;
		}
		size_t k = 0;
		for (size_t i = 0; i < sr.n_quarantine; i++)
			if (!name || (!w[i].destroyed && strcmp(w[i].guest, name) == 0))
				copy_quarantine(&out[k++], &w[i]);
	}
	*ret = out;
	*ret_n = n;
	if (ret_bytes)
		*ret_bytes = bytes;
out_release:
	gmem_fields_release(gmem_map_reply_fields, &mr);
	gmem_fields_release(gmem_status_reply_fields, &sr);
	return e;
}

GMEM_EXPORT int gmem_pool_nodes(struct gmem_client *c, struct gmem_node_info **ret, size_t *ret_n)
{
	struct gmem_status_args a = { 0 };
	struct gmem_status_reply r = { 0 };
	int e = gmem_call(c, GMEM_OP_STATUS, &a, &r, NULL);
	if (e < 0)
		return e;
	*ret = calloc(r.n_nodes ? r.n_nodes : 1, sizeof(**ret));
	if (!*ret) {
		gmem_fields_release(gmem_status_reply_fields, &r);
		return -ENOMEM;
	}
	for (size_t i = 0; i < r.n_nodes; i++)
		(*ret)[i] = (struct gmem_node_info){ .node = (unsigned)r.nodes[i].node, .total = r.nodes[i].total,
						     .free = r.nodes[i].free };
	*ret_n = r.n_nodes;
	gmem_fields_release(gmem_status_reply_fields, &r);
	return 0;
}

static int create(struct gmem_client *c, const char *name, uint64_t size, uint64_t granule, unsigned flags,
		  bool on_node, unsigned node, struct gmem_guest_info *ret)
{
	struct gmem_create_args a = { .size = size, .granule = granule, .on_node = on_node, .node = node,
				      .ephemeral = flags & GMEM_CREATE_EPHEMERAL };
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
	return create(c, name, size, granule, 0, false, 0, ret);
}

GMEM_EXPORT int gmem_guest_create_ex(struct gmem_client *c, const char *name, uint64_t size, uint64_t granule,
				     unsigned flags, struct gmem_guest_info *ret)
{
	return create(c, name, size, granule, flags, false, 0, ret);
}

GMEM_EXPORT int gmem_guest_create_on_node(struct gmem_client *c, const char *name, uint64_t size, uint64_t granule,
					  unsigned node, struct gmem_guest_info *ret)
{
	if (node > GMEM_NODE_MAX)
		return -EINVAL;
	return create(c, name, size, granule, 0, true, node, ret);
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
	e = gmem_call(c, GMEM_OP_DESTROY, &a, &r, NULL);
	if (e == 0)
		rc_guest_gone(c, name); /* reconnect must not attach it again */
	return e;
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
	int e = guest_op(c, GMEM_OP_LEASE, name);
	if (e == 0)
		rc_lease_changed(c, name, true);
	return e;
}

GMEM_EXPORT int gmem_release(struct gmem_client *c, const char *name)
{
	int e = guest_op(c, GMEM_OP_RELEASE, name);
	if (e == 0)
		rc_lease_changed(c, name, false);
	return e;
}

static int list_pages(struct gmem_client *c, enum gmem_op op, struct gmem_guest_info **ret, size_t *ret_n);

GMEM_EXPORT int gmem_guest_list(struct gmem_client *c, struct gmem_guest_info **ret, size_t *ret_n)
{
	return list_pages(c, GMEM_OP_LIST, ret, ret_n);
}

GMEM_EXPORT int gmem_guest_list_lost(struct gmem_client *c, struct gmem_guest_info **ret, size_t *ret_n)
{
	return list_pages(c, GMEM_OP_LIST_LOST, ret, ret_n);
}

GMEM_EXPORT int gmem_guest_forget(struct gmem_client *c, const char *name)
{
	return guest_op(c, GMEM_OP_FORGET, name);
}

static int need_orphans(struct gmem_client *c)
{
	if (c->features & GMEM_FEATURE_ORPHANS)
		return 0;
	snprintf(c->err, sizeof(c->err), "this gmemd (%s) cannot list or adopt orphans", c->server);
	return -EOPNOTSUPP;
}

GMEM_EXPORT int gmem_orphan_list(struct gmem_client *c, struct gmem_orphan_info **ret, size_t *ret_n)
{
	struct gmem_orphan_info *all = NULL;
	size_t n = 0;
	uint64_t after = 0;
	int e = need_orphans(c);
	if (e < 0)
		return e;
	/* Module ids only grow: paging by id never repeats an orphan. */
	do {
		struct gmem_list_args a = { .after = after };
		struct gmem_orphans_reply r = { 0 };
		e = gmem_call(c, GMEM_OP_LIST_ORPHANS, &a, &r, NULL);
		if (e < 0) {
			free(all);
			return e;
		}
		struct gmem_orphan_info *grown = realloc(all, (n + r.n_orphans + 1) * sizeof(*all));
		if (!grown) {
			gmem_fields_release(gmem_orphans_reply_fields, &r);
			free(all);
			return -ENOMEM;
		}
		all = grown;
		for (size_t i = 0; i < r.n_orphans; i++) {
			const struct gmem_wire_orphan *w = &r.orphans[i];
			all[n++] = (struct gmem_orphan_info){
				.id = w->id, .size = w->size, .granule = w->granule,
				.node = w->on_node ? (int)w->node : -1, .private_bytes = w->private_bytes,
				.holders = w->holders, .cookie = w->cookie,
			};
		}
		after = r.next;
		gmem_fields_release(gmem_orphans_reply_fields, &r);
	} while (after);
	*ret = all;
	*ret_n = n;
	return 0;
}

GMEM_EXPORT int gmem_orphan_adopt(struct gmem_client *c, uint64_t id, const char *name, uint32_t owner,
				  struct gmem_guest_info *ret)
{
	struct gmem_adopt_args a = { .id = id, .owner = owner };
	struct gmem_wire_guest r = { 0 };
	int e = need_orphans(c);
	if (e < 0 || (e = copy_name(a.name, sizeof(a.name), name)) < 0)
		return e;
	e = gmem_call(c, GMEM_OP_ADOPT, &a, &r, NULL);
	if (e == 0 && ret)
		to_info(&r, ret);
	return e;
}

GMEM_EXPORT int gmem_orphan_destroy(struct gmem_client *c, uint64_t id)
{
	struct gmem_orphan_args a = { .id = id };
	struct gmem_empty_reply r;
	int e = need_orphans(c);
	return e < 0 ? e : gmem_call(c, GMEM_OP_DESTROY_ORPHAN, &a, &r, NULL);
}

GMEM_EXPORT int gmem_resolve(struct gmem_client *c, uint64_t epoch, uint64_t seq, enum gmem_outcome *ret)
{
	struct gmem_ack_args a = { .epoch = epoch, .seq = seq };
	struct gmem_resolve_reply r = { 0 };
	int e = gmem_call(c, GMEM_OP_RESOLVE, &a, &r, NULL);
	if (e == 0)
		*ret = (enum gmem_outcome)r.outcome;
	return e;
}

static int list_pages(struct gmem_client *c, enum gmem_op op, struct gmem_guest_info **ret, size_t *ret_n)
{
	struct gmem_guest_info *all = NULL;
	size_t n = 0;
	uint64_t after = 0;

	/* Pages keep every reply under the datagram limit; ids only grow, so paging by id never repeats. */
	do {
		struct gmem_list_args a = { .after = after };
		struct gmem_list_reply r = { 0 };
		int e = gmem_call(c, op, &a, &r, NULL);
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
	if (e < 0)
		return e;
	uint64_t id = rc_attach_added(c, a.name, offset, length, (int)kind, r.id);
	if (ret_id)
		*ret_id = id;
	return 0;
}

GMEM_EXPORT int gmem_attach_pid(struct gmem_client *c, const char *name, uint64_t offset, uint64_t length,
				pid_t pid, uint64_t *ret_id)
{
	struct gmem_attach_args a = { .offset = offset, .length = length, .kind = GMEM_ATTACH_MMAP };
	struct gmem_attach_reply r = { 0 };
	if (pid <= 0)
		return -EINVAL;
	/* A gmemd without the feature would refuse the field as unknown: say so plainly instead. */
	if (!(c->features & GMEM_FEATURE_ATTACH_PID))
		return -EOPNOTSUPP;
	a.pid = (uint64_t)pid;
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
	struct gmem_detach_args a = { .id = rc_attach_server_id(c, id) };
	struct gmem_empty_reply r;
	int e = gmem_call(c, GMEM_OP_DETACH, &a, &r, NULL);
	if (e == 0)
		rc_attach_removed(c, id);
	return e;
}

GMEM_EXPORT int gmem_client_list(struct gmem_client *c, struct gmem_client_info **ret, size_t *ret_n)
{
	struct gmem_client_info *all = NULL;
	size_t n = 0;
	uint64_t after = 0;

	do {
		struct gmem_clients_args a = { .after = after };
		struct gmem_clients_reply r = { 0 };
		int e = gmem_call(c, GMEM_OP_CLIENTS, &a, &r, NULL);
		if (e < 0) {
			free(all);
			return e;
		}
		struct gmem_client_info *grown = realloc(all, (n + r.n_clients + 1) * sizeof(*all));
		if (!grown) {
			gmem_fields_release(gmem_clients_reply_fields, &r);
			free(all);
			return -ENOMEM;
		}
		all = grown;
		for (size_t i = 0; i < r.n_clients; i++) {
			const struct gmem_wire_client *w = &r.clients[i];
			struct gmem_client_info *x = &all[n++];
			memset(x, 0, sizeof(*x));
			x->id = w->id;
			x->pid = (uint32_t)w->pid;
			x->uid = (uint32_t)w->uid;
			x->gid = (uint32_t)w->gid;
			x->hello = w->hello;
			x->role = (enum gmem_role)w->role;
			snprintf(x->name, sizeof(x->name), "%s", w->client_name);
			x->attachments = w->attachments;
			x->files = w->files;
			x->leases = w->leases;
			x->converts = w->converts;
			x->self = w->self;
		}
		/* Ids only grow, so paging by id never repeats one; a connection that came meanwhile may show. */
		after = r.next;
		gmem_fields_release(gmem_clients_reply_fields, &r);
	} while (after);
	*ret = all;
	*ret_n = n;
	return 0;
}

static struct gmem_conversion_info *to_conversions(const struct gmem_wire_conversion *w, size_t n)
{
	struct gmem_conversion_info *out = calloc(n + 1, sizeof(*out));
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		out[i].epoch = w[i].epoch;
		out[i].seq = w[i].seq;
		snprintf(out[i].guest, sizeof(out[i].guest), "%s", w[i].guest);
		out[i].target = (enum gmem_target)w[i].target;
		snprintf(out[i].state, sizeof(out[i].state), "%s", gmem_state_names[w[i].state]);
		out[i].bytes = w[i].bytes;
		out[i].ranges = w[i].ranges;
		out[i].participants = w[i].participants;
		out[i].latency_us = w[i].latency_us;
		out[i].requester_pid = (uint32_t)w[i].requester_pid;
	}
	return out;
}

GMEM_EXPORT int gmem_conversion_list(struct gmem_client *c, struct gmem_conversion_info **ret_in_flight,
				     size_t *ret_n_in_flight, uint64_t *ret_omitted,
				     struct gmem_conversion_info **ret_recent, size_t *ret_n_recent)
{
	struct gmem_status_args a = { 0 };
	struct gmem_conversions_reply r = { 0 };
	int e = gmem_call(c, GMEM_OP_CONVERSIONS, &a, &r, NULL);
	if (e < 0)
		return e;
	struct gmem_conversion_info *fl = to_conversions(r.in_flight, r.n_in_flight);
	struct gmem_conversion_info *rc = to_conversions(r.recent, r.n_recent);
	if (!fl || !rc) {
		free(fl);
		free(rc);
		gmem_fields_release(gmem_conversions_reply_fields, &r);
		return -ENOMEM;
	}
	*ret_in_flight = fl;
	*ret_n_in_flight = r.n_in_flight;
	if (ret_omitted)
		*ret_omitted = r.omitted;
	*ret_recent = rc;
	*ret_n_recent = r.n_recent;
	gmem_fields_release(gmem_conversions_reply_fields, &r);
	return 0;
}
GMEM_EXPORT int gmem_delegate(struct gmem_client *c, const char *name, const char *who, uint64_t offset,
			      uint64_t length, enum gmem_attach_kind kind, struct gmem_delegation *ret)
{
	struct gmem_delegate_args a = { .offset = offset, .length = length, .kind = (int)kind };
	struct gmem_delegate_reply r = { 0 };
	int e = copy_name(a.name, sizeof(a.name), name);
	if (e < 0 || !who || strlen(who) >= sizeof(a.who) || (kind != GMEM_ATTACH_MMAP && kind != GMEM_ATTACH_IOMMU))
		return -EINVAL;
	snprintf(a.who, sizeof(a.who), "%s", who);
	e = gmem_call(c, GMEM_OP_DELEGATE, &a, &r, NULL);
	if (e < 0)
		return e;
	memset(ret, 0, sizeof(*ret));
	ret->id = r.id;
	snprintf(ret->token, sizeof(ret->token), "%s", r.token);
	ret->expires_ms = r.expires_ms;
	return 0;
}

GMEM_EXPORT int gmem_redeem(struct gmem_client *c, const char *token, int *ret_fd, uint64_t *ret_attach_id,
			    struct gmem_guest_info *ret_info)
{
	struct gmem_redeem_args a;
	struct gmem_redeem_reply r = { 0 };
	int fd = -EBADF;
	if (!token || !*token || strlen(token) >= sizeof(a.token))
		return -EINVAL;
	snprintf(a.token, sizeof(a.token), "%s", token);
	int e = gmem_call(c, GMEM_OP_REDEEM, &a, &r, &fd);
	if (e < 0)
		return e;
	if (ret_info)
		to_info(&r.guest, ret_info);
	if (ret_attach_id)
		*ret_attach_id = r.attachment;
	*ret_fd = fd;
	return 0;
}

GMEM_EXPORT int gmem_undelegate(struct gmem_client *c, uint64_t id)
{
	struct gmem_undelegate_args a = { .id = id };
	struct gmem_empty_reply r;
	return gmem_call(c, GMEM_OP_UNDELEGATE, &a, &r, NULL);
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
