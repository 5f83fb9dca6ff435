/* SPDX-License-Identifier: MIT */
/*
 * twopc: the conversion state machine. twopc_table[] is every legal transition; twopc_event() looks the
 * (state, event) pair up, moves to the row's next state and runs the row's action. Actions may raise
 * derived events (all voted, logged, wave done); those, and events fed back re-entrantly from inside an
 * ops callback, go through the conversion's small queue so every transition still happens one at a
 * time, in order.
 */
#include "twopc.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

const struct twopc_transition twopc_table[] = {
	{ TP_QUEUED, TE_START, TP_PREPARING, TA_SEND_PREPARE },
	{ TP_QUEUED, TE_CANCEL, TP_ABORTED, TA_ABORT },

	{ TP_PREPARING, TE_VOTE_YES, TP_PREPARING, TA_RECORD_YES },
	{ TP_PREPARING, TE_GONE_VOTED, TP_PREPARING, TA_RECORD_GONE },
	{ TP_PREPARING, TE_ALL_VOTED, TP_DECIDING, TA_LOG_COMMIT },
	{ TP_PREPARING, TE_VOTE_NO, TP_ABORTED, TA_ABORT },
	{ TP_PREPARING, TE_GONE_UNVOTED, TP_ABORTED, TA_ABORT },
	{ TP_PREPARING, TE_TIMEOUT, TP_ABORTED, TA_ABORT },
	{ TP_PREPARING, TE_CANCEL, TP_ABORTED, TA_ABORT },

	/* The decision point: nobody hears "commit" before it is written. Writing it may run the loop, so
	 * a yes-voter can leave meanwhile: its yes stands. */
	{ TP_DECIDING, TE_GONE_VOTED, TP_DECIDING, TA_RECORD_GONE },
	{ TP_DECIDING, TE_LOGGED, TP_WAVE1, TA_SEND_WAVE1 },
	{ TP_DECIDING, TE_LOG_FAILED, TP_ABORTED, TA_ABORT },

	{ TP_WAVE1, TE_ACK, TP_WAVE1, TA_RECORD_ACK },
	{ TP_WAVE1, TE_GONE_VOTED, TP_WAVE1, TA_RECORD_GONE },
	{ TP_WAVE1, TE_WAVE_DONE, TP_BACKEND, TA_BACKEND },
	{ TP_WAVE1, TE_TIMEOUT, TP_BACKEND, TA_BACKEND },

	{ TP_BACKEND, TE_ACK, TP_BACKEND, TA_RECORD_ACK },
	{ TP_BACKEND, TE_GONE_VOTED, TP_BACKEND, TA_RECORD_GONE },
	{ TP_BACKEND, TE_BACKEND_DONE, TP_WAVE3, TA_SEND_WAVE3 },

	{ TP_WAVE3, TE_ACK, TP_WAVE3, TA_RECORD_ACK },
	{ TP_WAVE3, TE_GONE_VOTED, TP_WAVE3, TA_RECORD_GONE },
	{ TP_WAVE3, TE_WAVE_DONE, TP_COMMITTED, TA_FINISH_COMMIT },
	{ TP_WAVE3, TE_TIMEOUT, TP_COMMITTED, TA_FINISH_COMMIT },
};
const size_t twopc_table_len = sizeof(twopc_table) / sizeof(twopc_table[0]);

const char *const twopc_state_names[_TP_STATE_MAX] = {
	[TP_QUEUED] = "queued",   [TP_PREPARING] = "preparing", [TP_DECIDING] = "deciding",
	[TP_WAVE1] = "wave1",     [TP_BACKEND] = "backend",     [TP_WAVE3] = "wave3",
	[TP_COMMITTED] = "committed", [TP_ABORTED] = "aborted",
};
const char *const twopc_event_names[_TE_MAX] = {
	[TE_START] = "start",           [TE_VOTE_YES] = "vote-yes",     [TE_VOTE_NO] = "vote-no",
	[TE_GONE_UNVOTED] = "gone-unvoted", [TE_GONE_VOTED] = "gone-voted", [TE_TIMEOUT] = "timeout",
	[TE_CANCEL] = "cancel",         [TE_ALL_VOTED] = "all-voted",   [TE_LOGGED] = "logged",
	[TE_LOG_FAILED] = "log-failed", [TE_ACK] = "ack",               [TE_WAVE_DONE] = "wave-done",
	[TE_BACKEND_DONE] = "backend-done",
};
const char *const twopc_action_names[_TA_MAX] = {
	[TA_NONE] = "none",           [TA_SEND_PREPARE] = "send-prepare", [TA_RECORD_YES] = "record-yes",
	[TA_RECORD_GONE] = "record-gone", [TA_LOG_COMMIT] = "log-commit", [TA_ABORT] = "abort",
	[TA_SEND_WAVE1] = "send-wave1", [TA_RECORD_ACK] = "record-ack",   [TA_BACKEND] = "backend",
	[TA_SEND_WAVE3] = "send-wave3", [TA_FINISH_COMMIT] = "finish-commit",
};

