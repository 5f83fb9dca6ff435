/* SPDX-License-Identifier: MIT */
/*
 * test-twopc: the conversion engine (daemon/twopc.c), driven through a recording fake of its ops.
 *
 * Every callback the engine makes, and every event fed to it, is appended to a trace. check_run() turns
 * the promises of twopc.h into checks on one trace (a conversion happens for everyone or for no one; the
 * decision is written before anyone hears commit; wave 1 -> backend -> wave 3; nobody gone is sent
 * anything; finish exactly once, last, with the timer disarmed; unverified and timed_out as recorded).
 *
 * The exhaustive test explores, for both directions and several participant sets, every combination
 * of participant behaviours and every interleaving of the participants' events (a depth-first search
 * over the choices a scheduler has at each step, replayed from the start for each run), with the
 * backend finishing synchronously (inside ops->backend) or asynchronously, and the timer firing only
 * when nothing else can happen or racing everything else. At every step each event that has no table
 * row in the current state is also fed and must be -ESTALE and change nothing.
 *
 * Every row of twopc_table[] must be seen taken at least once (test_every_row_was_taken, last): a row
 * added to the table without a test that takes it fails here.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "twopc.h"

#define MAXP 3
#define TRACE_MAX 256
#define MAX_HOOKS 4
#define MAX_STEPS 48
#define MAX_ROWS 64

/* ---- the trace ---- */

enum rk { R_FEED, R_PREPARE, R_LOG_COMMIT, R_LOG_ABORT, R_COMMIT, R_ABORT, R_BACKEND, R_TIMER, R_FINISH };
static const char *const rk_names[] = {
	[R_FEED] = "feed",	   [R_PREPARE] = "prepare", [R_LOG_COMMIT] = "log_commit", [R_LOG_ABORT] = "log_abort",
	[R_COMMIT] = "commit",	   [R_ABORT] = "abort",	    [R_BACKEND] = "backend",	   [R_TIMER] = "timer",
	[R_FINISH] = "finish",
};

struct rec {
	enum rk kind;
	int part;		/* participant index, or -1 */
	int wave;		/* R_COMMIT */
	uint64_t ms;		/* R_TIMER */
	enum twopc_event ev;	/* R_FEED */
	int ret;		/* R_FEED: what twopc_event returned; R_LOG_COMMIT: what log_commit returned */
	bool nested;		/* R_FEED: fed from inside an ops callback */
	enum twopc_state state; /* R_FEED: the state before; a callback: the state during it */
};

/* A callback that feeds an event back into the engine (re-entrancy). */
struct hook {
	enum rk on;
	int on_part;		/* -1: any participant */
	enum twopc_event ev;
	int part;		/* the event's participant: -1 none, -2 the callback's */
	bool repeat;		/* fire every time, not just once */
	bool fired;
};

struct fake {
	struct twopc t;
	struct twopc_part parts[MAXP];
	struct rec tr[TRACE_MAX];
	size_t len;
	int log_commit_result;
	bool sync_backend;	/* ops->backend feeds TE_BACKEND_DONE itself */
	bool backend_pending;	/* async: backend called, TE_BACKEND_DONE not fed yet */
	bool timer_armed;
	bool got_prepare[MAXP], got_commit[MAXP];
	struct hook hooks[MAX_HOOKS];
	size_t n_hooks;
	/* The top-level event in progress, and what was fed re-entrantly during it, to tell which table
	 * row an action seen through a callback belongs to. */
	enum twopc_state feed_from;
	enum twopc_event feed_ev;
	enum twopc_event nested[8];
	size_t n_nested;
};

static unsigned long row_hits[MAX_ROWS];

static const struct twopc_transition *find_row(enum twopc_state s, enum twopc_event ev)
{
	for (size_t i = 0; i < twopc_table_len; i++)
		if (twopc_table[i].from == s && twopc_table[i].event == ev)
			return &twopc_table[i];
	return NULL;
}

static void hit(const struct twopc_transition *r)
{
	size_t i = (size_t)(r - twopc_table);
	if (i < MAX_ROWS)
		row_hits[i]++;
}

static bool is_derived(enum twopc_event ev)
{
	return ev == TE_ALL_VOTED || ev == TE_LOGGED || ev == TE_LOG_FAILED || ev == TE_WAVE_DONE;
}

/* An action seen through a callback: the row is the top-level event's own if it has this action and
 * target, else the one row with that action and target whose event is derived or was fed re-entrantly
 * during this call. Ambiguous: not counted. */
static void attribute(struct fake *f, enum twopc_action a)
{
	enum twopc_state to = f->t.state;
	const struct twopc_transition *d = find_row(f->feed_from, f->feed_ev);
	if (d && d->action == a && d->to == to) {
		hit(d);
		return;
	}
	const struct twopc_transition *only = NULL;
	int n = 0;
	for (size_t i = 0; i < twopc_table_len; i++) {
		const struct twopc_transition *r = &twopc_table[i];
		if (r->action != a || r->to != to)
			continue;
		bool fed = is_derived(r->event);
		for (size_t k = 0; k < f->n_nested; k++)
			fed |= f->nested[k] == r->event;
		if (fed) {
			only = r;
			n++;
		}
	}
	if (n == 1)
		hit(only);
}

static struct fake *fake_of(struct twopc *t)
{
	return t->user;
}

static int pidx(struct fake *f, struct twopc_part *p)
{
	if (!p || p < f->parts || p >= f->parts + f->t.n_parts)
		fail_msg("a callback named a participant that is not one of this conversion's");
	return (int)(p - f->parts);
}

static struct rec *push(struct fake *f, enum rk kind, int part)
{
	if (f->len >= TRACE_MAX)
		fail_msg("trace overflow: more than %d records (a loop in the engine?)", TRACE_MAX);
	struct rec *r = &f->tr[f->len++];
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->part = part;
	r->ev = _TE_MAX;
	r->state = f->t.state;
	return r;
}

static void feed_nested(struct fake *f, enum twopc_event ev, int pi)
{
	size_t at = f->len;
	struct rec *r = push(f, R_FEED, pi);
	r->ev = ev;
	r->nested = true;
	/* Queued first in this call, it is handled right after the transition in progress, so in this
	 * state: count its row. (Later ones may find the state changed by the ones ahead of them.) */
	if (f->n_nested == 0 && find_row(f->t.state, ev))
		hit(find_row(f->t.state, ev));
	if (f->n_nested < sizeof(f->nested) / sizeof(f->nested[0]))
		f->nested[f->n_nested++] = ev;
	if (ev == TE_BACKEND_DONE)
		f->backend_pending = false;
	int ret = twopc_event(&f->t, ev, pi >= 0 ? &f->parts[pi] : NULL);
	f->tr[at].ret = ret;
	if (ret != 0)
		fail_msg("%s fed from inside a callback was not queued: %d", twopc_event_names[ev], ret);
}

static void run_hooks(struct fake *f, enum rk kind, int part)
{
	for (size_t i = 0; i < f->n_hooks; i++) {
		struct hook *h = &f->hooks[i];
		if (h->on != kind || (h->on_part >= 0 && h->on_part != part) || (h->fired && !h->repeat))
			continue;
		h->fired = true;
		feed_nested(f, h->ev, h->part == -2 ? part : h->part);
	}
}

static void op_send_prepare(struct twopc *t, struct twopc_part *p)
{
	struct fake *f = fake_of(t);
	int i = pidx(f, p);
	push(f, R_PREPARE, i);
	f->got_prepare[i] = true;
	attribute(f, TA_SEND_PREPARE);
	run_hooks(f, R_PREPARE, i);
}

static int op_log_commit(struct twopc *t)
{
	struct fake *f = fake_of(t);
	push(f, R_LOG_COMMIT, -1)->ret = f->log_commit_result;
	attribute(f, TA_LOG_COMMIT);
	run_hooks(f, R_LOG_COMMIT, -1);
	return f->log_commit_result;
}

static void op_log_abort(struct twopc *t)
{
	struct fake *f = fake_of(t);
	push(f, R_LOG_ABORT, -1);
	attribute(f, TA_ABORT);
	run_hooks(f, R_LOG_ABORT, -1);
}

static void op_send_commit(struct twopc *t, struct twopc_part *p, int wave)
{
	struct fake *f = fake_of(t);
	int i = pidx(f, p);
	push(f, R_COMMIT, i)->wave = wave;
	f->got_commit[i] = true;
	attribute(f, wave == 1 ? TA_SEND_WAVE1 : TA_SEND_WAVE3);
	run_hooks(f, R_COMMIT, i);
}

