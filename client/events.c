/* SPDX-License-Identifier: MIT */
/*
 * events: turning what gmemd sent into the application's callbacks — plain events for the event
 * handler, prepare/commit/abort/done for the participant ops, and deferred answers (convert) for
 * the callback given with the request. Wire structs never reach the application: each is mapped to
 * the public struct of gmem.h here.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "errname.h"
#include "internal.h"
#include "util.h"

static void deliver_plain(struct gmem_client *c, enum gmem_wire_event type, struct json_object *data)
{
	union {
		struct gmem_shutdown_event shutdown;
		struct gmem_guest_event guest;
		struct gmem_watch_event watch;
		struct gmem_revoked_event revoked;
	} u;
	struct gmem_event ev = { 0 };
	struct gmem_watch_info wi = { 0 };

	memset(&u, 0, sizeof(u));
	if (gmem_decode(gmem_events[type].fields, data, &u, 0, NULL) < 0)
		return;
	switch (type) {
	case GMEM_WIRE_EVENT_SHUTDOWN:
		ev.type = GMEM_EVENT_SHUTDOWN;
		ev.reason = u.shutdown.reason;
		break;
	case GMEM_WIRE_EVENT_GUEST_DESTROYED:
		ev.type = GMEM_EVENT_GUEST_DESTROYED;
		ev.guest = u.guest.name;
		rc_guest_gone(c, u.guest.name); /* nothing of it to announce after a restart */
		break;
	case GMEM_WIRE_EVENT_CONVERSION:
		ev.type = GMEM_EVENT_CONVERSION;
		ev.guest = u.watch.guest;
		wi.epoch = u.watch.epoch;
		wi.seq = u.watch.seq;
		wi.target = (enum gmem_target)u.watch.target;
		wi.state = gmem_state_names[u.watch.state];
		wi.bytes = u.watch.bytes;
		wi.ranges = u.watch.ranges;
		wi.participants = u.watch.participants;
		wi.latency_us = u.watch.latency_us;
		wi.requester_pid = (uint32_t)u.watch.requester_pid;
		ev.conversion = &wi;
		break;
	case GMEM_WIRE_EVENT_REVOKED:
		ev.type = GMEM_EVENT_REVOKED;
		ev.guest = u.revoked.name;
		ev.attachment = u.revoked.attachment;
		ev.delegation = u.revoked.delegation;
		break;
	default:
		return;
	}
	if (c->event_fn)
		c->event_fn(c, &ev, c->event_data);
}

/* commit, abort and done carry only the conversion's id: the rest is what its prepare said. */
static void from_prepare(struct gmem_conversion *cv, const struct rc_doubt *d)
{
	if (!d)
		return;
	cv->target = (enum gmem_target)d->target;
	cv->zero = d->zero;
	cv->role = (enum gmem_role)d->role;
	cv->ranges = d->ranges;
	cv->n_ranges = d->n_ranges;
}

