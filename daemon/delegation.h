/* SPDX-License-Identifier: MIT */
/*
 * delegation: a holder of a guest opening it for a named grantee, the supported way to hand guest memory
 * to another process (a vhost-user back end) instead of passing one's own fd. `delegate` makes a record
 * with a one-time token of 128 random bits, bound to the grantee ("uid:N" or "gid:N", which must hold a
 * grant on the guest) and good for a limited time; the grantee `redeem`s it over its own connection and
 * gets a file of its own and an attachment of its own, which takes part in conversions like any other.
 * `undelegate` ends that attachment alone (the delegator's files and attachments stay).
 *
 * Lifetimes: an unredeemed record dies at its expiry, at its redemption (it becomes a redeemed one), with
 * its guest, or with the delegator's connection (nobody vouches for it any more). A redeemed record lives
 * exactly as long as the grantee's attachment: attachment_free() ends it, whoever frees the attachment.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "gmem-proto.h"
#include "list.h"
#include "policy.h"

struct manager;
struct client;
struct guest;
struct attachment;
struct event;

struct delegation {
	uint64_t id;
	struct manager *m;
	struct guest *g;         /* borrowed: records die with their guest */
	struct client *from;     /* the delegator, borrowed; NULL once it is gone (redeemed records only) */
	enum grant_kind who_kind; /* the grantee */
	uint32_t who_id;
	uint64_t offset, length;
	int kind;                 /* GMEM_ATTACH_MMAP or GMEM_ATTACH_IOMMU */
	char token[GMEM_TOKEN_LEN + 1]; /* "" once redeemed */
	struct event *expire;     /* unredeemed only */
	struct attachment *at;    /* redeemed: the grantee's attachment, borrowed (it points back) */
	uint64_t file_id;         /* redeemed: the backend's id of the grantee's file (kmod), else 0 */
	struct list_node node;    /* manager.delegations */
};

/* A new unredeemed record with a fresh token, expiring after ttl_ms. Return: 0 or -errno. */
int delegation_new(struct manager *m, struct client *from, struct guest *g, enum grant_kind kind, uint32_t who,
		   uint64_t offset, uint64_t length, int akind, uint64_t ttl_ms, struct delegation **ret);
/* Unlinks and frees; a redeemed record's attachment stays (attachment_free calls this, not the reverse). */
void delegation_free(struct delegation *d);
/* The unredeemed record with this token, or NULL; compares in constant time. */
struct delegation *delegation_find_token(struct manager *m, const char *token);
struct delegation *delegation_find(struct manager *m, uint64_t id);
/* Unredeemed records made by this connection. */
unsigned delegation_count_pending(struct manager *m, const struct client *from);
/* Records of the guest, unredeemed and redeemed. */
unsigned delegation_count_guest(struct manager *m, const struct guest *g);

/* The delegator's connection is going: its unredeemed tokens die, its redeemed ones stay. */
void delegation_client_gone(struct manager *m, struct client *c);
/* The guest is going: every record of it ends. */
void delegation_guest_gone(struct manager *m, struct guest *g);
