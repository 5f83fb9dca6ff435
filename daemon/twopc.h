/* SPDX-License-Identifier: MIT */
/*
 * twopc: the conversion engine — a two-phase commit across the participants of one conversion, with no
 * I/O of its own. Events go in through twopc_event(); everything the engine wants done (send prepare,
 * write the decision, send commit for a wave, apply the backend, arm a timer, finish) comes out through
 * struct twopc_ops. Every state change is a row of twopc_table[], the single source of truth that the
 * unit tests drive and the model of tests/model/ is checked against.
 *
 * Commit waves are ordered by direction (DESIGN.md, "Why a two-phase commit"):
 *   to-private: wave 1 devices unmap and ack -> backend (set private, zap, audit) -> wave 3 vmm acks
 *   to-shared:  wave 1 vmm acks -> backend (set shared) -> wave 3 devices map and ack
 * A yes is a promise: once every participant voted yes and the decision is logged, the conversion
 * commits whatever happens to the participants afterwards. A participant that disconnects after voting
 * yes still counts; if it had not acked, the outcome is "unverified" (memfd cannot check it let go).
 * An ack that never comes (timeout) does not change the outcome either; it is recorded.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum twopc_state {
	TP_QUEUED,     /* waiting for the guest's earlier conversions */
	TP_PREPARING,  /* prepare sent, collecting votes */
	TP_DECIDING,   /* all voted yes: the commit decision is being logged */
	TP_WAVE1,      /* commit sent to the first wave, collecting acks */
	TP_BACKEND,    /* the backend applies the change */
	TP_WAVE3,      /* commit sent to the last wave, collecting acks */
	TP_COMMITTED,  /* terminal */
	TP_ABORTED,    /* terminal */
	_TP_STATE_MAX,
};

enum twopc_event {
	TE_START,           /* the conversion reached the head of its guest's queue */
	TE_VOTE_YES,
	TE_VOTE_NO,
	TE_GONE_UNVOTED,    /* a participant disconnected before voting: a no */
	TE_GONE_VOTED,      /* a participant disconnected after voting yes: the yes stands */
	TE_TIMEOUT,         /* the prepare timeout, or the ack timeout of a wave */
	TE_CANCEL,          /* an operator aborts a conversion not yet decided */
	TE_ALL_VOTED,       /* derived: every participant voted yes */
	TE_LOGGED,          /* derived: the commit decision was written */
	TE_LOG_FAILED,      /* derived: writing it failed: abort instead */
	TE_ACK,
	TE_WAVE_DONE,       /* derived: every participant of the wave acked or is gone */
	TE_BACKEND_DONE,
	_TE_MAX,
};

/* What a row of the table does on its way to the next state. */
enum twopc_action {
	TA_NONE,
	TA_SEND_PREPARE,   /* prepare to every participant, arm the prepare timer */
	TA_RECORD_YES,
	TA_RECORD_GONE,
	TA_LOG_COMMIT,     /* write the commit decision (may fail) */
	TA_ABORT,          /* write the abort, tell every participant abort, finish */
	TA_SEND_WAVE1,     /* commit to the first wave, arm the ack timer */
	TA_RECORD_ACK,
	TA_BACKEND,        /* apply the change in the backend */
	TA_SEND_WAVE3,
	TA_FINISH_COMMIT,  /* done to every participant, reply to the requester */
	_TA_MAX,
};

enum twopc_role { TP_ROLE_DEVICE, TP_ROLE_VMM };

enum twopc_pstate {
	TPP_INVITED,    /* prepare sent, no vote yet */
	TPP_YES,
	TPP_NO,
	TPP_COMMITTING, /* commit sent, no ack yet */
	TPP_ACKED,
	TPP_ABORTED,    /* abort sent */
};

struct twopc_part {
	enum twopc_role role;
	enum twopc_pstate state;
	bool voted;         /* it voted (yes or no) before the conversion ended */
	bool gone;          /* disconnected */
	bool timed_out;     /* did not vote, or did not ack, in time */
	int no_err;         /* a no vote's errno (positive) */
	char reason[256];   /* a no vote's reason */
	void *user;         /* the daemon's participant record */
};

struct twopc;

struct twopc_ops {
	void (*send_prepare)(struct twopc *t, struct twopc_part *p);
	/* Write the commit decision and the participant set before anyone hears it. 0 or -errno. */
	int (*log_commit)(struct twopc *t);
	/* Write the abort decision (best effort: presumed abort covers a failure). */
	void (*log_abort)(struct twopc *t);
	void (*send_commit)(struct twopc *t, struct twopc_part *p, int wave);
	void (*send_abort)(struct twopc *t, struct twopc_part *p);
	/* Apply the change in the backend; the caller feeds TE_BACKEND_DONE when it is done. */
	void (*backend)(struct twopc *t);
	/* Arm (ms > 0) or disarm (ms == 0) the conversion's one timer. */
	void (*timer)(struct twopc *t, uint64_t ms);
	/* The outcome is final: tell everyone, reply to the requester. Called exactly once. */
	void (*finish)(struct twopc *t);
};

struct twopc {
	enum twopc_state state;
	bool to_private;
	struct twopc_part *parts; /* owned by the caller */
	size_t n_parts;
	uint64_t prepare_timeout_ms, ack_timeout_ms;
	const struct twopc_ops *ops;
	void *user;

	/* Results, for the finish callback. */
	bool unverified;     /* a yes-voter left, or never acked: its letting go was not seen */
	int log_err;         /* TE_LOG_FAILED: why */
	bool cancelled;
	int backend_err;     /* set by the caller before TE_BACKEND_DONE; reported, outcome unchanged */

	/* Derived events, and events fed back from inside an ops callback, wait here so transitions
	 * happen one at a time and in order. */
	bool busy;
	unsigned q_head, q_tail;
	struct {
		enum twopc_event ev;
		struct twopc_part *part;
	} q[16];
};

struct twopc_transition {
	enum twopc_state from;
	enum twopc_event event;
	enum twopc_state to;
	enum twopc_action action;
};

/* The table: every legal (state, event) pair. An event with no row in the current state is ignored
 * and reported as stale (-ESTALE), e.g. a vote that arrives after a timeout aborted the conversion. */
extern const struct twopc_transition twopc_table[];
extern const size_t twopc_table_len;

extern const char *const twopc_state_names[_TP_STATE_MAX];
extern const char *const twopc_event_names[_TE_MAX];
extern const char *const twopc_action_names[_TA_MAX];

/* t must be zeroed, or have only prepare_timeout_ms / ack_timeout_ms set (0 = 1000 / 2000 ms): those
 * two are kept, everything else is reset. */
void twopc_init(struct twopc *t, bool to_private, struct twopc_part *parts, size_t n_parts,
		const struct twopc_ops *ops, void *user);

/*
 * Feeds one event. part is the participant it concerns (votes, acks, disconnects) or NULL. Derived
 * events (all voted, wave done, logged) are raised inside before it returns.
 * Return: 0, or -ESTALE when the event has no row in the current state (nothing changed).
 */
int twopc_event(struct twopc *t, enum twopc_event ev, struct twopc_part *part);

/* The wave a role commits in for this direction: 1 or 3. */
int twopc_wave_of(const struct twopc *t, enum twopc_role role);
bool twopc_finished(const struct twopc *t);
