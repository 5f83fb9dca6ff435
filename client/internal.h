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

/* Something read from the socket that dispatch will deliver: an event, or a deferred answer. */
struct queued_event {
	struct queued_event *next;
	enum gmem_wire_event type;   /* events */
	struct json_object *data;    /* owned (a reference): event data, or a deferred answer's whole root */
	struct pending_call *call;   /* owned: set for a deferred answer */
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

/* events.c: hands one queued item to the application's callbacks, then frees it. */
void gmem_deliver(struct gmem_client *c, struct queued_event *q);
/* Deadline-bounded wait for the socket to be readable: 0, -ETIMEDOUT, -errno. */
int gmem_wait_readable(struct gmem_client *c, int64_t deadline_ms);
int64_t gmem_now_ms(void);
