/* SPDX-License-Identifier: MIT */
/*
 * conversion: everything around the 2PC engine that touches the world — the per-guest FIFO of
 * conversions (one in flight per guest, guests in parallel), choosing the participants, the messages
 * to them, the timer, the backend step, the shareability map, and the reply to the requester.
 * The decisions themselves are twopc.c's.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "gmem-proto.h"
#include "list.h"
#include "twopc.h"

struct manager;
struct client;
struct guest;
struct journal;

struct conv_range {
	uint64_t offset, length; /* bytes, granule-aligned */
};

/*
 * Queues a conversion of g requested by c (request id req_id, answered when it ends). The ranges are
 * validated, sorted and merged here. Return: 0 (the reply comes later), or -errno with *errmsg set
 * (the caller answers at once).
 */
int conversion_request(struct manager *m, struct client *c, uint64_t req_id, struct guest *g,
		       const struct gmem_convert_args *a, char *errmsg, size_t errlen);

/* A participant's vote or ack. Return: 0, -ESTALE (not awaited any more), -ENOENT, -EALREADY. */
int conversion_vote(struct manager *m, struct client *c, const struct gmem_vote_args *a, char *errmsg,
		    size_t errlen);
int conversion_ack(struct manager *m, struct client *c, const struct gmem_ack_args *a, char *errmsg,
		   size_t errlen);

/* A client went away: it stops being a participant (its yes stands) and a requester. Called from the
 * manager's reaper, on a fresh stack, never from inside a send: a failed send inside an engine callback
 * must not re-enter the conversions it is part of. */
void conversion_client_gone(struct manager *m, struct client *c);
/* A client is being dropped: before its holder records go, the conversions it voted yes in copy the
 * backend ids of its files, to revoke them when the commit is applied. Touches no conversion's state. */
void conversion_client_leaving(struct manager *m, struct client *c);
/* The guest is being destroyed: conversions not yet decided abort, decided ones end now. */
void conversion_guest_gone(struct manager *m, struct guest *g);
/* gmemd is stopping: frees the guest's conversions without a word to anyone. */
void conversion_guest_release(struct guest *g);
/* A test-only build (gmemd-sees-all) lists every client and conversion to everyone: the controls that show
 * test-clients and test-conversions catch a listing that ignores visibility. */
#ifdef GMEM_TEST_SEE_ALL
#define LISTING_SEES_ALL 1
#else
#define LISTING_SEES_ALL 0
#endif

/*
 * The conversions queued or running on the guests who may see, up to max of them in out, by guest then
 * queue order. Return: how many were filled in; *omitted counts the visible ones that did not fit.
 */
size_t conversion_list(struct manager *m, const struct client *who, struct gmem_wire_conversion *out, size_t max,
		       uint64_t *omitted);
/* An operator (admin) aborts conversion seq (epoch 0: this gmemd's) if it is not decided yet: a queued
 * one leaves its queue (its requester gets ECANCELED), a preparing one aborts (the requester's outcome
 * lists the operator as refuser). *ret_guest is its guest. Return: 0, -ENOENT, -EALREADY (decided),
 * -ESTALE (another epoch). */
int conversion_cancel(struct manager *m, struct client *admin, uint64_t epoch, uint64_t seq,
		      struct guest **ret_guest, char *errmsg, size_t errlen);
/* The changing ranges of g's conversion in flight (from its start to its end); false when none. */
bool conversion_inflight_ranges(const struct guest *g, const struct conv_range **ret, size_t *ret_n);
/* Whether [off, off+len) overlaps the conversion in flight on g (attach refuses it). */
bool conversion_busy(const struct guest *g, uint64_t off, uint64_t len);
/* Adds the begin, decision and map change of every conversion in flight to a snapshot being written. */
void conversion_snapshot(struct manager *m, struct journal *j);
