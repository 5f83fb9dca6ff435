/* SPDX-License-Identifier: MIT */
/*
 * convert: the conversion calls of libgmem — requesting one (blocking or not), taking part in one
 * (participant ops, vote, ack), and observing (watch, map).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errname.h"
#include "internal.h"
#include "util.h"

#define GMEM_EXPORT __attribute__((visibility("default")))

GMEM_EXPORT void gmem_set_participant(struct gmem_client *c, const struct gmem_participant_ops *ops,
				      void *userdata)
{
	c->part_ops = ops;
	c->part_data = userdata;
}

GMEM_EXPORT int gmem_vote(struct gmem_client *c, uint64_t epoch, uint64_t seq, bool yes, int err,
			  const char *reason)
{
	struct gmem_vote_args a = { .epoch = epoch, .seq = seq, .vote = yes ? 0 : 1 };
	struct gmem_empty_reply r;
	struct rc_doubt *d = rc_doubt_find(c, epoch, seq);
	if (d && d->resolving)
		return -ESTALE; /* a restarted gmemd already ended it */
	if (!yes) {
		const char *name = gmem_errno_name(err ? err : EPERM);
		snprintf(a.err, sizeof(a.err), "%s", name ? name : "EPERM");
		if (reason)
			gmem_utf8_copy(a.reason, sizeof(a.reason), reason);
	}
	return gmem_call(c, GMEM_OP_VOTE, &a, &r, NULL);
}

GMEM_EXPORT int gmem_ack(struct gmem_client *c, uint64_t epoch, uint64_t seq)
{
	struct gmem_ack_args a = { .epoch = epoch, .seq = seq };
	struct gmem_empty_reply r;
	struct rc_doubt *d = rc_doubt_find(c, epoch, seq);
	/* The commit a restarted gmemd ended while we were away: it waits for no ack. */
	if (d && d->resolving)
		return 0;
	return gmem_call(c, GMEM_OP_ACK, &a, &r, NULL);
}

GMEM_EXPORT int gmem_watch(struct gmem_client *c)
{
	struct gmem_status_args a = { 0 };
	struct gmem_empty_reply r;
	int e = gmem_call(c, GMEM_OP_WATCH, &a, &r, NULL);
	if (e == 0)
		c->watching = true;
	return e;
}

GMEM_EXPORT int gmem_map(struct gmem_client *c, const char *name, struct gmem_run **ret, size_t *ret_n,
			 uint64_t *shared_bytes, uint64_t *private_bytes)
{
	struct gmem_run *all = NULL;
	size_t n = 0;
	uint64_t offset = 0;

	if (!name || !gmem_name_valid(name))
		return -EINVAL;
	do {
		struct gmem_map_args a = { .offset = offset };
		struct gmem_map_reply r = { 0 };
		snprintf(a.name, sizeof(a.name), "%s", name);
		int e = gmem_call(c, GMEM_OP_MAP, &a, &r, NULL);
		if (e < 0) {
			free(all);
			return e;
		}
		struct gmem_run *grown = realloc(all, (n + r.n_runs + 1) * sizeof(*all));
		if (!grown) {
			gmem_fields_release(gmem_map_reply_fields, &r);
			free(all);
			return -ENOMEM;
		}
		all = grown;
		for (size_t i = 0; i < r.n_runs; i++) {
			/* Pages split runs at their edge: join them back so callers see maximal runs. */
			if (n && all[n - 1].state == (enum gmem_target)r.runs[i].state &&
			    all[n - 1].offset + all[n - 1].length == r.runs[i].offset) {
				all[n - 1].length += r.runs[i].length;
				continue;
			}
			all[n].offset = r.runs[i].offset;
			all[n].length = r.runs[i].length;
			all[n].state = (enum gmem_target)r.runs[i].state;
			n++;
		}
		if (shared_bytes)
			*shared_bytes = r.shared_bytes;
		if (private_bytes)
			*private_bytes = r.private_bytes;
		offset = r.next;
		gmem_fields_release(gmem_map_reply_fields, &r);
	} while (offset);
	*ret = all;
	*ret_n = n;
	return 0;
}