static void op_send_abort(struct twopc *t, struct twopc_part *p)
{
	struct fake *f = fake_of(t);
	int i = pidx(f, p);
	push(f, R_ABORT, i);
	run_hooks(f, R_ABORT, i);
}

static void op_backend(struct twopc *t)
{
	struct fake *f = fake_of(t);
	push(f, R_BACKEND, -1);
	attribute(f, TA_BACKEND);
	run_hooks(f, R_BACKEND, -1);
	if (f->sync_backend)
		feed_nested(f, TE_BACKEND_DONE, -1);
	else
		f->backend_pending = true;
}

static void op_timer(struct twopc *t, uint64_t ms)
{
	struct fake *f = fake_of(t);
	push(f, R_TIMER, -1)->ms = ms;
	f->timer_armed = ms > 0;
}

static void op_finish(struct twopc *t)
{
	struct fake *f = fake_of(t);
	push(f, R_FINISH, -1);
	if (t->state == TP_COMMITTED)
		attribute(f, TA_FINISH_COMMIT);
	run_hooks(f, R_FINISH, -1);
}

static const struct twopc_ops fake_ops = {
	.send_prepare = op_send_prepare,
	.log_commit = op_log_commit,
	.log_abort = op_log_abort,
	.send_commit = op_send_commit,
	.send_abort = op_send_abort,
	.backend = op_backend,
	.timer = op_timer,
	.finish = op_finish,
};

static void fake_init(struct fake *f, bool to_private, const enum twopc_role *roles, size_t n)
{
	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < n; i++)
		f->parts[i].role = roles[i];
	twopc_init(&f->t, to_private, f->parts, n, &fake_ops, f);
}

static void add_hook(struct fake *f, enum rk on, int on_part, enum twopc_event ev, int part, bool repeat)
{
	assert_true(f->n_hooks < MAX_HOOKS);
	f->hooks[f->n_hooks++] = (struct hook){ .on = on, .on_part = on_part, .ev = ev, .part = part, .repeat = repeat };
}

/*
 * Feeds one event from outside (as the daemon's event loop does), records it, counts the row it takes,
 * and checks the table's promise: accepted (0) exactly when the state has a row for it; otherwise
 * -ESTALE with no callback and no change of state.
 */
static int feed(struct fake *f, enum twopc_event ev, int pi)
{
	enum twopc_state from = f->t.state;
	const struct twopc_transition *row = find_row(from, ev);
	size_t at = f->len;
	push(f, R_FEED, pi)->ev = ev;
	f->feed_from = from;
	f->feed_ev = ev;
	f->n_nested = 0;
	if (ev == TE_TIMEOUT)
		f->timer_armed = false; /* a one-shot timer that fired */
	if (ev == TE_BACKEND_DONE)
		f->backend_pending = false;
	int ret = twopc_event(&f->t, ev, pi >= 0 ? &f->parts[pi] : NULL);
	f->tr[at].ret = ret;
	if (row) {
		if (ret != 0)
			fail_msg("%s in %s has a row but returned %d", twopc_event_names[ev], twopc_state_names[from], ret);
		hit(row);
	} else {
		if (ret != -ESTALE)
			fail_msg("%s in %s has no row but returned %d, not -ESTALE", twopc_event_names[ev],
				 twopc_state_names[from], ret);
		if (f->len != at + 1)
			fail_msg("stale %s in %s made a callback (%s)", twopc_event_names[ev], twopc_state_names[from],
				 rk_names[f->tr[at + 1].kind]);
		if (f->t.state != from)
			fail_msg("stale %s moved %s to %s", twopc_event_names[ev], twopc_state_names[from],
				 twopc_state_names[f->t.state]);
	}
	return ret;
}

static size_t count(const struct fake *f, enum rk kind, int part)
{
	size_t n = 0;
	for (size_t i = 0; i < f->len; i++)
		if (f->tr[i].kind == kind && (part < -1 || f->tr[i].part == part))
			n++;
	return n;
}
#define ANY (-2)

static void dump_trace(const struct twopc *t, const struct rec *tr, size_t len)
{
	print_error("  %s, %zu participants:", t->to_private ? "to-private" : "to-shared", t->n_parts);
	for (size_t i = 0; i < t->n_parts; i++)
		print_error(" p%zu=%s", i, t->parts[i].role == TP_ROLE_VMM ? "vmm" : "device");
	print_error("\n");
	for (size_t i = 0; i < len; i++) {
		const struct rec *r = &tr[i];
		char who[16] = "";
		if (r->part >= 0)
			snprintf(who, sizeof(who), " p%d", r->part);
		switch (r->kind) {
		case R_FEED:
			print_error("  %3zu %s%s %s%s in %s -> %d\n", i, r->nested ? "  (re-entrant) " : "",
				    rk_names[r->kind], r->ev < _TE_MAX ? twopc_event_names[r->ev] : "?", who,
				    twopc_state_names[r->state], r->ret);
			break;
		case R_COMMIT:
			print_error("  %3zu     %s%s wave %d\n", i, rk_names[r->kind], who, r->wave);
			break;
		case R_TIMER:
			print_error("  %3zu     timer %llu\n", i, (unsigned long long)r->ms);
			break;
		case R_LOG_COMMIT:
			print_error("  %3zu     log_commit -> %d\n", i, r->ret);
			break;
		default:
			print_error("  %3zu     %s%s (%s)\n", i, rk_names[r->kind], who, twopc_state_names[r->state]);
		}
	}
}

/* ---- the checker ---- */

/* DESIGN, "Why a two-phase commit": to-private, the devices let go before the backend and the vmm acks
 * after it; to-shared, the vmm first and the devices map only after the backend. Kept independent of
 * twopc_wave_of() on purpose. */
static int expected_wave(bool to_private, enum twopc_role role)
{
	if (to_private)
		return role == TP_ROLE_DEVICE ? 1 : 3;
	return role == TP_ROLE_VMM ? 1 : 3;
}

struct ck {
	long prep_n[MAXP], commit_n[MAXP], abort_n[MAXP];
	long commit_at[MAXP], gone_at[MAXP], ack_at[MAXP];
	bool voted_yes[MAXP], voted_no[MAXP];
	long start_at, backend_done_at;
	bool prep_timeout;
};

/* An accepted event, at trace index `at`, fed while the engine was in `state`. */
static void ck_apply(struct ck *c, enum twopc_event ev, int p, long at, enum twopc_state state)
{
	bool has_p = p >= 0 && p < MAXP;
	switch (ev) {
	case TE_START:
		c->start_at = at;
		break;
	case TE_VOTE_YES:
		if (has_p)
			c->voted_yes[p] = true;
		break;
	case TE_VOTE_NO:
		if (has_p)
			c->voted_no[p] = true;
		break;
	case TE_GONE_UNVOTED:
	case TE_GONE_VOTED:
		if (has_p && c->gone_at[p] < 0)
			c->gone_at[p] = at;
		break;
	case TE_ACK:
		if (has_p && c->commit_at[p] >= 0 && c->ack_at[p] < 0)
			c->ack_at[p] = at;
		break;
	case TE_TIMEOUT:
		if (state == TP_PREPARING)
			c->prep_timeout = true;
		break;
	case TE_BACKEND_DONE:
		if (c->backend_done_at < 0)
			c->backend_done_at = at;
		break;
	default:
		break;
	}
}

#define BAD(...)                                                              \
	do {                                                                  \
		int o_ = snprintf(buf, bufsz, "record %zu: ", i);             \
		snprintf(buf + o_, bufsz - (size_t)o_, __VA_ARGS__);          \
		return buf;                                                   \
	} while (0)

/*
 * The verdict on one run: NULL if the trace keeps every promise, else why not. t is the engine after
 * the run (its outcome, parts and flags are checked against the trace).
 *
 * An event fed from inside a callback is queued: the engine handles it after the transition in
 * progress, so before its next change of state. It is taken to have happened at the first later
 * record made in another state (or at the next top-level event).
 */
