/* SPDX-License-Identifier: MIT */
/*
 * libgmem internals: the handle, and the one request/reply primitive every op wrapper uses.
 */
#pragma once

#include <gmem/gmem.h>

#include "gmem-proto.h"

struct json_object;

/* A request answered later (convert): its callback runs from dispatch when the answer arrives. */
struct pending_call {
	struct pending_call *next;
	uint64_t id;
	enum gmem_op op;
	gmem_convert_fn fn; /* NULL: the caller gave up (timeout); the answer is dropped */
	void *userdata;
};

/* reconnect.c: what the connection announced, to announce it again after gmemd restarts. */
struct rc_attach {
	struct rc_attach *next;
	uint64_t app_id;    /* the id the application was given: stays valid across restarts */
	uint64_t server_id; /* gmemd's id on the current connection */
	char name[GMEM_NAME_MAX + 1];
	uint64_t offset, length;
	int kind;
};
struct rc_lease {
	struct rc_lease *next;
	char name[GMEM_NAME_MAX + 1];
};
/* A conversion this client takes part in that has not ended for it (prepare heard, no done yet). */
struct rc_doubt {
	struct rc_doubt *next;
	uint64_t epoch, seq;
	char guest[GMEM_NAME_MAX + 1];
	int role, target;
	bool zero;
	struct gmem_range *ranges; /* owned: what prepare said concerns this client; commit, abort, done repeat it */
	size_t n_ranges;
	bool commit_seen; /* it heard commit for its wave already */
	bool resolving;   /* a restarted gmemd told the outcome; being delivered */
};

/* Queue items that are not wire events (beyond _GMEM_WIRE_EVENT_MAX). */
enum {
	GMEM_QEV_ANSWER_LOST = 1000, /* a deferred call whose connection died: its callback gets -ECONNRESET */
	GMEM_QEV_DISCONNECTED,
	GMEM_QEV_RECONNECTED,
	GMEM_QEV_DOUBT, /* an in-doubt conversion's outcome from a restarted gmemd (or that it has none) */
};

/* Something read from the socket that dispatch will deliver: an event, or a deferred answer. */
struct queued_event {
	struct queued_event *next;
	int type;                    /* enum gmem_wire_event, or GMEM_QEV_* */
	struct json_object *data;    /* owned (a reference): event data, or a deferred answer's whole root */
	struct pending_call *call;   /* owned: set for a deferred answer */
	struct rc_doubt doubt;       /* GMEM_QEV_DOUBT: a copy */
	int outcome;                 /* GMEM_QEV_DOUBT: enum gmem_outcome, or -1 (gmemd does not know it) */
};

struct gmem_client {
	int sock;  /* SEQPACKET to gmemd, non-blocking */
	int epfd;  /* what gmem_get_fd() returns: sock and evfd inside, so it never changes */
	int evfd;  /* eventfd, readable while events wait in the queue */
	int timeout_ms;
	uint64_t next_id;
	bool closed; /* gmemd closed the connection */

	uint32_t features;
	char server[GMEM_NAME_MAX + 1];
	char backend[16];
	bool enforcing;
	uint64_t client_id;
	char err[GMEM_TEXT_MAX];

	gmem_event_fn event_fn;
	void *event_data;
	const struct gmem_participant_ops *part_ops;
	void *part_data;
	struct pending_call *pending;
	struct queued_event *evq_head, *evq_tail;
	char *buf; /* GMEM_MSG_MAX bytes */

	/* Reconnecting (reconnect.c). */
	char path[108];          /* the socket, for the next connect */
	enum gmem_role role;
	int reconnect_max_ms;    /* the backoff's bound; 0: off (gmem_set_reconnect) */
	bool reconnecting;
	int backoff_ms;
	int tfd;                 /* timerfd in epfd while reconnecting */
	bool watching;
	unsigned reannounce_failed;
	struct rc_attach *attaches;
	struct rc_lease *leases;
	struct rc_doubt *doubts;
};

/*
 * Sends op with args and waits for its answer, queueing events that arrive meanwhile. On success the
 * reply is decoded into reply (which the caller then releases with gmem_fields_release), and for
 * GMEM_OP_FD_REPLY ops *ret_fd holds the received fd (owned by the caller).
 * Return: 0, the daemon's -errno (message in c->err), or a local -errno.
 */
int gmem_call(struct gmem_client *c, enum gmem_op op, const void *args, void *reply, int *ret_fd);

/* Sends op (a GMEM_OP_DEFERRED one) and returns at once; fn runs from dispatch with the answer. */
int gmem_call_async(struct gmem_client *c, enum gmem_op op, const void *args, gmem_convert_fn fn,
		    void *userdata, struct pending_call **ret);

/* conn.c: queue an item for dispatch (data: a new reference is taken; call: owned). */
void gmem_queue(struct gmem_client *c, int type, struct json_object *data, struct pending_call *call);
void gmem_queue_doubt(struct gmem_client *c, const struct rc_doubt *d, int outcome);
int gmem_hello(struct gmem_client *c, enum gmem_role role);

/* reconnect.c */
uint64_t rc_attach_added(struct gmem_client *c, const char *name, uint64_t offset, uint64_t length, int kind,
			 uint64_t server_id);
uint64_t rc_attach_server_id(struct gmem_client *c, uint64_t app_id);
void rc_attach_removed(struct gmem_client *c, uint64_t app_id);
void rc_lease_changed(struct gmem_client *c, const char *name, bool held);
void rc_guest_gone(struct gmem_client *c, const char *name);
struct rc_doubt *rc_doubt_find(struct gmem_client *c, uint64_t epoch, uint64_t seq);
/* ranges (borrowed) are copied: the later events of the conversion carry only its id. */
void rc_prepared(struct gmem_client *c, uint64_t epoch, uint64_t seq, const char *guest, int role, int target,
		 bool zero, const struct gmem_range *ranges, size_t n_ranges);
void rc_ended(struct gmem_client *c, uint64_t epoch, uint64_t seq);
void rc_free_all(struct gmem_client *c);
/* The connection is gone: with reconnect on, start coming back. */
void rc_lost(struct gmem_client *c);
/* The backoff timer fired: try again. */
void rc_tick(struct gmem_client *c);

/* events.c: hands one queued item to the application's callbacks, then frees it. */
void gmem_deliver(struct gmem_client *c, struct queued_event *q);
/* Deadline-bounded wait for the socket to be readable: 0, -ETIMEDOUT, -errno. */
int gmem_wait_readable(struct gmem_client *c, int64_t deadline_ms);
int64_t gmem_now_ms(void);