static void deliver_participant(struct gmem_client *c, enum gmem_wire_event type, struct json_object *data)
{
	const struct gmem_participant_ops *ops = c->part_ops;
	struct gmem_conversion cv = { 0 };
	union {
		struct gmem_prepare_event prepare;
		struct gmem_commit_event commit;
		struct gmem_conv_event abort;
		struct gmem_done_event done;
	} u;
	struct gmem_range *ranges = NULL;

	memset(&u, 0, sizeof(u));
	if (gmem_decode(gmem_events[type].fields, data, &u, 0, NULL) < 0)
		return;
	switch (type) {
	case GMEM_WIRE_EVENT_PREPARE:
		cv.epoch = u.prepare.epoch;
		cv.seq = u.prepare.seq;
		cv.guest = u.prepare.guest;
		cv.target = (enum gmem_target)u.prepare.target;
		cv.zero = u.prepare.content == 1;
		cv.role = (enum gmem_role)u.prepare.role;
		ranges = calloc(u.prepare.n_ranges ? u.prepare.n_ranges : 1, sizeof(*ranges));
		for (size_t i = 0; ranges && i < u.prepare.n_ranges; i++) {
			ranges[i].offset = u.prepare.ranges[i].offset;
			ranges[i].length = u.prepare.ranges[i].length;
		}
		cv.ranges = ranges;
		cv.n_ranges = ranges ? u.prepare.n_ranges : 0;
		/* In doubt from here until done: what a restarted gmemd gets asked about; and what the later events,
		 * which carry only the id, are about. */
		rc_prepared(c, cv.epoch, cv.seq, cv.guest, (int)cv.role, (int)cv.target, cv.zero, cv.ranges, cv.n_ranges);
		if (ops && ops->prepare)
			ops->prepare(c, &cv, c->part_data);
		else
			/* Nobody here can keep the promise a yes makes: say so now rather than by timeout. */
			(void)gmem_vote(c, cv.epoch, cv.seq, false, EOPNOTSUPP,
					"this client takes no part in conversions");
		break;
	case GMEM_WIRE_EVENT_COMMIT:
		cv.epoch = u.commit.epoch;
		cv.seq = u.commit.seq;
		cv.guest = u.commit.guest;
		cv.wave = (int)u.commit.wave;
		struct rc_doubt *d = rc_doubt_find(c, cv.epoch, cv.seq);
		if (d)
			d->commit_seen = true;
		from_prepare(&cv, d);
		if (ops && ops->commit)
			ops->commit(c, &cv, c->part_data);
		break;
	case GMEM_WIRE_EVENT_ABORT:
		cv.epoch = u.abort.epoch;
		cv.seq = u.abort.seq;
		cv.guest = u.abort.guest;
		cv.outcome = GMEM_ABORTED;
		from_prepare(&cv, rc_doubt_find(c, cv.epoch, cv.seq));
		if (ops && ops->abort)
			ops->abort(c, &cv, c->part_data);
		break;
	case GMEM_WIRE_EVENT_DONE:
		cv.epoch = u.done.epoch;
		cv.seq = u.done.seq;
		cv.guest = u.done.guest;
		cv.outcome = (enum gmem_outcome)u.done.outcome;
		from_prepare(&cv, rc_doubt_find(c, cv.epoch, cv.seq));
		if (ops && ops->done)
			ops->done(c, &cv, c->part_data);
		rc_ended(c, cv.epoch, cv.seq);
		break;
	default:
		break;
	}
	free(ranges);
	gmem_fields_release(gmem_events[type].fields, &u);
}

/* Copies a wire convert reply into the public result; arrays are malloc'd (gmem_convert_result_free). */
static int copy_parties(const struct gmem_wire_party *w, size_t n, struct gmem_party **ret, size_t *ret_n)
{
	if (n == 0)
		return 0;
	struct gmem_party *p = calloc(n, sizeof(*p));
	if (!p)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		p[i].client_id = w[i].client_id;
		p[i].pid = (uint32_t)w[i].pid;
		memcpy(p[i].client_name, w[i].client_name, sizeof(p[i].client_name));
	}
	*ret = p;
	*ret_n = n;
	return 0;
}

static int to_result(const struct gmem_convert_reply *w, struct gmem_convert_result *r)
{
	memset(r, 0, sizeof(*r));
	r->epoch = w->epoch;
	r->seq = w->seq;
	r->outcome = (enum gmem_outcome)w->outcome;
	r->changed = w->changed;
	r->participants = w->participants;
	r->latency_us = w->latency_us;
	if (w->n_refusals) {
		r->refusals = calloc(w->n_refusals, sizeof(*r->refusals));
		if (!r->refusals)
			return -ENOMEM;
		r->n_refusals = w->n_refusals;
		for (size_t i = 0; i < w->n_refusals; i++) {
			struct gmem_refusal *f = &r->refusals[i];
			const struct gmem_wire_refusal *x = &w->refusals[i];
			f->client_id = x->client_id;
			f->pid = (uint32_t)x->pid;
			memcpy(f->client_name, x->client_name, sizeof(f->client_name));
			f->err = gmem_errno_from_name(x->err);
			if (!f->err)
				f->err = EIO;
			memcpy(f->reason, x->reason, sizeof(f->reason));
			f->timed_out = x->timed_out;
			f->gone = x->gone;
		}
	}
	if (copy_parties(w->unverified, w->n_unverified, &r->unverified, &r->n_unverified) < 0 ||
	    copy_parties(w->revoked, w->n_revoked, &r->revoked, &r->n_revoked) < 0 ||
	    copy_parties(w->not_asked, w->n_not_asked, &r->not_asked, &r->n_not_asked) < 0) {
		gmem_convert_result_free(r);
		return -ENOMEM;
	}
	return 0;
}

