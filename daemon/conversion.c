/* SPDX-License-Identifier: MIT */
/*
 * conversion: the world around the 2PC engine. A conversion is queued on its guest, starts when it
 * reaches the head (only granules not already in the target state take part, so a conversion that
 * changes nothing ends at once), picks its participants — every client whose attachments overlap the
 * changing ranges, plus the guest's vmm lease holder — and then lets twopc.c decide, carrying out its
 * actions: messages, the timer, the backend and the map. A finished conversion is freed from a fresh
 * loop iteration (never inside an engine callback) and the next one of its guest starts.
 */
#include "conversion.h"

#include <errno.h>
#include <fcntl.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "backend.h"
#include "client.h"
#include "envelope.h"
#include "errname.h"
#include "guest.h"
#include "journal-state.h"
#include "journal.h"
#include "log.h"
#include "manager.h"
#include "pid-attach.h"
#include "policy.h"
#include "quarantine.h"
#include "sharemap.h"
#include "testhook.h"
#include "sharemap-publish.h"
#include "stats.h"
#include "util.h"
#include <json-c/json.h>

struct conv_part {
	struct client *client; /* borrowed; NULL once it is gone */
	uint64_t client_id;
	pid_t pid;
	char name[GMEM_NAME_MAX + 1];
	struct conv_range *ranges; /* owned: the changing ranges that overlap its attachments */
	size_t n_ranges;
	uint64_t *gone_files; /* owned: a yes-voter that left: its files, revoked when the commit is applied */
	size_t n_gone_files;
	bool iommu;  /* a device with an iommu attachment on the changing ranges */
	struct conv_range *iommu_ranges; /* owned: where its iommu attachments meet the changing ranges */
	size_t n_iommu;
	int pidfd;   /* owned, iommu devices only: a commit it does not ack quarantines until its process exits */
};

struct conversion {
	struct manager *m;
	struct guest *g;
	uint64_t seq;
	struct client *requester; /* borrowed; NULL once it is gone */
	uint64_t req_id;
	pid_t requester_pid;
	bool to_private, zero;
	struct conv_range *ranges; /* owned: requested, sorted and merged */
	size_t n_ranges;
	struct conv_range *eff; /* owned: the part of ranges not yet in the target state, at start */
	size_t n_eff, cap_eff;
	uint64_t bytes; /* in eff */

	struct twopc tp;
	struct twopc_part *tparts; /* owned, parallel to parts */
	struct conv_part *parts;   /* owned */
	size_t n_parts;

	struct event *timer, *reap;
	uint64_t cancel_client_id; /* the operator who cancelled it; 0 if none */
	int64_t t_prepare_us;      /* when the prepares went out */
	struct conv_slowest slowest; /* the participant that took longest to vote (name borrowed from parts) */
	pid_t cancel_pid;
	struct prepare_cache {
		char *buf; /* owned: the last prepare built */
		size_t len;
		int role;
		const struct conv_range *ranges; /* borrowed from the part it was built for */
		size_t n;
	} prepare_cache;
	struct gmem_wire_party *revoked; /* owned: files the audit revoked (GMEM_REFUSALS_MAX at most) */
	size_t n_revoked;
	bool force; /* kmod: nobody is asked; the backend's zap is the only way holders learn */
	struct gmem_wire_party *not_asked; /* owned: force: who would have taken part (GMEM_REFUSALS_MAX) */
	size_t n_not_asked, n_not_asked_total;
	int64_t t0_us;
	bool started, finished;
	bool journaled, applied; /* its begin is in the journal; its map change is */
	enum gmem_outcome outcome;
	struct list_node node; /* guest->conversions */
	struct list_node active_node; /* manager->active while started and not finished */
};

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static void conv_free(struct conversion *cv)
{
	if (!cv)
		return;
	list_del(&cv->node);
	list_del(&cv->active_node);
	if (cv->timer)
		event_free(cv->timer);
	if (cv->reap)
		event_free(cv->reap);
	for (size_t i = 0; i < cv->n_parts; i++) {
		free(cv->parts[i].ranges);
		free(cv->parts[i].gone_files);
		free(cv->parts[i].iommu_ranges);
		safe_close(cv->parts[i].pidfd);
	}
	if (cv->requester)
		cv->requester->n_converts--;
	free(cv->prepare_cache.buf);
	free(cv->revoked);
	free(cv->not_asked);
	free(cv->parts);
	free(cv->tparts);
	free(cv->ranges);
	free(cv->eff);
	free(cv);
}

static void watch_event(struct conversion *cv, int state)
{
	struct manager *m = cv->m;
	struct gmem_watch_event ev = {
		.epoch = m->epoch,
		.seq = cv->seq,
		.target = cv->to_private ? GMEM_PRIVATE : GMEM_SHARED,
		.state = state,
		.bytes = cv->started ? cv->bytes : 0,
		.ranges = cv->started ? cv->n_eff : cv->n_ranges,
		.participants = cv->n_parts,
		.latency_us = cv->finished ? (uint64_t)(now_us() - cv->t0_us) : 0,
		.requester_pid = (uint64_t)cv->requester_pid,
	};
	snprintf(ev.guest, sizeof(ev.guest), "%s", cv->g->name);
	list_for_each_safe(pos, &m->clients) {
		struct client *c = list_entry(pos, struct client, node);
		if (c->watching && (policy_perms(m, c, cv->g) & PERM_SEE))
			client_send_event(c, GMEM_WIRE_EVENT_CONVERSION, &ev);
	}
}

/* ---- engine ops ---- */