#define QUEUE_MAX (sizeof(((struct twopc *)0)->q) / sizeof(((struct twopc *)0)->q[0]))

void twopc_init(struct twopc *t, bool to_private, struct twopc_part *parts, size_t n_parts,
		const struct twopc_ops *ops, void *user)
{
	uint64_t pt = t->prepare_timeout_ms, at = t->ack_timeout_ms;
	memset(t, 0, sizeof(*t));
	t->state = TP_QUEUED;
	t->to_private = to_private;
	t->parts = parts;
	t->n_parts = n_parts;
	t->ops = ops;
	t->user = user;
	t->prepare_timeout_ms = pt ? pt : 1000;
	t->ack_timeout_ms = at ? at : 2000;
	for (size_t i = 0; i < n_parts; i++)
		parts[i].state = TPP_INVITED;
}

int twopc_wave_of(const struct twopc *t, enum twopc_role role)
{
	/* to-private: devices let go before the backend; to-shared: they map only after it. */
	if (t->to_private)
		return role == TP_ROLE_DEVICE ? 1 : 3;
	return role == TP_ROLE_VMM ? 1 : 3;
}

bool twopc_finished(const struct twopc *t)
{
	return t->state == TP_COMMITTED || t->state == TP_ABORTED;
}

static const struct twopc_transition *lookup(enum twopc_state s, enum twopc_event ev)
{
	for (size_t i = 0; i < twopc_table_len; i++)
		if (twopc_table[i].from == s && twopc_table[i].event == ev)
			return &twopc_table[i];
	return NULL;
}

static void raise_event(struct twopc *t, enum twopc_event ev, struct twopc_part *part)
{
	/* A conversion raises at most a few derived events per step: overflow is our bug. */
	assert(t->busy && t->q_tail - t->q_head < QUEUE_MAX);
	t->q[t->q_tail % QUEUE_MAX].ev = ev;
	t->q[t->q_tail % QUEUE_MAX].part = part;
	t->q_tail++;
}

static bool all_voted(const struct twopc *t)
{
	for (size_t i = 0; i < t->n_parts; i++)
		if (t->parts[i].state != TPP_YES)
			return false;
	return true;
}

static bool wave_done(const struct twopc *t, int wave)
{
	for (size_t i = 0; i < t->n_parts; i++) {
		const struct twopc_part *p = &t->parts[i];
		if (twopc_wave_of(t, p->role) == wave && p->state == TPP_COMMITTING && !p->gone)
			return false;
	}
	return true;
}

static void send_wave(struct twopc *t, int wave)
{
	for (size_t i = 0; i < t->n_parts; i++) {
		struct twopc_part *p = &t->parts[i];
		if (twopc_wave_of(t, p->role) != wave)
			continue;
		p->state = TPP_COMMITTING;
		if (!p->gone)
			t->ops->send_commit(t, p, wave);
	}
	if (wave_done(t, wave))
		raise_event(t, TE_WAVE_DONE, NULL);
	else
		t->ops->timer(t, t->ack_timeout_ms);
}

/* A wave that ended by timeout: whoever did not ack is reported, and the outcome is unverified. */
static void close_wave(struct twopc *t, int wave)
{
	for (size_t i = 0; i < t->n_parts; i++) {
		struct twopc_part *p = &t->parts[i];
		if (twopc_wave_of(t, p->role) == wave && p->state == TPP_COMMITTING) {
			if (!p->gone)
				p->timed_out = true;
			t->unverified = true;
		}
	}
}