static const char *check_run(const struct twopc *t, const struct rec *tr, size_t len, char *buf, size_t bufsz)
{
	size_t n = t->n_parts, i = 0;
	const struct twopc_part *parts = t->parts;
	struct ck c;
	long finish_at = -1, log_commit_at = -1, log_abort_at = -1, backend_at = -1;
	int log_commit_res = 0, n_finish = 0, n_log_commit = 0, n_log_abort = 0, n_backend = 0;
	int any_commit = -1, any_abort = -1;
	bool armed = false, prep_armed = false, in_feed = false, feed_cancel = false, abort_cancel = false;
	enum twopc_event feed_ev = _TE_MAX, backend_ev = _TE_MAX, finish_ev = _TE_MAX;
	struct { enum twopc_event ev; int part; enum twopc_state state; } pend[16];
	size_t n_pend = 0;

	memset(&c, 0, sizeof(c));
	for (size_t p = 0; p < MAXP; p++)
		c.commit_at[p] = c.gone_at[p] = c.ack_at[p] = -1;
	c.start_at = c.backend_done_at = -1;
	if (n > MAXP)
		BAD("more participants than the checker handles");

	for (i = 0; i < len; i++) {
		const struct rec *r = &tr[i];
		bool callback = r->kind != R_FEED;

		if (n_pend && ((!callback && !r->nested) || (callback && r->state != pend[0].state))) {
			for (size_t k = 0; k < n_pend; k++)
				ck_apply(&c, pend[k].ev, pend[k].part, (long)i, pend[k].state);
			n_pend = 0;
		}
		if (r->part >= (int)n)
			BAD("participant p%d out of range", r->part);

		if (!callback) {
			if (r->nested) {
				if (!in_feed)
					BAD("a re-entrant event outside any callback");
				if (n_pend < sizeof(pend) / sizeof(pend[0]))
					pend[n_pend++] = (typeof(pend[0])){ r->ev, r->part, r->state };
				feed_cancel |= r->ev == TE_CANCEL;
				continue;
			}
			in_feed = true;
			feed_ev = r->ev;
			feed_cancel = r->ev == TE_CANCEL;
			if (finish_at >= 0 && r->ret != -ESTALE)
				BAD("%s fed after finish returned %d, not -ESTALE", twopc_event_names[r->ev], r->ret);
			if (r->ret == 0 && r->ev == TE_TIMEOUT && (r->state == TP_WAVE1 || r->state == TP_WAVE3)) {
				/* A wave ends when everyone in it acked or left (TE_WAVE_DONE), not at the timeout. */
				int wave = r->state == TP_WAVE1 ? 1 : 3;
				bool waiting = false;
				for (size_t q = 0; q < n; q++)
					waiting |= expected_wave(t->to_private, parts[q].role) == wave && c.commit_n[q] &&
						   c.ack_at[q] < 0 && c.gone_at[q] < 0;
				if (!waiting)
					BAD("the ack timeout was taken in wave %d, but everyone in it had acked or left", wave);
			}
			if (r->ret == 0)
				ck_apply(&c, r->ev, r->part, (long)i, r->state);
			continue;
		}

		/* A callback. */
		int p = r->part;
		if (!in_feed)
			BAD("%s outside twopc_event", rk_names[r->kind]);
		if (finish_at >= 0)
			BAD("%s after finish", rk_names[r->kind]);
		if (p >= 0) {
			if (c.gone_at[p] >= 0)
				BAD("%s to p%d after it went gone", rk_names[r->kind], p);
			if (r->kind != R_PREPARE && c.prep_n[p] == 0)
				BAD("%s to p%d before it was asked to prepare", rk_names[r->kind], p);
		}
		switch (r->kind) {
		case R_PREPARE:
			if (feed_ev != TE_START)
				BAD("prepare to p%d outside TE_START", p);
			if (++c.prep_n[p] > 1)
				BAD("prepare sent twice to p%d", p);
			break;
		case R_TIMER:
			armed = r->ms > 0;
			if (r->ms > 0) {
				if (r->state == TP_PREPARING && r->ms != t->prepare_timeout_ms)
					BAD("prepare timer armed for %llu ms, not %llu", (unsigned long long)r->ms,
					    (unsigned long long)t->prepare_timeout_ms);
				else if ((r->state == TP_WAVE1 || r->state == TP_WAVE3) && r->ms != t->ack_timeout_ms)
					BAD("ack timer armed for %llu ms, not %llu", (unsigned long long)r->ms,
					    (unsigned long long)t->ack_timeout_ms);
				else if (r->state != TP_PREPARING && r->state != TP_WAVE1 && r->state != TP_WAVE3)
					BAD("timer armed in %s", twopc_state_names[r->state]);
				if (r->state == TP_PREPARING && feed_ev == TE_START)
					prep_armed = true;
			}
			break;
		case R_LOG_COMMIT:
			if (++n_log_commit > 1)
				BAD("commit decision logged twice");
			if (log_abort_at >= 0)
				BAD("commit decision logged after the abort");
			for (size_t q = 0; q < n; q++)
				if (!c.voted_yes[q])
					BAD("commit decided though p%zu did not vote yes", q);
			log_commit_at = (long)i;
			log_commit_res = r->ret;
			break;
		case R_LOG_ABORT:
			if (++n_log_abort > 1)
				BAD("abort logged twice");
			if (log_commit_at >= 0 && log_commit_res >= 0)
				BAD("abort logged after the commit decision was written");
			log_abort_at = (long)i;
			abort_cancel = feed_cancel;
			break;
		case R_COMMIT:
			if (any_abort >= 0)
				BAD("commit to p%d after abort to p%d: a conversion happens for everyone or for no one",
				    p, any_abort);
			if (log_commit_at < 0 || log_commit_res < 0)
				BAD("commit to p%d before the commit decision was written", p);
			if (r->wave != expected_wave(t->to_private, parts[p].role))
				BAD("commit to p%d (%s) in wave %d", p, parts[p].role == TP_ROLE_VMM ? "vmm" : "device",
				    r->wave);
			if (++c.commit_n[p] > 1)
				BAD("commit sent twice to p%d", p);
			if (r->wave == 1 && backend_at >= 0)
				BAD("wave-1 commit to p%d after the backend", p);
			if (r->wave == 3 && (backend_at < 0 || c.backend_done_at < 0))
				BAD("wave-3 commit to p%d before the backend was done", p);
			c.commit_at[p] = (long)i;
			any_commit = p;
			break;
		case R_ABORT:
			if (any_commit >= 0)
				BAD("abort to p%d after commit to p%d: a conversion happens for everyone or for no one",
				    p, any_commit);
			if (log_abort_at < 0)
				BAD("abort to p%d before the abort was logged", p);
			if (++c.abort_n[p] > 1)
				BAD("abort sent twice to p%d", p);
			any_abort = p;
			break;
		case R_BACKEND:
			if (++n_backend > 1)
				BAD("backend called twice");
			if (log_commit_at < 0 || log_commit_res < 0)
				BAD("backend before the commit decision was written");
			for (size_t q = 0; q < n; q++) {
				if (expected_wave(t->to_private, parts[q].role) != 1)
					continue;
				if (c.commit_n[q] == 0 && c.gone_at[q] < 0)
					BAD("backend, but p%zu of wave 1 was never sent commit", q);
				if (c.commit_n[q] && c.ack_at[q] < 0 && c.gone_at[q] < 0 && feed_ev != TE_TIMEOUT)
					BAD("backend before p%zu of wave 1 acked, left or timed out", q);
			}
			backend_at = (long)i;
			backend_ev = feed_ev;
			break;
		case R_FINISH:
			if (++n_finish > 1)
				BAD("finish called twice");
			if (armed)
				BAD("finish with the timer still armed");
			if (r->state == TP_COMMITTED) {
				if (c.backend_done_at < 0)
					BAD("committed before the backend was done");
				for (size_t q = 0; q < n; q++) {
					if (expected_wave(t->to_private, parts[q].role) != 3)
						continue;
					if (c.commit_n[q] == 0 && c.gone_at[q] < 0)
						BAD("committed, but p%zu of wave 3 was never sent commit", q);
					if (c.commit_n[q] && c.ack_at[q] < 0 && c.gone_at[q] < 0 && feed_ev != TE_TIMEOUT)
						BAD("committed before p%zu of wave 3 acked, left or timed out", q);
				}
			} else if (r->state != TP_ABORTED) {
				BAD("finish in %s", twopc_state_names[r->state]);
			}
			finish_at = (long)i;
			finish_ev = feed_ev;
			break;
		case R_FEED:
			break;
		}
	}
	for (size_t k = 0; k < n_pend; k++)
		if (finish_at < 0)
			ck_apply(&c, pend[k].ev, pend[k].part, (long)len, pend[k].state);

	if (n_finish != 1)
		BAD("finish called %d times", n_finish);
	if (!twopc_finished(t) || tr[finish_at].state != t->state)
		BAD("finished in %s, but the engine is in %s", twopc_state_names[tr[finish_at].state],
		    twopc_state_names[t->state]);
	if (c.start_at >= 0) {
		for (size_t q = 0; q < n; q++)
			if (c.prep_n[q] != 1)
				BAD("p%zu was sent prepare %ld times", q, c.prep_n[q]);
		if (n > 0 && !prep_armed)
			BAD("TE_START did not arm the prepare timer");
	}

	for (size_t q = 0; q < n; q++)
		if (parts[q].gone != (c.gone_at[q] >= 0))
			BAD("p%zu: gone is %d, but it %s", q, parts[q].gone, c.gone_at[q] >= 0 ? "left" : "did not leave");

	if (t->state == TP_COMMITTED) {
		if (n_log_commit != 1 || log_commit_res < 0)
			BAD("committed without the decision written");
		if (n_log_abort || any_abort >= 0)
			BAD("committed, but abort was logged or sent");
		if (n_backend != 1)
			BAD("committed with the backend called %d times", n_backend);
		if (t->cancelled || t->log_err)
			BAD("committed with cancelled=%d log_err=%d", t->cancelled, t->log_err);
		bool unverified = false;
		for (size_t q = 0; q < n; q++) {
			bool w1 = expected_wave(t->to_private, parts[q].role) == 1;
			long close = w1 ? backend_at : finish_at;
			enum twopc_event close_ev = w1 ? backend_ev : finish_ev;
			bool in_time = c.ack_at[q] >= 0 && c.ack_at[q] < close;
			bool gone_first = c.gone_at[q] >= 0 && c.gone_at[q] < close;
			if (!in_time)
				unverified = true;
			bool timed_out = close_ev == TE_TIMEOUT && !in_time && !gone_first;
			if (parts[q].timed_out != timed_out)
				BAD("p%zu: timed_out is %d, expected %d", q, parts[q].timed_out, timed_out);
			enum twopc_pstate st = c.ack_at[q] >= 0 ? TPP_ACKED : TPP_COMMITTING;
			if (parts[q].state != st)
				BAD("p%zu: state %d, expected %d", q, parts[q].state, st);
		}
		if (t->unverified != unverified)
			BAD("committed with unverified=%d, expected %d (a yes-voter %s)", t->unverified, unverified,
			    unverified ? "left or did not ack in time" : "all acked in time");
	} else {
		if (n_backend)
			BAD("aborted, but the backend was called");
		if (n_log_abort != 1)
			BAD("aborted with the abort logged %d times", n_log_abort);
		if (log_commit_at >= 0 && (log_commit_res >= 0 || t->log_err != -log_commit_res))
			BAD("aborted after log_commit returned %d, log_err=%d", log_commit_res, t->log_err);
		if (t->cancelled != abort_cancel)
			BAD("cancelled=%d, but the abort %s from a cancel", t->cancelled, abort_cancel ? "came" : "did not come");
		for (size_t q = 0; q < n; q++) {
			long want = c.start_at >= 0 && c.gone_at[q] < 0 ? 1 : 0;
			if (c.abort_n[q] != want)
				BAD("p%zu was sent abort %ld times, expected %ld", q, c.abort_n[q], want);
			bool timed_out = c.prep_timeout && !c.voted_yes[q] && !c.voted_no[q] && c.gone_at[q] < 0;
			if (parts[q].timed_out != timed_out)
				BAD("p%zu: timed_out is %d, expected %d", q, parts[q].timed_out, timed_out);
			enum twopc_pstate st = c.voted_no[q] ? TPP_NO : TPP_ABORTED;
			if (parts[q].state != st)
				BAD("p%zu: state %d, expected %d", q, parts[q].state, st);
		}
	}
	return NULL;
}
#undef BAD