static void op_send_prepare(struct twopc *t, struct twopc_part *tp)
{
	struct conversion *cv = t->user;
	struct conv_part *p = tp->user;
	struct gmem_prepare_event ev = {
		.epoch = cv->m->epoch,
		.seq = cv->seq,
		.target = cv->to_private ? GMEM_PRIVATE : GMEM_SHARED,
		.content = cv->zero,
		.role = tp->role == TP_ROLE_VMM ? GMEM_ROLE_VMM : GMEM_ROLE_DEVICE,
		/* conv_range and gmem_wire_range have the same shape: offset, length. */
		.ranges = (struct gmem_wire_range *)p->ranges,
		.n_ranges = p->n_ranges,
	};
	_Static_assert(sizeof(struct conv_range) == sizeof(struct gmem_wire_range), "range layouts differ");
	snprintf(ev.guest, sizeof(ev.guest), "%s", cv->g->name);
	if (!p->client)
		return;

	/* Participants with the same role and ranges get the same bytes: encode once (1,024 ranges of
	 * JSON cost more than the send), and hand each its own copy. */
	struct prepare_cache *pc = &cv->prepare_cache;
	if (!pc->buf || pc->role != ev.role || pc->n != p->n_ranges ||
	    memcmp(pc->ranges, p->ranges, p->n_ranges * sizeof(*p->ranges)) != 0) {
		free(pc->buf);
		pc->buf = NULL;
		if (gmem_build_event(GMEM_WIRE_EVENT_PREPARE, &ev, &pc->buf, &pc->len) < 0) {
			client_kill(p->client, "cannot build a prepare event");
			return;
		}
		pc->role = ev.role;
		pc->ranges = p->ranges;
		pc->n = p->n_ranges;
	}
	char *copy = malloc(pc->len);
	if (!copy) {
		client_kill(p->client, "out of memory");
		return;
	}
	memcpy(copy, pc->buf, pc->len);
	client_send(p->client, copy, pc->len, -EBADF);
}

static struct json_object *conv_record(const struct conversion *cv, const char *type)
{
	struct json_object *o = journal_record(type);
	if (o) {
		json_object_object_add(o, "epoch", json_object_new_uint64(cv->m->epoch));
		json_object_object_add(o, "seq", json_object_new_uint64(cv->seq));
	}
	return o;
}

static struct json_object *decide_record(const struct conversion *cv, bool commit)
{
	struct json_object *o = conv_record(cv, "decide");
	if (o)
		json_object_object_add(o, "commit", json_object_new_boolean(commit));
	return o;
}

static struct json_object *begin_record(const struct conversion *cv)
{
	struct json_object *o = conv_record(cv, "begin");
	if (!o)
		return NULL;
	json_object_object_add(o, "guest", json_object_new_uint64(cv->g->id));
	json_object_object_add(o, "target", json_object_new_string(cv->to_private ? "private" : "shared"));
	if (cv->zero)
		json_object_object_add(o, "zero", json_object_new_boolean(1));
	json_object_object_add(o, "ranges", jstate_ranges(cv->eff, cv->n_eff));
	struct json_object *parts = json_object_new_array_ext((int)cv->n_parts);
	for (size_t i = 0; i < cv->n_parts; i++) {
		struct json_object *p = json_object_new_object();
		json_object_object_add(p, "client", json_object_new_uint64(cv->parts[i].client_id));
		json_object_object_add(p, "pid", json_object_new_int64(cv->parts[i].pid));
		json_object_object_add(p, "role", json_object_new_string(cv->tparts[i].role == TP_ROLE_VMM ? "vmm" : "device"));
		json_object_array_add(parts, p);
	}
	json_object_object_add(o, "parts", parts);
	return o;
}

static int op_log_commit(struct twopc *t)
{
	struct conversion *cv = t->user;
	/* The decision point: written before anyone hears it. A failed or short write (a full /run) makes
	 * it an abort, which presumed abort at replay agrees with. */
	int r = jstate_append(cv->m, decide_record(cv, true));
	if (r < 0)
		return r;
	log_debug("conversion %llu of '%s': commit decided with %zu participants", (unsigned long long)cv->seq,
		  cv->g->name, cv->n_parts);
	test_hook("decided");
	return 0;
}

static void op_log_abort(struct twopc *t)
{
	struct conversion *cv = t->user;
	/* Best effort: without it, replay presumes the abort anyway. */
	if (cv->journaled)
		(void)jstate_append(cv->m, decide_record(cv, false));
	log_debug("conversion %llu of '%s': abort decided", (unsigned long long)cv->seq, cv->g->name);
}

static void op_send_commit(struct twopc *t, struct twopc_part *tp, int wave)
{
	struct conversion *cv = t->user;
	struct conv_part *p = tp->user;
	struct gmem_commit_event ev = { .epoch = cv->m->epoch, .seq = cv->seq, .wave = (uint64_t)wave };
	snprintf(ev.guest, sizeof(ev.guest), "%s", cv->g->name);
	if (p->client)
		client_send_event(p->client, GMEM_WIRE_EVENT_COMMIT, &ev);
}

static void op_send_abort(struct twopc *t, struct twopc_part *tp)
{
	struct conversion *cv = t->user;
	struct conv_part *p = tp->user;
	struct gmem_conv_event ev = { .epoch = cv->m->epoch, .seq = cv->seq };
	snprintf(ev.guest, sizeof(ev.guest), "%s", cv->g->name);
	if (p->client)
		client_send_event(p->client, GMEM_WIRE_EVENT_ABORT, &ev);
}