static void run_action(struct twopc *t, const struct twopc_transition *tr, enum twopc_event ev,
		       struct twopc_part *part)
{
	switch (tr->action) {
	case TA_NONE:
		break;
	case TA_SEND_PREPARE:
		for (size_t i = 0; i < t->n_parts; i++)
			t->ops->send_prepare(t, &t->parts[i]);
		if (all_voted(t)) /* no participants at all */
			raise_event(t, TE_ALL_VOTED, NULL);
		else
			t->ops->timer(t, t->prepare_timeout_ms);
		break;
	case TA_RECORD_YES:
		assert(part && part->state == TPP_INVITED);
		part->state = TPP_YES;
		part->voted = true;
		if (all_voted(t))
			raise_event(t, TE_ALL_VOTED, NULL);
		break;
	case TA_RECORD_GONE:
		assert(part);
		part->gone = true;
		/* A yes-voter that leaves before acking cannot be seen letting go. */
		if (part->state != TPP_ACKED)
			t->unverified = true;
		if ((t->state == TP_WAVE1 && wave_done(t, 1)) || (t->state == TP_WAVE3 && wave_done(t, 3)))
			raise_event(t, TE_WAVE_DONE, NULL);
		break;
	case TA_LOG_COMMIT: {
		t->ops->timer(t, 0);
		int r = t->ops->log_commit(t);
		if (r < 0) {
			t->log_err = -r;
			raise_event(t, TE_LOG_FAILED, NULL);
		} else {
			raise_event(t, TE_LOGGED, NULL);
		}
		break;
	}
	case TA_ABORT:
		t->ops->timer(t, 0);
		if (ev == TE_TIMEOUT)
			for (size_t i = 0; i < t->n_parts; i++)
				if (t->parts[i].state == TPP_INVITED && !t->parts[i].gone)
					t->parts[i].timed_out = true;
		if (ev == TE_VOTE_NO && part) {
			part->state = TPP_NO;
			part->voted = true;
		}
		if (ev == TE_GONE_UNVOTED && part)
			part->gone = true;
		if (ev == TE_CANCEL)
			t->cancelled = true;
		t->ops->log_abort(t);
		for (size_t i = 0; i < t->n_parts; i++) {
			struct twopc_part *p = &t->parts[i];
			/* Nothing was unmapped: everyone who was asked to prepare simply resumes. */
			if (!p->gone && tr->from != TP_QUEUED)
				t->ops->send_abort(t, p);
			if (p->state != TPP_NO)
				p->state = TPP_ABORTED;
		}
		t->ops->finish(t);
		break;
	case TA_SEND_WAVE1:
		send_wave(t, 1);
		break;
	case TA_RECORD_ACK:
		assert(part);
		if (part->state == TPP_COMMITTING)
			part->state = TPP_ACKED;
		if ((t->state == TP_WAVE1 && wave_done(t, 1)) || (t->state == TP_WAVE3 && wave_done(t, 3)))
			raise_event(t, TE_WAVE_DONE, NULL);
		break;
	case TA_BACKEND:
		t->ops->timer(t, 0);
		if (ev == TE_TIMEOUT)
			close_wave(t, 1);
		t->ops->backend(t);
		break;
	case TA_SEND_WAVE3:
		send_wave(t, 3);
		break;
	case TA_FINISH_COMMIT:
		t->ops->timer(t, 0);
		if (ev == TE_TIMEOUT)
			close_wave(t, 3);
		t->ops->finish(t);
		break;
	case _TA_MAX:
		break;
	}
}

static int step(struct twopc *t, enum twopc_event ev, struct twopc_part *part)
{
	const struct twopc_transition *tr = lookup(t->state, ev);
	if (!tr)
		return -ESTALE;
	t->state = tr->to;
	run_action(t, tr, ev, part);
	return 0;
}

int twopc_event(struct twopc *t, enum twopc_event ev, struct twopc_part *part)
{
	/* Re-entered from an ops callback (a backend that finishes at once, say): queue it behind the
	 * transition in progress. Whether it is stale is decided when its turn comes. */
	if (t->busy) {
		if (t->q_tail - t->q_head >= QUEUE_MAX)
			return -EBUSY;
		raise_event(t, ev, part);
		return 0;
	}

	t->busy = true;
	t->q_head = t->q_tail = 0;
	int r = step(t, ev, part);
	while (r == 0 && t->q_head < t->q_tail) {
		unsigned i = t->q_head++ % QUEUE_MAX;
		/* A derived event can go stale when an earlier one finished the conversion. */
		(void)step(t, t->q[i].ev, t->q[i].part);
	}
	t->busy = false;
	return r;
}