static int build_args(struct gmem_convert_args *a, const char *name, const struct gmem_range *ranges, size_t n,
		      enum gmem_target target, unsigned flags)
{
	if (!name || !gmem_name_valid(name) || !ranges || n == 0 || n > GMEM_RANGES_MAX ||
	    (unsigned)target > GMEM_PRIVATE || (flags & ~(unsigned)(GMEM_CONVERT_ZERO | GMEM_CONVERT_FORCE)))
		return -EINVAL;
	memset(a, 0, sizeof(*a));
	snprintf(a->name, sizeof(a->name), "%s", name);
	/* gmem_range and the wire range have the same layout; the codec only reads through the pointer. */
	_Static_assert(sizeof(struct gmem_range) == sizeof(struct gmem_wire_range), "range layouts differ");
	a->ranges = (struct gmem_wire_range *)ranges;
	a->n_ranges = n;
	a->target = (int)target;
	a->content = (flags & GMEM_CONVERT_ZERO) ? 1 : 0;
	a->force = flags & GMEM_CONVERT_FORCE;
	return 0;
}

GMEM_EXPORT int gmem_convert_async(struct gmem_client *c, const char *name, const struct gmem_range *ranges,
				   size_t n, enum gmem_target target, unsigned flags, gmem_convert_fn fn,
				   void *userdata)
{
	struct gmem_convert_args a;
	int r = build_args(&a, name, ranges, n, target, flags);
	if (r < 0 || !fn)
		return r < 0 ? r : -EINVAL;
	return gmem_call_async(c, GMEM_OP_CONVERT, &a, fn, userdata, NULL);
}

struct sync_state {
	bool done;
	int err;
	struct gmem_convert_result *out;
};

static void sync_done(struct gmem_client *c, int err, const struct gmem_convert_result *r, void *userdata)
{
	struct sync_state *s = userdata;
	(void)c;
	s->done = true;
	s->err = err;
	if (err < 0)
		return;
	/* r lives only during this call: take a deep copy. */
	*s->out = *r;
	s->out->refusals = NULL;
	s->out->unverified = NULL;
	if (r->n_refusals) {
		s->out->refusals = malloc(r->n_refusals * sizeof(*r->refusals));
		if (s->out->refusals)
			memcpy(s->out->refusals, r->refusals, r->n_refusals * sizeof(*r->refusals));
		else
			s->out->n_refusals = 0;
	}
	if (r->n_unverified) {
		s->out->unverified = malloc(r->n_unverified * sizeof(*r->unverified));
		if (s->out->unverified)
			memcpy(s->out->unverified, r->unverified, r->n_unverified * sizeof(*r->unverified));
		else
			s->out->n_unverified = 0;
	}
	s->out->not_asked = NULL;
	if (r->n_not_asked) {
		s->out->not_asked = malloc(r->n_not_asked * sizeof(*r->not_asked));
		if (s->out->not_asked)
			memcpy(s->out->not_asked, r->not_asked, r->n_not_asked * sizeof(*r->not_asked));
		else
			s->out->n_not_asked = 0;
	}
	s->out->revoked = NULL;
	if (r->n_revoked) {
		s->out->revoked = malloc(r->n_revoked * sizeof(*r->revoked));
		if (s->out->revoked)
			memcpy(s->out->revoked, r->revoked, r->n_revoked * sizeof(*r->revoked));
		else
			s->out->n_revoked = 0;
	}
}

GMEM_EXPORT int gmem_convert(struct gmem_client *c, const char *name, const struct gmem_range *ranges, size_t n,
			     enum gmem_target target, unsigned flags, struct gmem_convert_result *ret)
{
	struct sync_state s = { .out = ret };
	struct gmem_convert_args a;
	struct pending_call *call;
	int64_t deadline = c->timeout_ms < 0 ? -1 : gmem_now_ms() + c->timeout_ms;
	int r = build_args(&a, name, ranges, n, target, flags);
	if (r < 0)
		return r;
	r = gmem_call_async(c, GMEM_OP_CONVERT, &a, sync_done, &s, &call);
	if (r < 0)
		return r;

	/* Keep delivering our own events while we wait: a VMM requesting a conversion is usually one of
	 * its participants, and must vote and ack for it to finish. */
	while (!s.done) {
		r = gmem_dispatch(c);
		if (s.done)
			break;
		if (r >= 0)
			r = gmem_wait_readable(c, deadline);
		if (r < 0) {
			/* Give up: a late answer finds no callback and is dropped. */
			for (struct pending_call *p = c->pending; p; p = p->next)
				if (p == call)
					p->fn = NULL;
			return r;
		}
	}
	return s.err;
}