static void deliver_answer(struct gmem_client *c, struct pending_call *call, struct json_object *root)
{
	struct gmem_envelope env;
	struct gmem_convert_reply w = { 0 };
	struct gmem_convert_result res;

	if (!call->fn)
		return;
	if (!root) {
		/* GMEM_QEV_ANSWER_LOST: the connection died with the request in flight. */
		gmem_utf8_copy(c->err, sizeof(c->err), "gmemd went away before it answered");
		call->fn(c, -ECONNRESET, NULL, call->userdata);
		return;
	}
	if (gmem_envelope_parse_incoming(root, &env, NULL) < 0) {
		call->fn(c, -EBADMSG, NULL, call->userdata);
		return;
	}
	if (env.kind == GMEM_MSG_ERROR) {
		gmem_utf8_copy(c->err, sizeof(c->err), env.message);
		call->fn(c, -env.err, NULL, call->userdata);
		return;
	}
	if (gmem_decode(gmem_convert_reply_fields, env.body, &w, 0, NULL) < 0) {
		call->fn(c, -EBADMSG, NULL, call->userdata);
		return;
	}
	int r = to_result(&w, &res);
	gmem_fields_release(gmem_convert_reply_fields, &w);
	if (r < 0) {
		call->fn(c, r, NULL, call->userdata);
		return;
	}
	call->fn(c, 0, &res, call->userdata);
	gmem_convert_result_free(&res);
}

/* The events a restarted gmemd could not send: the in-doubt conversion's end, as if it had. */
static void deliver_doubt(struct gmem_client *c, struct queued_event *q)
{
	const struct rc_doubt *d = &q->doubt;
	const struct gmem_participant_ops *ops = c->part_ops;
	struct gmem_in_doubt_info info = { .epoch = d->epoch, .seq = d->seq, .guest = d->guest,
					   .known = q->outcome >= 0,
					   .outcome = q->outcome >= 0 ? (enum gmem_outcome)q->outcome : GMEM_ABORTED };
	struct gmem_event ev = { .type = GMEM_EVENT_IN_DOUBT, .guest = d->guest, .in_doubt = &info };

	if (c->event_fn)
		c->event_fn(c, &ev, c->event_data);
	if (q->outcome < 0)
		return; /* still in doubt: no guessing, not even presumed abort */
	struct gmem_conversion cv = { .epoch = d->epoch, .seq = d->seq, .guest = d->guest,
				      .target = (enum gmem_target)d->target, .role = (enum gmem_role)d->role,
				      .outcome = (enum gmem_outcome)q->outcome };
	from_prepare(&cv, d);
	if (q->outcome == GMEM_ABORTED) {
		if (ops && ops->abort)
			ops->abort(c, &cv, c->part_data);
	} else if (!d->commit_seen) {
		/* The wave of its role in this direction (twopc.h): devices first to private, last to shared. */
		bool device = d->role == GMEM_ROLE_DEVICE;
		cv.wave = (d->target == GMEM_PRIVATE) == device ? 1 : 3;
		if (ops && ops->commit)
			ops->commit(c, &cv, c->part_data);
	}
	if (ops && ops->done)
		ops->done(c, &cv, c->part_data);
	rc_ended(c, d->epoch, d->seq); /* frees d, which cv points into */
}

static void deliver_link(struct gmem_client *c, int type)
{
	char why[96];
	struct gmem_event ev = { .type = type == GMEM_QEV_DISCONNECTED ? GMEM_EVENT_DISCONNECTED
									: GMEM_EVENT_RECONNECTED };
	if (type == GMEM_QEV_RECONNECTED) {
		snprintf(why, sizeof(why), "%u announcement(s) no longer held", c->reannounce_failed);
		ev.reason = c->reannounce_failed ? why : NULL;
	}
	if (c->event_fn)
		c->event_fn(c, &ev, c->event_data);
}

void gmem_deliver(struct gmem_client *c, struct queued_event *q)
{
	if (q->type == GMEM_QEV_DOUBT)
		deliver_doubt(c, q);
	else if (q->type == GMEM_QEV_DISCONNECTED || q->type == GMEM_QEV_RECONNECTED)
		deliver_link(c, q->type);
	else if (q->call)
		deliver_answer(c, q->call, q->data);
	else if (q->type == GMEM_WIRE_EVENT_PREPARE || q->type == GMEM_WIRE_EVENT_COMMIT ||
		 q->type == GMEM_WIRE_EVENT_ABORT || q->type == GMEM_WIRE_EVENT_DONE)
		deliver_participant(c, q->type, q->data);
	else
		deliver_plain(c, q->type, q->data);
	json_object_put(q->data);
	free(q->call);
	free(q);
}

__attribute__((visibility("default"))) void gmem_convert_result_free(struct gmem_convert_result *r)
{
	if (!r)
		return;
	free(r->refusals);
	free(r->unverified);
	free(r->revoked);
	free(r->not_asked);
	r->not_asked = NULL;
	r->n_not_asked = 0;
	r->refusals = NULL;
	r->unverified = NULL;
	r->revoked = NULL;
	r->n_refusals = r->n_unverified = r->n_revoked = 0;
}