static void expect_ok(struct fake *f)
{
	char buf[256];
	const char *why = check_run(&f->t, f->tr, f->len, buf, sizeof(buf));
	if (why) {
		dump_trace(&f->t, f->tr, f->len);
		fail_msg("%s", why);
	}
}

/* ---- the exhaustive exploration ---- */

enum beh { B_YES_ACK, B_NO, B_GONE_BEFORE_VOTE, B_YES_THEN_GONE, B_YES_NEVER_ACK, B_NEVER_VOTE, _B_MAX };
static const char *const beh_names[_B_MAX] = {
	"yes-ack", "no", "gone-before-vote", "yes-then-gone", "yes-never-ack", "never-vote",
};
/* What each behaviour says, in order. A vote needs the prepare first, an ack the commit; the
 * yes-then-gone disconnect may come at any time after the yes. */
static const struct {
	int len;
	enum twopc_event ev[2];
} scripts[_B_MAX] = {
	[B_YES_ACK] = { 2, { TE_VOTE_YES, TE_ACK } },
	[B_NO] = { 1, { TE_VOTE_NO } },
	[B_GONE_BEFORE_VOTE] = { 1, { TE_GONE_UNVOTED } },
	[B_YES_THEN_GONE] = { 2, { TE_VOTE_YES, TE_GONE_VOTED } },
	[B_YES_NEVER_ACK] = { 1, { TE_VOTE_YES } },
	[B_NEVER_VOTE] = { 0, { _TE_MAX } },
};

struct cfg {
	bool to_private;
	size_t n;
	enum twopc_role roles[MAXP];
	enum beh beh[MAXP];
	bool sync_backend;
	bool race; /* the timer may fire while other events are still possible */
};

static void describe(const struct cfg *c)
{
	print_error("run: %s, backend %s, timer %s;", c->to_private ? "to-private" : "to-shared",
		    c->sync_backend ? "synchronous" : "asynchronous", c->race ? "racing" : "last resort");
	for (size_t i = 0; i < c->n; i++)
		print_error(" p%zu=%s/%s", i, c->roles[i] == TP_ROLE_VMM ? "vmm" : "device", beh_names[c->beh[i]]);
	print_error("\n");
}

#define RUN_FAIL(...)                                  \
	do {                                           \
		describe(c);                           \
		dump_trace(&f->t, f->tr, f->len);      \
		fail_msg(__VA_ARGS__);                 \
	} while (0)

/* Every event with no row in the current state: -ESTALE, no callback, nothing changed. */
static void probe_stale(const struct cfg *c, struct fake *f, size_t salt, bool every_part)
{
	size_t n = f->t.n_parts;
	for (int e = 0; e < _TE_MAX; e++) {
		if (find_row(f->t.state, (enum twopc_event)e))
			continue;
		for (size_t k = 0; k < (every_part && n ? n : 1); k++) {
			struct twopc_part *p = n ? &f->parts[every_part ? k : (salt + (size_t)e) % n] : NULL;
			struct twopc_part before[MAXP];
			struct twopc tb = f->t;
			size_t len = f->len;
			memcpy(before, f->parts, sizeof(before));
			int r = twopc_event(&f->t, (enum twopc_event)e, p);
			if (r != -ESTALE || f->len != len || memcmp(before, f->parts, sizeof(before)) ||
			    tb.state != f->t.state || tb.unverified != f->t.unverified || tb.log_err != f->t.log_err ||
			    tb.cancelled != f->t.cancelled || tb.backend_err != f->t.backend_err)
				RUN_FAIL("%s in %s has no row: it returned %d and must change nothing",
					 twopc_event_names[e], twopc_state_names[tb.state], r);
		}
	}
}

/* One run, the scheduler taking option choice[k] at step k; stores the number of options at each
 * step in nopt and returns the number of steps. */
