/* SPDX-License-Identifier: MIT */
/*
 * manager: gmemd's root object. It owns the event loop, the backend, the guest table, every client and
 * the listening socket; everything else borrows from it. One thread: every callback runs on its loop.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend.h"
#include "dbus.h"
#include "fdstore.h"
#include "guest.h"
#include "journal.h"
#include "list.h"
#include "notify.h"
#include "quarantine.h"
#include "recent.h"
#include "replay.h"

struct event_base;
struct event;
struct client;

struct manager_config {
	const char *backend;    /* name, never NULL */
	const char *socket_path;
	const char *state_dir;
	uint64_t pool_size;     /* 0 = backend default */
	const char *kmod_device; /* NULL = /dev/gmem_pfn */
	mode_t socket_mode;
	uint64_t prepare_timeout_ms; /* 0 = default 1000 */
	uint64_t ack_timeout_ms;     /* 0 = default 2000 */
	uint64_t token_timeout_ms;   /* 0 = default 30000 */
	gid_t socket_gid;            /* (gid_t)-1: leave the socket's group alone */
	gid_t admin_gid;             /* members may take the admin role; (gid_t)-1: only root/gmemd's uid */
	uint64_t quota_bytes;        /* per uid, over its guests; 0 = the whole pool */
	uint64_t quota_guests;       /* per uid */
	uint64_t max_connections;    /* in total */
	uint64_t max_connections_per_uid;
	enum dbus_kind bus;          /* the D-Bus interface: system (default), session or none */
	uint64_t journal_compact_records; /* snapshot after this many records; 0 = never compact */
	bool recover_from_snapshot;  /* a damaged journal: start from the snapshot and what precedes the damage */
};

struct manager {
	struct manager_config cfg;
	struct event_base *base;
	const struct backend_ops *bops;
	struct backend *backend;
	struct guest_table guests;
	struct list_node clients; /* struct client.node, live ones */
	struct list_node dead;    /* clients waiting for the reaper */
	size_t n_clients;
	uint64_t next_client_id, next_guest_id, next_attach_id, next_conv_seq, next_delegation_id;
	uint64_t epoch; /* random per start: tells this gmemd's conversions from an earlier one's */
	uint32_t features; /* offered at hello: all, unless $GMEMD_TEST_FEATURES_OFF (tests) names some */
	uint64_t prepare_timeout_ms, ack_timeout_ms; /* scaled by $GMEM_TEST_TIMEOUT_SCALE */
	struct list_node active; /* struct conversion.active_node: started and not finished */
	struct list_node delegations; /* struct delegation.node */
	uint64_t token_timeout_ms; /* how long a delegation token is good for, scaled like the others */
	uid_t self_uid;

	int listen_fd;
	bool listen_owned; /* we bound it (unlink at exit) vs received it from systemd */
	struct event *listen_ev, *accept_retry_ev, *reap_ev, *sig_ev[2];
	int lock_fd;
	char *recv_buf; /* GMEM_MSG_MAX bytes, shared by all clients: one thread reads at a time */
	struct dbus *dbus; /* NULL with --bus none */
	struct notify *notify;
	struct recent recent; /* the conversions that ended last (gmemctl conversions) */

	int state_fd;             /* the state dir: the journal lives there */
	struct journal journal;
	struct event *compact_ev;
	struct list_node lost;    /* struct lost_guest.node: journaled guests whose memory did not come back */
	size_t n_lost;
	struct outcome_ring outcomes; /* conversions a restart finished, for in-doubt participants */
	struct fdstore fdstore;       /* what the service manager passed back at start, until the listener ran */
	struct quarantine_set quarantine; /* memory held back for IOMMU holders (quarantine.h) */
};

int manager_new(const struct manager_config *cfg, struct manager **ret);
struct manager *manager_free(struct manager *m);
/* Runs until SIGTERM/SIGINT. Return: 0 or -errno. */
int manager_run(struct manager *m);

/* The lost guest of that name, or NULL (a lost guest keeps its name: no new guest may take it). */
struct lost_guest *manager_lost_find(struct manager *m, const char *name);

/* Forgets a lost guest for good (its journal record goes). */
void manager_forget_lost(struct manager *m, struct lost_guest *l);

/* On a backend that can take files back (kmod), revokes every file h was handed: its mappings fault from
 * then on, in whichever process holds them. Return: how many were revoked (0 on memfd). */
size_t manager_holder_revoke(struct manager *m, const struct holder *h);

/* Destroys a guest: tells its holders, drops attachments and holders, frees its memory. */
void manager_guest_destroy(struct manager *m, struct guest *g);