static void op_backend(struct twopc *t)
{
	struct conversion *cv = t->user;
	struct manager *m = cv->m;
	struct guest *g = cv->g;
	enum share_state st = cv->to_private ? SHARE_PRIVATE : SHARE_SHARED;

	struct backend_audit audit = { 0 };
	/* A forced conversion asked nobody to let go, so a mapping that is still there broke no promise:
	 * the zap alone takes the range away (holders fault), and no file is revoked for it. */
	bool audited = cv->to_private && m->bops->enforcing && !cv->force;

	t->backend_err = -m->bops->guest_convert(m->backend, g->mem, cv->eff, cv->n_eff, cv->to_private, cv->zero,
						 audited ? &audit : NULL);
	if (t->backend_err)
		log_errno(LOG_ERR, -t->backend_err, "conversion %llu of '%s': backend", (unsigned long long)cv->seq,
			  g->name);
	for (size_t i = 0; audited && i < cv->n_parts; i++)
		audit_revoke_files(m, g, cv->seq, cv->parts[i].client_id, cv->parts[i].pid, cv->parts[i].gone_files,
				   cv->parts[i].n_gone_files);
	if (audit.n) {
		free(cv->revoked);
		cv->revoked = calloc(GMEM_REFUSALS_MAX, sizeof(*cv->revoked));
		cv->n_revoked = audit_enforce(m, g, cv->seq, &audit, cv->revoked, cv->revoked ? GMEM_REFUSALS_MAX : 0);
	}
	free(audit.hits);
	/* Recorded only now: for to-private every device has let go, for to-shared none maps yet. */
	for (size_t i = 0; i < cv->n_eff; i++) {
		int r = sharemap_set(g->map, cv->eff[i].offset / g->granule, cv->eff[i].length / g->granule, st);
		if (r < 0)
			log_errno(LOG_CRIT, r, "conversion %llu of '%s': the shareability map could not record it",
				  (unsigned long long)cv->seq, g->name);
	}
	/* Without it, replay applies the change again: idempotent, only a zero conversion punches twice. */
	cv->applied = true;
	(void)jstate_append(m, conv_record(cv, "applied"));
	twopc_event(t, TE_BACKEND_DONE, NULL);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conversion *cv = arg;
	(void)fd;
	(void)what;
	twopc_event(&cv->tp, TE_TIMEOUT, NULL);
}

static void op_timer(struct twopc *t, uint64_t ms)
{
	struct conversion *cv = t->user;
	if (ms == 0) {
		event_del(cv->timer);
		return;
	}
	struct timeval tv = { .tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000 };
	event_add(cv->timer, &tv);
}

static void fill_party(struct gmem_wire_party *w, const struct conv_part *p)
{
	w->client_id = p->client_id;
	w->pid = (uint64_t)p->pid;
	snprintf(w->client_name, sizeof(w->client_name), "%s", p->name);
}

static void reply_requester(struct conversion *cv)
{
	struct gmem_convert_reply r = {
		.epoch = cv->m->epoch,
		.seq = cv->seq,
		.outcome = cv->outcome,
		.changed = cv->outcome == GMEM_ABORTED ? 0 : cv->bytes,
		.participants = cv->n_parts,
		.latency_us = (uint64_t)(now_us() - cv->t0_us),
	};
	struct gmem_wire_refusal ref[GMEM_REFUSALS_MAX];
	struct gmem_wire_party unv[GMEM_REFUSALS_MAX];

	for (size_t i = 0; i < cv->n_parts; i++) {
		const struct twopc_part *tp = &cv->tparts[i];
		const struct conv_part *p = &cv->parts[i];
		/* Who made it abort: a no, or no vote at all (timed out, or left first). */
		bool refused = cv->outcome == GMEM_ABORTED && (tp->state == TPP_NO || (!tp->voted && (tp->timed_out ||
			       tp->gone)));
		if (refused && r.n_refusals < GMEM_REFUSALS_MAX) {
			struct gmem_wire_refusal *w = &ref[r.n_refusals++];
			memset(w, 0, sizeof(*w));
			w->client_id = p->client_id;
			w->pid = (uint64_t)p->pid;
			snprintf(w->client_name, sizeof(w->client_name), "%s", p->name);
			const char *en = tp->no_err ? gmem_errno_name(tp->no_err) : NULL;
			snprintf(w->err, sizeof(w->err), "%s",
				 en ? en : tp->timed_out ? "ETIMEDOUT" : tp->gone ? "ECONNRESET" : "EIO");
			snprintf(w->reason, sizeof(w->reason), "%s",
				 tp->state == TPP_NO ? tp->reason
				 : tp->timed_out     ? "did not vote in time"
						     : "disconnected before voting");
			w->timed_out = tp->timed_out;
			w->gone = tp->gone;
		}
		if (cv->outcome == GMEM_COMMITTED_UNVERIFIED && tp->state != TPP_ACKED &&
		    r.n_unverified < GMEM_REFUSALS_MAX)
			fill_party(&unv[r.n_unverified++], p);
	}
	if (cv->cancel_client_id && cv->outcome == GMEM_ABORTED && r.n_refusals < GMEM_REFUSALS_MAX) {
		struct gmem_wire_refusal *w = &ref[r.n_refusals++];
		memset(w, 0, sizeof(*w));
		w->client_id = cv->cancel_client_id;
		w->pid = (uint64_t)cv->cancel_pid;
		snprintf(w->client_name, sizeof(w->client_name), "operator");
		snprintf(w->err, sizeof(w->err), "ECANCELED");
		snprintf(w->reason, sizeof(w->reason), "cancelled by an operator");
	}
	r.refusals = ref;
	r.unverified = unv;
	r.revoked = cv->revoked;
	r.n_revoked = cv->n_revoked;
	r.not_asked = cv->not_asked;
	r.n_not_asked = cv->n_not_asked;

	char *buf;
	size_t len;
	int e;
	/* Reasons are the participants' text: escaped control characters take 6 bytes each, so many long
	 * ones may not fit one datagram. Report fewer rather than leave the requester unanswered. */
	while ((e = gmem_build_reply(cv->req_id, GMEM_OP_CONVERT, &r, &buf, &len)) == -EMSGSIZE &&
	       (r.n_refusals || r.n_unverified || r.n_revoked || r.n_not_asked)) {
		r.n_refusals /= 2;
		r.n_unverified /= 2;
		r.n_revoked /= 2;
		r.n_not_asked /= 2;
	}
	if (e == 0)
		client_send(cv->requester, buf, len, -EBADF);
	else
		client_send_error(cv->requester, true, cv->req_id, e, "gmemd could not build the outcome");
}

static void on_reap(evutil_socket_t fd, short what, void *arg);