static size_t run_one(const struct cfg *c, const unsigned char *choice, unsigned char *nopt, struct fake *f)
{
	int pc[MAXP] = { 0 };
	size_t steps = 0;
	char buf[256];

	fake_init(f, c->to_private, c->roles, c->n);
	f->sync_backend = c->sync_backend;
	if (feed(f, TE_START, -1) != 0)
		RUN_FAIL("TE_START refused");
	while (!twopc_finished(&f->t)) {
		struct {
			enum twopc_event ev;
			int part;
		} opts[MAXP + 2];
		size_t n = 0;

		probe_stale(c, f, steps, false);
		for (size_t p = 0; p < c->n; p++) {
			if (pc[p] >= scripts[c->beh[p]].len)
				continue;
			enum twopc_event ev = scripts[c->beh[p]].ev[pc[p]];
			bool enabled = pc[p] == 0 ? f->got_prepare[p] : ev == TE_ACK ? f->got_commit[p] : true;
			if (enabled)
				opts[n].ev = ev, opts[n++].part = (int)p;
		}
		if (f->backend_pending)
			opts[n].ev = TE_BACKEND_DONE, opts[n++].part = -1;
		if (f->timer_armed && (c->race || n == 0))
			opts[n].ev = TE_TIMEOUT, opts[n++].part = -1;
		if (n == 0)
			RUN_FAIL("stuck in %s: not finished, no timer armed, nothing else can happen",
				 twopc_state_names[f->t.state]);
		if (steps >= MAX_STEPS)
			RUN_FAIL("more than %d steps", MAX_STEPS);
		if (choice[steps] >= n)
			RUN_FAIL("the replay diverged (the engine is not deterministic?)");
		nopt[steps] = (unsigned char)n;
		int part = opts[choice[steps]].part;
		enum twopc_event ev = opts[choice[steps]].ev;
		steps++;
		if (feed(f, ev, part) != 0)
			RUN_FAIL("%s refused in %s", twopc_event_names[ev], twopc_state_names[f->t.state]);
		if (part >= 0)
			pc[part]++;
	}

	/* What the engine says about the run. */
	const char *why = check_run(&f->t, f->tr, f->len, buf, sizeof(buf));
	if (why)
		RUN_FAIL("%s", why);

	/* What the behaviours say it must be. */
	bool all_yes = true, lossy = false, prep_timeout = false, wave_timeout = false;
	for (size_t p = 0; p < c->n; p++) {
		enum beh b = c->beh[p];
		if (b == B_NO || b == B_GONE_BEFORE_VOTE || b == B_NEVER_VOTE)
			all_yes = false;
		if (b == B_YES_THEN_GONE || b == B_YES_NEVER_ACK)
			lossy = true;
		bool voted = pc[p] > 0 && (scripts[b].ev[0] == TE_VOTE_YES || scripts[b].ev[0] == TE_VOTE_NO);
		if (f->parts[p].voted != voted)
			RUN_FAIL("p%zu: voted is %d, expected %d", p, f->parts[p].voted, voted);
	}
	for (size_t i = 0; i < f->len; i++) {
		const struct rec *r = &f->tr[i];
		if (r->kind == R_FEED && !r->nested && r->ev == TE_TIMEOUT && r->ret == 0) {
			prep_timeout |= r->state == TP_PREPARING;
			wave_timeout |= r->state == TP_WAVE1 || r->state == TP_WAVE3;
		}
	}
	bool committed = f->t.state == TP_COMMITTED;
	if (committed != (all_yes && !prep_timeout))
		RUN_FAIL("%s, but %s", committed ? "committed" : "aborted",
			 all_yes ? "everyone voted yes" : "someone did not vote yes");
	if (!c->race && (prep_timeout && all_yes))
		RUN_FAIL("the prepare timeout fired with votes still to come");
	if (!c->race && wave_timeout && !lossy)
		RUN_FAIL("an ack timeout fired with acks still to come");
	if (committed && f->t.unverified != (lossy || wave_timeout))
		RUN_FAIL("committed with unverified=%d, expected %d", f->t.unverified, lossy || wave_timeout);

	/* The end: everything still to say is stale. */
	probe_stale(c, f, steps, true);
	for (size_t p = 0; p < c->n; p++)
		for (int k = pc[p]; k < scripts[c->beh[p]].len; k++)
			if (feed(f, scripts[c->beh[p]].ev[k], (int)p) != -ESTALE)
				RUN_FAIL("p%zu's %s after the end was not stale", p,
					 twopc_event_names[scripts[c->beh[p]].ev[k]]);
	why = check_run(&f->t, f->tr, f->len, buf, sizeof(buf));
	if (why)
		RUN_FAIL("after the end: %s", why);
	return steps;
}
#undef RUN_FAIL

/* Depth-first over the scheduler's choices: every interleaving, each replayed from the start. */
static unsigned long explore(const struct cfg *c, struct fake *f)
{
	unsigned char choice[MAX_STEPS] = { 0 }, nopt[MAX_STEPS] = { 0 };
	unsigned long runs = 0;

	for (;;) {
		size_t k = run_one(c, choice, nopt, f);
		runs++;
		while (k > 0 && choice[k - 1] + 1 >= nopt[k - 1])
			k--;
		if (k == 0)
			return runs;
		choice[k - 1]++;
		memset(choice + k, 0, MAX_STEPS - k);
	}
}

static const struct {
	const char *name;
	size_t n;
	enum twopc_role roles[MAXP];
} mixes[] = {
	{ "device,device,vmm", 3, { TP_ROLE_DEVICE, TP_ROLE_DEVICE, TP_ROLE_VMM } },
	{ "vmm,device,device", 3, { TP_ROLE_VMM, TP_ROLE_DEVICE, TP_ROLE_DEVICE } },
	{ "device,device,device", 3, { TP_ROLE_DEVICE, TP_ROLE_DEVICE, TP_ROLE_DEVICE } },
	{ "none", 0, { TP_ROLE_DEVICE } },
	{ "device", 1, { TP_ROLE_DEVICE } },
	{ "vmm", 1, { TP_ROLE_VMM } },
};

static void exhaustive(bool to_private)
{
	static struct fake f;
	unsigned long total = 0;

	for (size_t m = 0; m < sizeof(mixes) / sizeof(mixes[0]); m++) {
		unsigned long runs = 0, combos = 0;
		size_t n = mixes[m].n, ncomb = 1;
		for (size_t i = 0; i < n; i++)
			ncomb *= _B_MAX;
		for (size_t comb = 0; comb < ncomb; comb++) {
			struct cfg c = { .to_private = to_private, .n = n };
			size_t x = comb;
			for (size_t i = 0; i < n; i++) {
				c.roles[i] = mixes[m].roles[i];
				c.beh[i] = (enum beh)(x % _B_MAX);
				x /= _B_MAX;
			}
			for (int mode = 0; mode < 4; mode++) {
				c.sync_backend = mode & 1;
				c.race = mode & 2;
				runs += explore(&c, &f);
			}
			combos++;
		}
		print_message("  %s, %-20s: %5lu behaviour combinations, %8lu runs checked\n",
			      to_private ? "to-private" : "to-shared ", mixes[m].name, combos, runs);
		total += runs;
	}
	print_message("  %s: %lu runs checked\n", to_private ? "to-private" : "to-shared", total);
}

static void test_exhaustive_to_private(void **state)
{
	(void)state;
	exhaustive(true);
}

static void test_exhaustive_to_shared(void **state)
{
	(void)state;
	exhaustive(false);
}

/* ---- targeted tests ---- */

static const enum twopc_role DDV[] = { TP_ROLE_DEVICE, TP_ROLE_DEVICE, TP_ROLE_VMM };

static void test_wave_of(void **state)
{
	struct fake f;
	(void)state;
	fake_init(&f, true, DDV, 3);
	assert_int_equal(twopc_wave_of(&f.t, TP_ROLE_DEVICE), 1);
	assert_int_equal(twopc_wave_of(&f.t, TP_ROLE_VMM), 3);
	fake_init(&f, false, DDV, 3);
	assert_int_equal(twopc_wave_of(&f.t, TP_ROLE_VMM), 1);
	assert_int_equal(twopc_wave_of(&f.t, TP_ROLE_DEVICE), 3);
}

static void test_table_is_well_formed(void **state)
{
	(void)state;
	assert_true(twopc_table_len > 0 && twopc_table_len <= MAX_ROWS);
	for (size_t i = 0; i < twopc_table_len; i++) {
		const struct twopc_transition *r = &twopc_table[i];
		assert_true(r->from < _TP_STATE_MAX && r->to < _TP_STATE_MAX);
		assert_true(r->event < _TE_MAX && r->action < _TA_MAX);
		assert_non_null(twopc_state_names[r->from]);
		assert_non_null(twopc_event_names[r->event]);
		assert_non_null(twopc_action_names[r->action]);
		/* Nothing leaves a terminal state. */
		assert_false(r->from == TP_COMMITTED || r->from == TP_ABORTED);
		/* One row per (state, event): the table is a function. */
		for (size_t j = i + 1; j < twopc_table_len; j++)
			if (twopc_table[j].from == r->from && twopc_table[j].event == r->event)
				fail_msg("rows %zu and %zu both take %s in %s", i, j, twopc_event_names[r->event],
					 twopc_state_names[r->from]);
	}
}

static void test_timeouts(void **state)
{
	struct fake f;
	(void)state;

	/* Defaults when the caller sets none. */
	fake_init(&f, true, DDV, 3);
	feed(&f, TE_START, -1);
	assert_int_equal(f.tr[f.len - 1].kind, R_TIMER);
	assert_true(f.tr[f.len - 1].ms == f.t.prepare_timeout_ms && f.t.prepare_timeout_ms > 0);
	assert_true(f.t.ack_timeout_ms > 0);

	/* As the daemon does: set before twopc_init. */
	memset(&f, 0, sizeof(f));
	for (int i = 0; i < 3; i++)
		f.parts[i].role = DDV[i];
	f.t.prepare_timeout_ms = 123;
	f.t.ack_timeout_ms = 456;
	twopc_init(&f.t, true, f.parts, 3, &fake_ops, &f);
	f.sync_backend = true;
	assert_int_equal(f.t.prepare_timeout_ms, 123);
	assert_int_equal(f.t.ack_timeout_ms, 456);
	feed(&f, TE_START, -1);
	for (int i = 0; i < 3; i++)
		feed(&f, TE_VOTE_YES, i);
	assert_int_equal(f.t.state, TP_WAVE1);
	assert_int_equal(f.tr[f.len - 1].kind, R_TIMER);
	assert_int_equal(f.tr[f.len - 1].ms, 456);
	feed(&f, TE_ACK, 0);
	feed(&f, TE_ACK, 1);
	feed(&f, TE_ACK, 2);
	assert_int_equal(f.t.state, TP_COMMITTED);
	expect_ok(&f);
}

/* The happy path, step by step, with an asynchronous backend. */
static void test_commit_in_order(void **state)
{
	struct fake f;
	(void)state;

	fake_init(&f, true, DDV, 3);
	assert_int_equal(feed(&f, TE_START, -1), 0);
	assert_int_equal(f.t.state, TP_PREPARING);
	assert_int_equal(count(&f, R_PREPARE, ANY), 3);
	assert_true(f.timer_armed);
	feed(&f, TE_VOTE_YES, 2);
	feed(&f, TE_VOTE_YES, 0);
	assert_int_equal(count(&f, R_LOG_COMMIT, ANY), 0);
	feed(&f, TE_VOTE_YES, 1);
	assert_int_equal(f.t.state, TP_WAVE1);
	assert_int_equal(count(&f, R_LOG_COMMIT, ANY), 1);
	assert_int_equal(count(&f, R_COMMIT, 0) + count(&f, R_COMMIT, 1), 2); /* the devices */
	assert_int_equal(count(&f, R_COMMIT, 2), 0);			       /* not the vmm yet */
	feed(&f, TE_ACK, 1);
	assert_int_equal(count(&f, R_BACKEND, ANY), 0);
	feed(&f, TE_ACK, 0);
	assert_int_equal(f.t.state, TP_BACKEND);
	assert_int_equal(count(&f, R_BACKEND, ANY), 1);
	assert_int_equal(count(&f, R_COMMIT, 2), 0);
	assert_false(f.timer_armed);
	feed(&f, TE_BACKEND_DONE, -1);
	assert_int_equal(f.t.state, TP_WAVE3);
	assert_int_equal(count(&f, R_COMMIT, 2), 1);
	assert_int_equal(count(&f, R_FINISH, ANY), 0);
	feed(&f, TE_ACK, 2);
	assert_int_equal(f.t.state, TP_COMMITTED);
	assert_int_equal(count(&f, R_FINISH, ANY), 1);
	assert_false(f.t.unverified);
	expect_ok(&f);
}

static void test_log_commit_fails(void **state)
{
	struct fake f;
	(void)state;

	fake_init(&f, true, DDV, 3);
	f.log_commit_result = -EIO;
	feed(&f, TE_START, -1);
	feed(&f, TE_VOTE_YES, 0);
	feed(&f, TE_VOTE_YES, 1);
	feed(&f, TE_GONE_VOTED, 1); /* a yes-voter that left: not told abort */
	feed(&f, TE_VOTE_YES, 2);
	assert_int_equal(f.t.state, TP_ABORTED);
	assert_int_equal(f.t.log_err, EIO);
	assert_int_equal(count(&f, R_LOG_COMMIT, ANY), 1);
	assert_int_equal(count(&f, R_LOG_ABORT, ANY), 1);
	assert_int_equal(count(&f, R_COMMIT, ANY), 0);
	assert_int_equal(count(&f, R_BACKEND, ANY), 0);
	assert_int_equal(count(&f, R_ABORT, 0), 1);
	assert_int_equal(count(&f, R_ABORT, 1), 0);
	assert_int_equal(count(&f, R_ABORT, 2), 1);
	assert_int_equal(count(&f, R_FINISH, ANY), 1);
	assert_false(f.timer_armed);
	assert_int_equal(feed(&f, TE_ACK, 0), -ESTALE);
	expect_ok(&f);

	/* No participants: the decision is the only thing that can fail. */
	fake_init(&f, false, NULL, 0);
	f.log_commit_result = -ENOSPC;
	feed(&f, TE_START, -1);
	assert_int_equal(f.t.state, TP_ABORTED);
	assert_int_equal(f.t.log_err, ENOSPC);
	assert_int_equal(count(&f, R_BACKEND, ANY), 0);
	expect_ok(&f);
}

static void test_cancel(void **state)
{
	struct fake f;
	(void)state;

	/* Queued: nobody was asked anything, so nobody is told abort. */
	fake_init(&f, true, DDV, 3);
	assert_int_equal(feed(&f, TE_CANCEL, -1), 0);
	assert_int_equal(f.t.state, TP_ABORTED);
	assert_true(f.t.cancelled);
	assert_int_equal(count(&f, R_PREPARE, ANY), 0);
	assert_int_equal(count(&f, R_ABORT, ANY), 0);
	assert_int_equal(count(&f, R_LOG_ABORT, ANY), 1);
	assert_int_equal(count(&f, R_FINISH, ANY), 1);
	assert_int_equal(feed(&f, TE_START, -1), -ESTALE);
	assert_int_equal(feed(&f, TE_CANCEL, -1), -ESTALE);
	assert_int_equal(count(&f, R_FINISH, ANY), 1);
	expect_ok(&f);

	/* Preparing: everyone not gone is told abort. */
	fake_init(&f, false, DDV, 3);
	feed(&f, TE_START, -1);
	feed(&f, TE_VOTE_YES, 0);
	feed(&f, TE_VOTE_YES, 1);
	feed(&f, TE_GONE_VOTED, 1);
	assert_int_equal(feed(&f, TE_CANCEL, -1), 0);
	assert_int_equal(f.t.state, TP_ABORTED);
	assert_true(f.t.cancelled);
	assert_int_equal(count(&f, R_ABORT, 0), 1);
	assert_int_equal(count(&f, R_ABORT, 1), 0);
	assert_int_equal(count(&f, R_ABORT, 2), 1);
	assert_int_equal(count(&f, R_LOG_COMMIT, ANY), 0);
	assert_int_equal(feed(&f, TE_VOTE_YES, 2), -ESTALE);
	expect_ok(&f);

	/* After the decision a cancel is stale, in every state it can arrive in. */
	for (enum twopc_state at = TP_WAVE1; at <= TP_WAVE3; at++) {
		fake_init(&f, true, DDV, 3);
		feed(&f, TE_START, -1);
		for (int i = 0; i < 3; i++)
			feed(&f, TE_VOTE_YES, i);
		if (at >= TP_BACKEND) {
			feed(&f, TE_ACK, 0);
			feed(&f, TE_ACK, 1);
		}
		if (at >= TP_WAVE3)
			feed(&f, TE_BACKEND_DONE, -1);
		assert_int_equal(f.t.state, at);
		size_t len = f.len;
		assert_int_equal(feed(&f, TE_CANCEL, -1), -ESTALE);
		assert_int_equal(f.len, len + 1);
		assert_int_equal(f.t.state, at);
		assert_false(f.t.cancelled);
		if (at < TP_BACKEND) {
			feed(&f, TE_ACK, 0);
			feed(&f, TE_ACK, 1);
		}
		if (at < TP_WAVE3)
			feed(&f, TE_BACKEND_DONE, -1);
		feed(&f, TE_ACK, 2);
		assert_int_equal(f.t.state, TP_COMMITTED);
		assert_false(f.t.cancelled);
		expect_ok(&f);
	}
}