/* What a listing says about cv, in state (gmem_state_names). */
static void describe(const struct conversion *cv, int state, struct gmem_wire_conversion *w)
{
	memset(w, 0, sizeof(*w));
	w->epoch = cv->m->epoch;
	w->seq = cv->seq;
	snprintf(w->guest, sizeof(w->guest), "%s", cv->g->name);
	w->target = cv->to_private ? GMEM_PRIVATE : GMEM_SHARED;
	w->state = state;
	w->bytes = cv->started ? cv->bytes : 0;
	w->ranges = cv->started ? cv->n_eff : cv->n_ranges;
	w->participants = cv->n_parts;
	w->latency_us = (uint64_t)(now_us() - cv->t0_us);
	w->requester_pid = (uint64_t)cv->requester_pid;
}

/* A committed to-private whose wave 1 an IOMMU holder did not ack: its device may still DMA into the
 * ranges (nobody can see an IOMMU mapping), so they stay quarantined until it acks or exits. */
static void quarantine_unacked_parts(struct conversion *cv)
{
	for (size_t i = 0; i < cv->n_parts; i++) {
		const struct conv_part *p = &cv->parts[i];
		if (!p->iommu || cv->tparts[i].state == TPP_ACKED)
			continue;
		struct quarantine_holder h = { .client_id = p->client_id, .pid = p->pid, .pidfd = p->pidfd, .name = p->name };
		(void)quarantine_unacked(cv->m, cv->g, cv->m->epoch, cv->seq, &h, p->iommu_ranges, p->n_iommu);
	}
}

static void finish(struct conversion *cv, enum gmem_outcome outcome)
{
	struct gmem_done_event ev = { .epoch = cv->m->epoch, .seq = cv->seq, .outcome = outcome };

	if (cv->to_private && outcome != GMEM_ABORTED)
		quarantine_unacked_parts(cv);

	cv->finished = true;
	cv->outcome = outcome;
	if (cv->journaled) {
		struct json_object *o = conv_record(cv, "done");
		if (o)
			json_object_object_add(o, "outcome", json_object_new_string(gmem_outcome_names[outcome]));
		(void)jstate_append(cv->m, o);
	}
	/* The latency as the requester's reply will give it, give or take the microseconds below. */
	if (stats_record(&cv->g->stats, outcome, (uint64_t)(now_us() - cv->t0_us),
			 cv->slowest.client_id ? &cv->slowest : NULL) < 0)
		log_warning("guest '%s': no memory for its statistics", cv->g->name);
	snprintf(ev.guest, sizeof(ev.guest), "%s", cv->g->name);
	for (size_t i = 0; i < cv->n_parts; i++)
		if (cv->parts[i].client)
			client_send_event(cv->parts[i].client, GMEM_WIRE_EVENT_DONE, &ev);
	/* The published map: an aborted to-private range is shared again, a to-shared one is shared only
	 * now that done is out (and before the requester hears, so its next query sees it). */
	if (cv->to_private ? outcome == GMEM_ABORTED : outcome != GMEM_ABORTED)
		pubmap_set(cv->g->pub, cv->eff, cv->n_eff, true);
	if (cv->requester)
		reply_requester(cv);
	/* Why it aborted, for the operator; the reason is the participant's own text (log.c escapes it). */
	for (size_t i = 0; i < cv->n_parts && outcome == GMEM_ABORTED; i++)
		if (cv->tparts[i].state == TPP_NO)
			log_info("conversion %llu of '%s': client %llu (pid %d) refused: %s: %s",
				 (unsigned long long)cv->seq, cv->g->name, (unsigned long long)cv->parts[i].client_id,
				 (int)cv->parts[i].pid, gmem_errno_name(cv->tparts[i].no_err) ?: "EPERM",
				 cv->tparts[i].reason);
	log_info("conversion %llu of '%s' to %s: %s, %llu bytes, %zu participants, %lld us",
		 (unsigned long long)cv->seq, cv->g->name, cv->to_private ? "private" : "shared",
		 gmem_outcome_names[outcome], (unsigned long long)cv->bytes, cv->n_parts,
		 (long long)(now_us() - cv->t0_us));
	watch_event(cv, outcome == GMEM_COMMITTED ? 3 : outcome == GMEM_ABORTED ? 4 : 5);
	dbus_conversion_done(cv->m->dbus, cv->g, cv->seq, outcome, cv->bytes, &cv->tp);
	struct recent_entry re = { .guest_id = cv->g->id, .owner = cv->g->owner };
	describe(cv, outcome == GMEM_COMMITTED ? 3 : outcome == GMEM_ABORTED ? 4 : 5, &re.w);
	recent_push(&cv->m->recent, &re);
	list_del(&cv->active_node);
	notify_changed(cv->m->notify);
	event_active(cv->reap, EV_TIMEOUT, 0);
}

static void op_finish(struct twopc *t)
{
	struct conversion *cv = t->user;
	finish(cv, t->state == TP_ABORTED ? GMEM_ABORTED : t->unverified ? GMEM_COMMITTED_UNVERIFIED : GMEM_COMMITTED);
}

static const struct twopc_ops engine_ops = {
	.send_prepare = op_send_prepare,
	.log_commit = op_log_commit,
	.log_abort = op_log_abort,
	.send_commit = op_send_commit,
	.send_abort = op_send_abort,
	.backend = op_backend,
	.timer = op_timer,
	.finish = op_finish,
};

/* ---- starting ---- */

struct eff_walk {
	struct conversion *cv;
	enum share_state target;
	int err;
};

static int collect_eff(uint64_t start, uint64_t len, enum share_state state, void *arg)
{
	struct eff_walk *w = arg;
	struct conversion *cv = w->cv;
	if (state == w->target)
		return 0;
	uint64_t gr = cv->g->granule;
	/* Runs that touch are one range: the walk reports maximal runs, but two requested ranges can meet. */
	if (cv->n_eff && cv->eff[cv->n_eff - 1].offset + cv->eff[cv->n_eff - 1].length == start * gr) {
		cv->eff[cv->n_eff - 1].length += len * gr;
	} else {
		if (cv->n_eff == GMEM_RANGES_MAX)
			return -E2BIG;
		if (cv->n_eff == cv->cap_eff) {
			/* Grown as found: most conversions have a handful of ranges, not the 1,024 allowed. */
			size_t cap = MIN(GMEM_RANGES_MAX, cv->cap_eff ? cv->cap_eff * 2 : cv->n_ranges + 4);
			struct conv_range *e = realloc(cv->eff, cap * sizeof(*e));
			if (!e)
				return -ENOMEM;
			cv->eff = e;
			cv->cap_eff = cap;
		}
		cv->eff[cv->n_eff].offset = start * gr;
		cv->eff[cv->n_eff].length = len * gr;
		cv->n_eff++;
	}
	cv->bytes += len * gr;
	return 0;
}