static void test_stale_events(void **state)
{
	struct fake f;
	(void)state;

	/* Votes, and anything else, after an abort. */
	fake_init(&f, true, DDV, 3);
	feed(&f, TE_START, -1);
	feed(&f, TE_VOTE_YES, 0);
	feed(&f, TE_VOTE_NO, 1);
	assert_int_equal(f.t.state, TP_ABORTED);
	size_t len = f.len;
	assert_int_equal(feed(&f, TE_VOTE_YES, 2), -ESTALE);
	assert_int_equal(feed(&f, TE_VOTE_NO, 2), -ESTALE);
	assert_int_equal(feed(&f, TE_GONE_UNVOTED, 2), -ESTALE);
	assert_int_equal(feed(&f, TE_GONE_VOTED, 0), -ESTALE);
	assert_int_equal(feed(&f, TE_TIMEOUT, -1), -ESTALE);
	assert_int_equal(feed(&f, TE_BACKEND_DONE, -1), -ESTALE);
	assert_int_equal(f.len, len + 6); /* the six feeds, no callback */
	assert_int_equal(f.parts[2].state, TPP_ABORTED);
	assert_false(f.parts[2].voted);
	assert_false(f.parts[2].gone);
	expect_ok(&f);

	/* An ack while preparing, a second start, a backend-done before any backend. */
	fake_init(&f, true, DDV, 3);
	feed(&f, TE_START, -1);
	feed(&f, TE_VOTE_YES, 0);
	struct twopc_part before[MAXP];
	memcpy(before, f.parts, sizeof(before));
	len = f.len;
	assert_int_equal(feed(&f, TE_ACK, 0), -ESTALE);
	assert_int_equal(feed(&f, TE_START, -1), -ESTALE);
	assert_int_equal(feed(&f, TE_BACKEND_DONE, -1), -ESTALE);
	assert_int_equal(feed(&f, TE_WAVE_DONE, -1), -ESTALE);
	assert_int_equal(feed(&f, TE_LOGGED, -1), -ESTALE);
	assert_int_equal(f.len, len + 5);
	assert_memory_equal(before, f.parts, sizeof(before));
	assert_int_equal(f.t.state, TP_PREPARING);
	feed(&f, TE_VOTE_YES, 1);
	feed(&f, TE_VOTE_YES, 2);
	assert_int_equal(feed(&f, TE_START, -1), -ESTALE);
	assert_int_equal(feed(&f, TE_VOTE_YES, 1), -ESTALE); /* votes after the decision */
	assert_int_equal(feed(&f, TE_BACKEND_DONE, -1), -ESTALE);
	feed(&f, TE_ACK, 0);
	feed(&f, TE_ACK, 1);
	assert_int_equal(feed(&f, TE_TIMEOUT, -1), -ESTALE); /* no timer while the backend works */
	feed(&f, TE_BACKEND_DONE, -1);
	feed(&f, TE_ACK, 2);
	assert_int_equal(f.t.state, TP_COMMITTED);
	assert_int_equal(feed(&f, TE_ACK, 2), -ESTALE);
	assert_int_equal(feed(&f, TE_START, -1), -ESTALE);
	assert_int_equal(feed(&f, TE_CANCEL, -1), -ESTALE);
	assert_int_equal(count(&f, R_FINISH, ANY), 1);
	expect_ok(&f);
}

/* Acks that come after their wave's timeout: recorded, the outcome stays unverified. */
static void test_late_acks(void **state)
{
	struct fake f;
	(void)state;

	fake_init(&f, true, DDV, 3);
	feed(&f, TE_START, -1);
	for (int i = 0; i < 3; i++)
		feed(&f, TE_VOTE_YES, i);
	assert_int_equal(feed(&f, TE_TIMEOUT, -1), 0); /* wave 1: neither device acked */
	assert_int_equal(f.t.state, TP_BACKEND);
	assert_true(f.t.unverified);
	assert_true(f.parts[0].timed_out && f.parts[1].timed_out);
	assert_int_equal(feed(&f, TE_ACK, 0), 0); /* while the backend works */
	assert_int_equal(f.parts[0].state, TPP_ACKED);
	feed(&f, TE_BACKEND_DONE, -1);
	assert_int_equal(f.t.state, TP_WAVE3);
	assert_int_equal(feed(&f, TE_ACK, 1), 0); /* a wave-1 ack in wave 3 does not end wave 3 */
	assert_int_equal(f.t.state, TP_WAVE3);
	assert_int_equal(feed(&f, TE_GONE_VOTED, 1), 0);
	assert_int_equal(f.t.state, TP_WAVE3);
	feed(&f, TE_ACK, 2);
	assert_int_equal(f.t.state, TP_COMMITTED);
	assert_true(f.t.unverified);
	assert_false(f.parts[2].timed_out);
	expect_ok(&f);

	/* A wave-3 timeout, to-shared: the devices are wave 3; one acked, one did not. */
	fake_init(&f, false, DDV, 3);
	feed(&f, TE_START, -1);
	for (int i = 0; i < 3; i++)
		feed(&f, TE_VOTE_YES, i);
	feed(&f, TE_ACK, 2);
	feed(&f, TE_BACKEND_DONE, -1);
	feed(&f, TE_ACK, 0);
	assert_int_equal(feed(&f, TE_TIMEOUT, -1), 0);
	assert_int_equal(f.t.state, TP_COMMITTED);
	assert_true(f.t.unverified);
	assert_false(f.parts[0].timed_out);
	assert_true(f.parts[1].timed_out);
	assert_int_equal(feed(&f, TE_ACK, 1), -ESTALE);
	expect_ok(&f);
}

/* An ack from a participant whose wave was not sent yet is accepted (the state has a row for TE_ACK)
 * but means nothing: the conversion still waits for the real one. */
static void test_premature_ack(void **state)
{
	struct fake f;
	(void)state;

	fake_init(&f, true, DDV, 3);
	feed(&f, TE_START, -1);
	for (int i = 0; i < 3; i++)
		feed(&f, TE_VOTE_YES, i);
	assert_int_equal(f.t.state, TP_WAVE1);
	feed(&f, TE_ACK, 2); /* the vmm, wave 3, before its commit */
	assert_int_equal(f.parts[2].state, TPP_YES);
	feed(&f, TE_ACK, 0);
	feed(&f, TE_ACK, 0); /* twice */
	assert_int_equal(f.t.state, TP_WAVE1);
	feed(&f, TE_ACK, 1);
	assert_int_equal(f.t.state, TP_BACKEND);
	feed(&f, TE_ACK, 2); /* still before its commit */
	assert_int_equal(f.parts[2].state, TPP_YES);
	feed(&f, TE_BACKEND_DONE, -1);
	assert_int_equal(f.t.state, TP_WAVE3);
	assert_int_equal(f.parts[2].state, TPP_COMMITTING);
	feed(&f, TE_ACK, 2);
	assert_int_equal(f.t.state, TP_COMMITTED);
	assert_false(f.t.unverified);
	expect_ok(&f);
}

/* Participants that answer from inside the callbacks, and a backend that finishes at once: the whole
 * conversion runs inside TE_START, in order. */
static void test_reentrant_synchronous(void **state)
{
	struct fake f;
	(void)state;

	for (int dir = 0; dir < 2; dir++) {
		fake_init(&f, dir, DDV, 3);
		f.sync_backend = true;
		add_hook(&f, R_PREPARE, -1, TE_VOTE_YES, -2, true);
		add_hook(&f, R_COMMIT, -1, TE_ACK, -2, true);
		assert_int_equal(feed(&f, TE_START, -1), 0);
		assert_int_equal(f.t.state, TP_COMMITTED);
		assert_false(f.t.unverified);
		assert_int_equal(count(&f, R_COMMIT, ANY), 3);
		assert_int_equal(count(&f, R_FINISH, ANY), 1);
		for (int i = 0; i < 3; i++)
			assert_int_equal(f.parts[i].state, TPP_ACKED);
		expect_ok(&f);
	}

	/* Queued in order: p0's no is handled first, p1's yes behind it is stale by then. */
	fake_init(&f, true, DDV, 3);
	add_hook(&f, R_PREPARE, 0, TE_VOTE_NO, 0, false);
	add_hook(&f, R_PREPARE, 1, TE_VOTE_YES, 1, false);
	assert_int_equal(feed(&f, TE_START, -1), 0);
	assert_int_equal(f.t.state, TP_ABORTED);
	assert_int_equal(f.parts[0].state, TPP_NO);
	assert_int_equal(f.parts[1].state, TPP_ABORTED);
	assert_false(f.parts[1].voted);
	assert_int_equal(count(&f, R_LOG_COMMIT, ANY), 0);
	assert_int_equal(count(&f, R_ABORT, ANY), 3);
	/* The prepares all went out before the queued no was handled. */
	assert_int_equal(count(&f, R_PREPARE, ANY), 3);
	expect_ok(&f);

	/* A cancel fed from inside a callback while preparing. */
	fake_init(&f, false, DDV, 3);
	add_hook(&f, R_PREPARE, 2, TE_CANCEL, -1, false);
	assert_int_equal(feed(&f, TE_START, -1), 0);
	assert_int_equal(f.t.state, TP_ABORTED);
	assert_true(f.t.cancelled);
	assert_int_equal(count(&f, R_ABORT, ANY), 3);
	expect_ok(&f);

	/* A participant that disconnects while the wave-1 commits go out (a send that fails). */
	fake_init(&f, true, DDV, 3);
	f.sync_backend = true;
	add_hook(&f, R_COMMIT, 0, TE_GONE_VOTED, 0, false);
	feed(&f, TE_START, -1);
	for (int i = 0; i < 3; i++)
		feed(&f, TE_VOTE_YES, i);
	assert_int_equal(f.t.state, TP_WAVE1);
	assert_true(f.parts[0].gone);
	feed(&f, TE_ACK, 1);
	assert_int_equal(f.t.state, TP_WAVE3);
	feed(&f, TE_ACK, 2);
	assert_int_equal(f.t.state, TP_COMMITTED);
	assert_true(f.t.unverified);
	expect_ok(&f);
}