/* Where an iommu attachment meets a changing range: what a commit it does not ack leaves quarantined. */
static int add_iommu_range(struct conv_part *p, const struct attachment *a, const struct conv_range *r)
{
	struct conv_range *grown = realloc(p->iommu_ranges, (p->n_iommu + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	p->iommu_ranges = grown;
	uint64_t lo = MAX(a->offset, r->offset), hi = MIN(a->offset + a->length, r->offset + r->length);
	grown[p->n_iommu].offset = lo;
	grown[p->n_iommu].length = hi - lo;
	p->n_iommu++;
	p->iommu = true;
	return 0;
}

static int add_part(struct conversion *cv, struct client *c, enum twopc_role role)
{
	struct conv_part *p = &cv->parts[cv->n_parts];
	struct twopc_part *tp = &cv->tparts[cv->n_parts];

	memset(p, 0, sizeof(*p));
	memset(tp, 0, sizeof(*tp));
	/* Counted at once, so conv_free frees what it holds whichever step below fails. */
	cv->n_parts++;
	tp->role = role;
	tp->user = p;
	p->pidfd = -EBADF;
	p->client = c;
	p->client_id = c->id;
	p->pid = c->pid;
	snprintf(p->name, sizeof(p->name), "%s", c->name);
	p->ranges = calloc(cv->n_eff, sizeof(*p->ranges));
	if (!p->ranges)
		return -ENOMEM;
	/* A vmm answers for the whole guest; a device for the changing ranges its attachments touch. */
	for (size_t i = 0; i < cv->n_eff; i++) {
		bool mine = role == TP_ROLE_VMM;
		list_for_each(pos, &c->attachments) {
			struct attachment *a = list_entry(pos, struct attachment, client_node);
			if (a->guest == cv->g && overlaps(a->offset, a->length, cv->eff[i].offset, cv->eff[i].length)) {
				mine = true;
				if (role == TP_ROLE_DEVICE && a->kind == GMEM_ATTACH_IOMMU && cv->to_private &&
				    add_iommu_range(p, a, &cv->eff[i]) < 0)
					return -ENOMEM;
			}
		}
		if (mine)
			p->ranges[p->n_ranges++] = cv->eff[i];
	}
	/* Taken now: it may disconnect (closing its pidfd) before it fails to ack, and still have its mappings. */
	if (p->iommu && c->pidfd >= 0) {
		p->pidfd = fcntl(c->pidfd, F_DUPFD_CLOEXEC, 3);
		if (p->pidfd < 0)
			return negative_errno();
	}
	return 0;
}

static bool client_touches(struct conversion *cv, struct client *c)
{
	list_for_each(pos, &c->attachments) {
		struct attachment *a = list_entry(pos, struct attachment, client_node);
		if (a->guest != cv->g)
			continue;
		for (size_t i = 0; i < cv->n_eff; i++)
			if (overlaps(a->offset, a->length, cv->eff[i].offset, cv->eff[i].length))
				return true;
	}
	return false;
}

/* A quarantined range stays private: converting it back would hand the host memory a device may still
 * write. */
static int check_quarantine(struct manager *m, const struct guest *g, const struct conv_range *ranges, size_t n,
			    char *errmsg, size_t errlen)
{
	for (size_t i = 0; i < n; i++)
		if (quarantine_overlaps(m, g, ranges[i].offset, ranges[i].length, errmsg, errlen))
			return -EHWPOISON;
	return 0;
}

static int start(struct conversion *cv, char *errmsg, size_t errlen)
{
	struct manager *m = cv->m;
	struct guest *g = cv->g;
	struct eff_walk w = { .cv = cv, .target = cv->to_private ? SHARE_PRIVATE : SHARE_SHARED };
	int r;

	cv->started = true;
	list_add_tail(&m->active, &cv->active_node);
	notify_changed(m->notify);
	for (size_t i = 0; i < cv->n_ranges; i++) {
		r = sharemap_walk(g->map, cv->ranges[i].offset / g->granule, cv->ranges[i].length / g->granule,
				  collect_eff, &w);
		if (r < 0)
			return r;
	}
	/* Checked again here: a process may have been attached while this conversion waited its turn, and a
	 * conversion ahead of it may have left a range quarantined. Forced, a process is not asked anyway: it
	 * faults like every other holder. */
	if (!cv->to_private) {
		r = check_quarantine(m, g, cv->eff, cv->n_eff, errmsg, errlen);
		if (r < 0)
			return r;
	}
	if (cv->to_private && !cv->force) {
		r = pid_attach_check_private(g, cv->eff, cv->n_eff, errmsg, errlen);
		if (r < 0)
			return r;
	}
	watch_event(cv, 1);
	if (cv->n_eff == 0) {
		/* Nothing changes: nobody needs to hear about it. */
		finish(cv, GMEM_COMMITTED);
		return 0;
	}

	size_t max = m->n_clients;
	cv->parts = calloc(max ? max : 1, sizeof(*cv->parts));
	cv->tparts = calloc(max ? max : 1, sizeof(*cv->tparts));
	if (!cv->parts || !cv->tparts)
		return -ENOMEM;
	if (cv->force) {
		cv->not_asked = calloc(GMEM_REFUSALS_MAX, sizeof(*cv->not_asked));
		if (!cv->not_asked)
			return -ENOMEM;
	}
	list_for_each(pos, &m->clients) {
		struct client *c = list_entry(pos, struct client, node);
		if (c != g->lease && !client_touches(cv, c))
			continue;
		if (cv->force) {
			if (cv->n_not_asked < GMEM_REFUSALS_MAX) {
				struct gmem_wire_party *na = &cv->not_asked[cv->n_not_asked++];
				na->client_id = c->id;
				na->pid = (uint64_t)c->pid;
				snprintf(na->client_name, sizeof(na->client_name), "%s", c->name);
			}
			cv->n_not_asked_total++;
			continue;
		}
		r = add_part(cv, c, c == g->lease ? TP_ROLE_VMM : TP_ROLE_DEVICE);
		if (r < 0)
			return r;
	}
	if (cv->force)
		log_warning("conversion %llu of '%s' to %s is forced: %zu holders were not asked (requested by pid %d)",
			    (unsigned long long)cv->seq, g->name, cv->to_private ? "private" : "shared",
			    cv->n_not_asked_total, (int)cv->requester_pid);
	for (size_t i = 0; i < cv->n_parts; i++)
		cv->tparts[i].user = &cv->parts[i];

	/* Not shared from the prepare of a to-private conversion on: before anyone hears of it. */
	if (cv->to_private)
		pubmap_set(g->pub, cv->eff, cv->n_eff, false);
	cv->tp.prepare_timeout_ms = m->prepare_timeout_ms;
	cv->tp.ack_timeout_ms = m->ack_timeout_ms;
	twopc_init(&cv->tp, cv->to_private, cv->tparts, cv->n_parts, &engine_ops, cv);
	/* Before any prepare: replay must know every conversion a participant may be in doubt about. */
	r = jstate_append(m, begin_record(cv));
	if (r < 0)
		return r;
	cv->journaled = true;
	cv->t_prepare_us = now_us();
	twopc_event(&cv->tp, TE_START, NULL);
	test_hook("begin");
	return 0;
}

static void start_next(struct manager *m, struct guest *g)
{
	while (!list_empty(&g->conversions)) {
		struct conversion *cv = list_entry(g->conversions.next, struct conversion, node);
		if (cv->started)
			return;
		char why[GMEM_TEXT_MAX] = "gmemd could not start the conversion";
		int r = start(cv, why, sizeof(why));
		if (r == 0)
			return;
		/* Refused or out of memory at start: this one fails alone; the queue goes on. */
		log_errno(r == -EBUSY ? LOG_INFO : LOG_ERR, r, "conversion %llu of '%s' could not start: %s",
			  (unsigned long long)cv->seq, g->name, why);
		if (cv->requester)
			client_send_error(cv->requester, true, cv->req_id, r, why);
		conv_free(cv);
	}
	(void)m;
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
	struct conversion *cv = arg;
	struct manager *m = cv->m;
	struct guest *g = cv->g;
	(void)fd;
	(void)what;
	conv_free(cv);
	start_next(m, g);
}

/* ---- requests ---- */

static int cmp_range(const void *a, const void *b)
{
	const struct gmem_wire_range *x = a, *y = b;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

int conversion_request(struct manager *m, struct client *c, uint64_t req_id, struct guest *g,
		       const struct gmem_convert_args *a, char *errmsg, size_t errlen)
{
	if (a->force && !m->bops->enforcing) {
		snprintf(errmsg, errlen, "force needs an enforcing backend (kmod): memfd cannot take memory away");
		return -EOPNOTSUPP;
	}
	if (a->n_ranges == 0) {
		snprintf(errmsg, errlen, "no ranges");
		return -EINVAL;
	}
	if (c->n_converts >= GMEM_CONVERTS_MAX) {
		snprintf(errmsg, errlen, "at most %d conversions in flight per connection", GMEM_CONVERTS_MAX);
		return -EAGAIN;
	}
	for (size_t i = 0; i < a->n_ranges; i++) {
		int r = guest_check_range(g, a->ranges[i].offset, a->ranges[i].length);
		if (r < 0) {
			snprintf(errmsg, errlen, "range %zu [%llu, +%llu) %s", i, (unsigned long long)a->ranges[i].offset,
				 (unsigned long long)a->ranges[i].length,
				 r == -EINVAL ? "is not aligned to the granule" : "ends past the guest's size");
			return r;
		}
	}

	/* Refused at once when it is clear already; start() checks again for what changed while queued. */
	if (a->target == GMEM_SHARED) {
		int r = check_quarantine(m, g, (const struct conv_range *)a->ranges, a->n_ranges, errmsg, errlen);
		if (r < 0)
			return r;
	}
	if (a->target == GMEM_PRIVATE && !a->force) {
		int r = pid_attach_check_private(g, (const struct conv_range *)a->ranges, a->n_ranges, errmsg, errlen);
		if (r < 0)
			return r;
	}

	struct conversion *cv = calloc(1, sizeof(*cv));
	if (!cv)
		return -ENOMEM;
	list_init(&cv->node);
	list_init(&cv->active_node);
	cv->m = m;
	cv->g = g;
	cv->seq = ++m->next_conv_seq;
	cv->requester = c;
	cv->requester_pid = c->pid;
	cv->req_id = req_id;
	cv->to_private = a->target == GMEM_PRIVATE;
	cv->zero = a->content == 1;
	cv->force = a->force;
	cv->t0_us = now_us();
	cv->ranges = calloc(a->n_ranges, sizeof(*cv->ranges));
	cv->timer = evtimer_new(m->base, on_timer, cv);
	cv->reap = event_new(m->base, -1, 0, on_reap, cv);
	if (!cv->ranges || !cv->timer || !cv->reap) {
		cv->requester = NULL;
		conv_free(cv);
		return -ENOMEM;
	}
	/* Sorted and merged, so the map is walked once per byte and overlapping ranges count once. */
	struct gmem_wire_range *sorted = malloc(a->n_ranges * sizeof(*sorted));
	if (!sorted) {
		cv->requester = NULL;
		conv_free(cv);
		return -ENOMEM;
	}
	memcpy(sorted, a->ranges, a->n_ranges * sizeof(*sorted));
	qsort(sorted, a->n_ranges, sizeof(*sorted), cmp_range);
	for (size_t i = 0; i < a->n_ranges; i++) {
		struct conv_range *last = cv->n_ranges ? &cv->ranges[cv->n_ranges - 1] : NULL;
		if (last && sorted[i].offset <= last->offset + last->length) {
			uint64_t end = MAX(last->offset + last->length, sorted[i].offset + sorted[i].length);
			last->length = end - last->offset;
		} else {
			cv->ranges[cv->n_ranges].offset = sorted[i].offset;
			cv->ranges[cv->n_ranges].length = sorted[i].length;
			cv->n_ranges++;
		}
	}
	free(sorted);

	c->n_converts++;
	list_add_tail(&g->conversions, &cv->node);
	watch_event(cv, 0);
	if (g->conversions.next == &cv->node)
		start_next(m, g);
	return 0;
}

static struct conversion *find_active(struct manager *m, uint64_t epoch, uint64_t seq)
{
	if (epoch != m->epoch)
		return NULL;
	list_for_each(pos, &m->active) {
		struct conversion *cv = list_entry(pos, struct conversion, active_node);
		if (cv->seq == seq)
			return cv;
	}
	return NULL;
}

static struct twopc_part *find_part(struct conversion *cv, struct client *c)
{
	for (size_t i = 0; i < cv->n_parts; i++)
		if (cv->parts[i].client == c)
			return &cv->tparts[i];
	return NULL;
}

/* The running conversion (epoch, seq) and this client's part in it, or -errno with the reason. */
static int find_participant(struct manager *m, struct client *c, uint64_t epoch, uint64_t seq, const char *what,
			    struct conversion **ret_cv, struct twopc_part **ret_tp, char *errmsg, size_t errlen)
{
	struct conversion *cv = find_active(m, epoch, seq);
	if (!cv || cv->finished) {
		snprintf(errmsg, errlen, "conversion %llu is not awaiting %s (it ended, or is of an earlier gmemd)",
			 (unsigned long long)seq, what);
		return -ESTALE;
	}
	struct twopc_part *tp = find_part(cv, c);
	if (!tp) {
		snprintf(errmsg, errlen, "this client is not a participant of conversion %llu", (unsigned long long)seq);
		return -ENOENT;
	}
	*ret_cv = cv;
	*ret_tp = tp;
	return 0;
}

int conversion_vote(struct manager *m, struct client *c, const struct gmem_vote_args *a, char *errmsg,
		    size_t errlen)
{
	struct conversion *cv;
	struct twopc_part *tp;
	int r = find_participant(m, c, a->epoch, a->seq, "votes", &cv, &tp, errmsg, errlen);
	if (r < 0)
		return r;
	if (tp->state != TPP_INVITED) {
		snprintf(errmsg, errlen, "this client already voted");
		return -EALREADY;
	}
	uint64_t took = (uint64_t)(now_us() - cv->t_prepare_us);
	if (!cv->slowest.client_id || took > cv->slowest.vote_us) {
		const struct conv_part *p = tp->user;
		cv->slowest = (struct conv_slowest){ .client_id = p->client_id, .vote_us = took, .pid = p->pid,
						     .name = p->name };
	}
	if (a->vote == 1) {
		int e = a->err[0] ? gmem_errno_from_name(a->err) : 0;
		tp->no_err = e ? e : EPERM;
		snprintf(tp->reason, sizeof(tp->reason), "%s", a->reason[0] ? a->reason : "refused");
	}
	r = twopc_event(&cv->tp, a->vote == 0 ? TE_VOTE_YES : TE_VOTE_NO, tp);
	if (r == 0)
		test_hook("vote");
	if (r == -ESTALE)
		snprintf(errmsg, errlen, "conversion %llu is past voting", (unsigned long long)a->seq);
	return r;
}

int conversion_ack(struct manager *m, struct client *c, const struct gmem_ack_args *a, char *errmsg,
		   size_t errlen)
{
	struct conversion *cv;
	struct twopc_part *tp;
	int r = find_participant(m, c, a->epoch, a->seq, "acks", &cv, &tp, errmsg, errlen);
	if (r < 0)
		return r;
	if (tp->state == TPP_ACKED) {
		snprintf(errmsg, errlen, "already acked");
		return -EALREADY;
	}
	if (tp->state != TPP_COMMITTING) {
		snprintf(errmsg, errlen, "no commit was sent to this client yet");
		return -ESTALE;
	}
	r = twopc_event(&cv->tp, TE_ACK, tp);
	if (r == 0)
		test_hook("ack");
	return r;
}

void conversion_client_gone(struct manager *m, struct client *c)
{
	list_for_each(pos, &m->guests.order) {
		struct guest *g = list_entry(pos, struct guest, order);
		list_for_each(p2, &g->conversions) {
			struct conversion *cv = list_entry(p2, struct conversion, node);
			if (cv->requester == c) {
				cv->requester = NULL;
				c->n_converts--;
			}
		}
	}
	list_for_each_safe(pos, &m->active) {
		struct conversion *cv = list_entry(pos, struct conversion, active_node);
		struct twopc_part *tp = find_part(cv, c);
		if (!tp)
			continue;
		((struct conv_part *)tp->user)->client = NULL;
		/* Its yes stands, but nobody can ask it any more whether it let go: on a backend that can, all
		 * its files of the guest are revoked when the commit is applied (not if it aborts). */
		struct conv_part *p = tp->user;
		if (!(tp->state == TPP_YES || tp->state == TPP_COMMITTING)) {
			free(p->gone_files); /* it had not voted yes: the conversion aborts, nothing to revoke */
			p->gone_files = NULL;
			p->n_gone_files = 0;
		}
		twopc_event(&cv->tp, tp->state == TPP_INVITED ? TE_GONE_UNVOTED : TE_GONE_VOTED, tp);
	}
}

void conversion_client_leaving(struct manager *m, struct client *c)
{
	/* client_kill drops the holder records at once, the reaper runs conversion_client_gone later: the
	 * files must be remembered here or the yes-voter that left would keep them. */
	list_for_each(pos, &m->active) {
		struct conversion *cv = list_entry(pos, struct conversion, active_node);
		struct twopc_part *tp = find_part(cv, c);
		if (!tp || !cv->to_private || !m->bops->holder_revoke)
			continue;
		struct conv_part *p = tp->user;
		if (tp->state != TPP_YES && tp->state != TPP_COMMITTING)
			continue;
		free(p->gone_files);
		if (audit_client_files(c, cv->g, &p->gone_files, &p->n_gone_files) < 0)
			log_errno(LOG_CRIT, -ENOMEM, "conversion %llu: cannot remember the files of client %llu",
				  (unsigned long long)cv->seq, (unsigned long long)c->id);
	}
}

void conversion_guest_release(struct guest *g)
{
	list_for_each_safe(pos, &g->conversions) {
		struct conversion *cv = list_entry(pos, struct conversion, node);
		cv->requester = NULL; /* gmemd is stopping: its clients are being freed */
		conv_free(cv);
	}
}

void conversion_guest_gone(struct manager *m, struct guest *g)
{
	list_for_each_safe(pos, &g->conversions) {
		struct conversion *cv = list_entry(pos, struct conversion, node);
		if (!cv->started) {
			if (cv->requester)
				client_send_error(cv->requester, true, cv->req_id, -ECANCELED,
						  "the guest was destroyed before the conversion started");
		} else if (!cv->finished) {
			/* Not yet decided: abort as usual. Decided: the decision stands and ends here, since
			 * the memory it was about is gone. */
			if (twopc_event(&cv->tp, TE_CANCEL, NULL) < 0)
				finish(cv, cv->tp.unverified ? GMEM_COMMITTED_UNVERIFIED : GMEM_COMMITTED);
		}
		conv_free(cv);
	}
	(void)m;
}

size_t conversion_list(struct manager *m, const struct client *who, struct gmem_wire_conversion *out, size_t max,
		       uint64_t *omitted)
{
	size_t n = 0;
	*omitted = 0;
	list_for_each(pos, &m->guests.order) {
		const struct guest *g = list_entry(pos, struct guest, order);
		if (list_empty(&g->conversions) || !(LISTING_SEES_ALL || (policy_perms(m, who, g) & PERM_SEE)))
			continue;
		list_for_each(p2, &g->conversions) {
			const struct conversion *cv = list_entry(p2, struct conversion, node);
			if (cv->finished)
				continue; /* listed with the recent ones already */
			if (n == max) {
				(*omitted)++;
				continue;
			}
			/* gmem_state_names: queued, preparing (votes and the decision), committing (waves, backend) */
			int state = !cv->started ? 0 : cv->tp.state <= TP_DECIDING ? 1 : 2;
			describe(cv, state, &out[n++]);
		}
	}
	return n;
}

int conversion_cancel(struct manager *m, struct client *admin, uint64_t epoch, uint64_t seq,
		      struct guest **ret_guest, char *errmsg, size_t errlen)
{
	if (epoch && epoch != m->epoch) {
		snprintf(errmsg, errlen, "conversion %llu is of an earlier gmemd (epoch %llu, this one is %llu)",
			 (unsigned long long)seq, (unsigned long long)epoch, (unsigned long long)m->epoch);
		return -ESTALE;
	}
	list_for_each(pos, &m->guests.order) {
		struct guest *g = list_entry(pos, struct guest, order);
		list_for_each_safe(p2, &g->conversions) {
			struct conversion *cv = list_entry(p2, struct conversion, node);
			if (cv->seq != seq)
				continue;
			*ret_guest = g;
			if (!cv->started) {
				/* Still queued: it never asked anyone, so it just leaves the queue. */
				if (cv->requester)
					client_send_error(cv->requester, true, cv->req_id, -ECANCELED,
							  "cancelled by an operator before it started");
				watch_event(cv, 4);
				conv_free(cv);
				return 0;
			}
			if (cv->finished)
				break;
			cv->cancel_client_id = admin->id;
			cv->cancel_pid = admin->pid;
			int r = twopc_event(&cv->tp, TE_CANCEL, NULL);
			if (r < 0) {
				cv->cancel_client_id = 0;
				snprintf(errmsg, errlen, "conversion %llu is decided (%s): it can no longer be cancelled",
					 (unsigned long long)seq, twopc_state_names[cv->tp.state]);
				return -EALREADY;
			}
			return 0;
		}
	}
	snprintf(errmsg, errlen, "no conversion %llu is queued or in flight", (unsigned long long)seq);
	return -ENOENT;
}

bool conversion_inflight_ranges(const struct guest *g, const struct conv_range **ret, size_t *ret_n)
{
	if (list_empty(&g->conversions))
		return false;
	const struct conversion *cv = list_entry(g->conversions.next, struct conversion, node);
	if (!cv->started || cv->finished)
		return false;
	*ret = cv->eff;
	*ret_n = cv->n_eff;
	return true;
}

bool conversion_busy(const struct guest *g, uint64_t off, uint64_t len)
{
	if (list_empty(&g->conversions))
		return false;
	const struct conversion *cv = list_entry(g->conversions.next, struct conversion, node);
	if (!cv->started || cv->finished)
		return false;
	for (size_t i = 0; i < cv->n_eff; i++)
		if (overlaps(off, len, cv->eff[i].offset, cv->eff[i].length))
			return true;
	return false;
}

void conversion_snapshot(struct manager *m, struct journal *j)
{
	list_for_each(pos, &m->active) {
		struct conversion *cv = list_entry(pos, struct conversion, active_node);
		if (!cv->journaled || cv->finished)
			continue;
		struct json_object *o = begin_record(cv);
		journal_snapshot_add(j, o);
		json_object_put(o);
		if (cv->tp.state >= TP_WAVE1 && cv->tp.state <= TP_WAVE3) {
			o = decide_record(cv, true);
			journal_snapshot_add(j, o);
			json_object_put(o);
		}
		if (cv->applied) {
			o = conv_record(cv, "applied");
			journal_snapshot_add(j, o);
			json_object_put(o);
		}
	}
}