/*
 * A participant that disconnects while the commit decision is being written (fed from inside
 * ops->log_commit: a journal that waits on I/O and runs the loop, or a send of something else that
 * fails). Its yes stands, the conversion commits, and, gone, it must not be sent commit.
 */
static void test_reentrant_gone_while_deciding(void **state)
{
	struct fake f;
	(void)state;

	fake_init(&f, true, DDV, 3);
	f.sync_backend = true;
	add_hook(&f, R_LOG_COMMIT, -1, TE_GONE_VOTED, 1, false);
	feed(&f, TE_START, -1);
	for (int i = 0; i < 3; i++)
		feed(&f, TE_VOTE_YES, i);
	assert_int_equal(count(&f, R_LOG_COMMIT, ANY), 1);
	if (!f.parts[1].gone || count(&f, R_COMMIT, 1)) {
		dump_trace(&f.t, f.tr, f.len);
		fail_msg("p1 left during log_commit: its TE_GONE_VOTED, queued ahead of TE_LOGGED, was handled in "
			 "'deciding', which has no row for it, and dropped as stale; then p1 was sent commit "
			 "(gone=%d, commits to p1: %zu)", f.parts[1].gone, count(&f, R_COMMIT, 1));
	}
	feed(&f, TE_ACK, 0);
	feed(&f, TE_ACK, 2);
	assert_int_equal(f.t.state, TP_COMMITTED);
	assert_true(f.t.unverified);
	expect_ok(&f);
}

/* The checker must be able to say no: hand-made traces that break a promise. */
static void test_checker_rejects_bad_traces(void **state)
{
	struct fake f;
	char buf[256];
	(void)state;

	/* A correct trace, by hand, as the baseline. */
	const struct rec good[] = {
		{ .kind = R_FEED, .part = -1, .ev = TE_START, .state = TP_QUEUED },
		{ .kind = R_PREPARE, .part = 0, .state = TP_PREPARING },
		{ .kind = R_PREPARE, .part = 1, .state = TP_PREPARING },
		{ .kind = R_TIMER, .part = -1, .ms = 1000, .state = TP_PREPARING },
		{ .kind = R_FEED, .part = 0, .ev = TE_VOTE_YES, .state = TP_PREPARING },
		{ .kind = R_FEED, .part = 1, .ev = TE_VOTE_YES, .state = TP_PREPARING },
		{ .kind = R_TIMER, .part = -1, .ms = 0, .state = TP_DECIDING },
		{ .kind = R_LOG_COMMIT, .part = -1, .state = TP_DECIDING },
		{ .kind = R_COMMIT, .part = 0, .wave = 1, .state = TP_WAVE1 },
		{ .kind = R_TIMER, .part = -1, .ms = 2000, .state = TP_WAVE1 },
		{ .kind = R_FEED, .part = 0, .ev = TE_ACK, .state = TP_WAVE1 },
		{ .kind = R_TIMER, .part = -1, .ms = 0, .state = TP_BACKEND },
		{ .kind = R_BACKEND, .part = -1, .state = TP_BACKEND },
		{ .kind = R_FEED, .part = -1, .ev = TE_BACKEND_DONE, .state = TP_BACKEND },
		{ .kind = R_COMMIT, .part = 1, .wave = 3, .state = TP_WAVE3 },
		{ .kind = R_TIMER, .part = -1, .ms = 2000, .state = TP_WAVE3 },
		{ .kind = R_FEED, .part = 1, .ev = TE_ACK, .state = TP_WAVE3 },
		{ .kind = R_TIMER, .part = -1, .ms = 0, .state = TP_COMMITTED },
		{ .kind = R_FINISH, .part = -1, .state = TP_COMMITTED },
	};
	const size_t ng = sizeof(good) / sizeof(good[0]);
	const enum twopc_role dv[] = { TP_ROLE_DEVICE, TP_ROLE_VMM };

	fake_init(&f, true, dv, 2);
	f.t.state = TP_COMMITTED;
	f.parts[0].state = f.parts[1].state = TPP_ACKED;
	f.parts[0].voted = f.parts[1].voted = true;
	memcpy(f.tr, good, sizeof(good));
	f.len = ng;
	assert_null(check_run(&f.t, f.tr, f.len, buf, sizeof(buf)));

	enum { REPLACE, DROP, INSERT } ;
	struct {
		const char *what;
		size_t at;	/* the record replaced, dropped, or inserted before */
		int how;
		struct rec with;
	} bad[] = {
		{ "commit to one participant, abort to the other", 14, REPLACE,
		  { .kind = R_ABORT, .part = 1, .state = TP_WAVE3 } },
		{ "commit sent before the decision was logged", 7, REPLACE,
		  { .kind = R_COMMIT, .part = 0, .wave = 1, .state = TP_DECIDING } },
		{ "the vmm committed in wave 1 of a to-private", 14, REPLACE,
		  { .kind = R_COMMIT, .part = 1, .wave = 1, .state = TP_WAVE3 } },
		{ "the backend before wave 1 acked", 10, DROP, { 0 } },
		{ "a second finish", 19, INSERT, { .kind = R_FINISH, .part = -1, .state = TP_COMMITTED } },
		{ "commit to a participant that left", 14, INSERT,
		  { .kind = R_FEED, .part = 1, .ev = TE_GONE_VOTED, .state = TP_BACKEND } },
		{ "finish with the timer armed", 17, DROP, { 0 } },
		{ "wave 3 before the backend was done", 13, DROP, { 0 } },
		{ "the prepare timer never armed", 3, DROP, { 0 } },
		{ "an event accepted after the end", 19, INSERT,
		  { .kind = R_FEED, .part = 0, .ev = TE_ACK, .ret = 0, .state = TP_COMMITTED } },
		{ "a callback after finish", 19, INSERT, { .kind = R_TIMER, .part = -1, .state = TP_COMMITTED } },
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		size_t len = 0;
		for (size_t i = 0; i <= ng; i++) {
			if (i == bad[k].at && bad[k].how == INSERT)
				f.tr[len++] = bad[k].with;
			if (i == ng || (i == bad[k].at && bad[k].how == DROP))
				continue;
			f.tr[len++] = i == bad[k].at && bad[k].how == REPLACE ? bad[k].with : good[i];
		}
		f.len = len;
		const char *why = check_run(&f.t, f.tr, f.len, buf, sizeof(buf));
		if (!why)
			fail_msg("the checker accepted a bad trace: %s", bad[k].what);
		print_message("  rejected (%s): %s\n", bad[k].what, why);
	}

	/* Right trace, wrong flags. */
	memcpy(f.tr, good, sizeof(good));
	f.len = ng;
	f.t.unverified = true;
	assert_non_null(check_run(&f.t, f.tr, f.len, buf, sizeof(buf)));
	f.t.unverified = false;
	f.t.state = TP_ABORTED;
	assert_non_null(check_run(&f.t, f.tr, f.len, buf, sizeof(buf)));
}

/* Last: every row of the table was taken by some test above. */
static void test_every_row_was_taken(void **state)
{
	size_t missed = 0;
	(void)state;
	for (size_t i = 0; i < twopc_table_len && i < MAX_ROWS; i++) {
		const struct twopc_transition *r = &twopc_table[i];
		if (!row_hits[i]) {
			print_error("  row %zu never taken: %s --%s--> %s (%s)\n", i, twopc_state_names[r->from],
				    twopc_event_names[r->event], twopc_state_names[r->to], twopc_action_names[r->action]);
			missed++;
		}
	}
	if (missed)
		fail_msg("%zu of %zu table rows were never taken", missed, twopc_table_len);
	print_message("  all %zu table rows taken\n", twopc_table_len);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wave_of),
		cmocka_unit_test(test_table_is_well_formed),
		cmocka_unit_test(test_checker_rejects_bad_traces),
		cmocka_unit_test(test_timeouts),
		cmocka_unit_test(test_commit_in_order),
		cmocka_unit_test(test_log_commit_fails),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_stale_events),
		cmocka_unit_test(test_late_acks),
		cmocka_unit_test(test_premature_ack),
		cmocka_unit_test(test_reentrant_synchronous),
		cmocka_unit_test(test_reentrant_gone_while_deciding),
		cmocka_unit_test(test_exhaustive_to_private),
		cmocka_unit_test(test_exhaustive_to_shared),
		cmocka_unit_test(test_every_row_was_taken),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
