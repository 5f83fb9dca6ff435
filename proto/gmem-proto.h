/* SPDX-License-Identifier: MIT */
/*
 * gmem-proto: the wire protocol shared by gmemd and libgmem — version, limits, roles, and the table of
 * ops and events with the struct and field table of each. PROTOCOL.md is the normative text; this
 * header and messages.c must say the same thing.
 *
 * Bump GMEM_PROTOCOL_VERSION on any incompatible change (a removed op or field, a changed meaning).
 * Adding an optional request field needs a feature name in GMEM_FEATURES (a daemon that does not know
 * the field rejects it); adding a reply or event field needs nothing (clients skip unknown keys).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gmem/gmem.h>

#include "codec.h"

#define GMEM_PROTOCOL_VERSION 1

/* Limits (PROTOCOL.md, "Limits"). */
#define GMEM_MSG_MAX 65536          /* bytes in one datagram, either direction */
#define GMEM_JSON_DEPTH 8           /* nesting of arrays and objects */
#define GMEM_NAME_MAX 64            /* guest name, bytes */
#define GMEM_TEXT_MAX 256           /* free-text fields (error messages, reasons), bytes */
#define GMEM_FLAGS_MAX 32           /* entries in a feature list */
#define GMEM_LIST_PAGE 200          /* guests in one list reply (keeps it well under GMEM_MSG_MAX) */
#define GMEM_ATTACH_MAX 1024        /* attachments per client */
#define GMEM_FDS_IN_MAX 253         /* SCM_RIGHTS fds the daemon drains from one client datagram */
#define GMEM_RANGES_MAX 1024        /* ranges in one conversion */
#define GMEM_REFUSALS_MAX 64        /* refusers listed in one convert reply */
#define GMEM_MAP_PAGE 800           /* runs in one map reply */
#define GMEM_CONVERTS_MAX 16        /* convert requests one connection may have unanswered */
#define GMEM_CLIENTS_PAGE 200       /* connections in one clients reply */
#define GMEM_IN_FLIGHT_MAX 100      /* conversions in flight listed in one conversions reply */
#define GMEM_RECENT_MAX 64          /* finished conversions gmemd remembers (and lists) */
#define GMEM_PID_ATTACH_MAX 64      /* attachments held on behalf of processes, per guest */
#define GMEM_DELEGATIONS_MAX 16     /* unredeemed delegations one connection may have made */
#define GMEM_TOKEN_LEN 32           /* a delegation token: 128 random bits in lowercase hex */
#define GMEM_HOLDERS_PAGE 32        /* holders in one holders reply */
#define GMEM_HOLDER_RANGES_MAX 16   /* attachments listed per holder (the count says how many there are) */
#define GMEM_STATS_PAGE 64          /* guests in one stats reply */
#define GMEM_QUARANTINE_LIST_MAX 64 /* quarantine records in one status reply */
#define GMEM_ORPHANS_PAGE 100       /* orphans in one list-orphans reply */

#define GMEM_DEFAULT_SOCKET "/run/gmem/gmemd.sock"

/* enum gmem_role and enum gmem_attach_kind are public API (gmem.h); these name them on the wire. */
extern const char *const gmem_role_names[];
extern const char *const gmem_attach_kind_names[];

/* Optional capabilities, negotiated at hello: the bit index is the position in this list. */
#define GMEM_FEATURES(X)                                                                                 \
	X(LEASE, "lease")                                                                                \
	X(LIST_PAGES, "list-pages")                                                                      \
	X(CONVERT, "convert")                                                                            \
	X(GRANTS, "grants")                                                                              \
	X(ATTACH_PID, "attach-pid")                                                                      \
	X(DELEGATE, "delegate")                                                                          \
	X(DURABLE, "durable")                                                                            \
	X(PUBLISH_MAP, "publish-map")                                                                    \
	X(EPHEMERAL, "ephemeral")                                                                        \
	X(OPERATOR, "operator")                                                                          \
	X(STATS, "stats")                                                                                \
	X(ORPHANS, "orphans")
enum {
#define X(id, name) GMEM_FEATURE_BIT_##id,
	GMEM_FEATURES(X)
#undef X
};
#define X(id, name) GMEM_FEATURE_##id = 1u << GMEM_FEATURE_BIT_##id,
enum { GMEM_FEATURES(X) };
#undef X

extern const char *const gmem_target_names[];   /* "shared", "private": enum gmem_target */
extern const char *const gmem_content_names[];  /* "preserve", "zero" */
extern const char *const gmem_vote_names[];     /* "yes", "no" */
extern const char *const gmem_outcome_names[];  /* enum gmem_outcome */
extern const char *const gmem_state_names[];    /* watch: conversion states */
extern const char *const gmem_feature_names[];
#define GMEM_FEATURES_ALL ((1u << (0 GMEM_FEATURES(GMEM_COUNT_ONE))) - 1)
#define GMEM_COUNT_ONE(id, name) +1

/* The feature bits named in a comma-separated list ("publish-map,stats"); unknown names are ignored.
 * For the test-only switches that make gmemd or libgmem act as a build without those features. */
uint32_t gmem_features_parse(const char *list);

/* Guest names: 1..GMEM_NAME_MAX bytes of [A-Za-z0-9._-], not starting with '.' or '-'. */
bool gmem_name_valid(const char *name);

/* ---- op payloads ---- */

struct gmem_hello_args {
	uint64_t version;
	int role;
	uint32_t features;
	char client_name[GMEM_NAME_MAX + 1];
};
struct gmem_hello_reply {
	uint64_t version;
	uint32_t features;
	char server[GMEM_NAME_MAX + 1];
	char backend[16];
	bool enforcing;
	uint64_t client_id;
};

struct gmem_status_args {
	char unused;
};
#define GMEM_NODES_MAX 64   /* NUMA nodes a status reply lists */
#define GMEM_NODE_MAX 1023  /* highest node number create accepts */
struct gmem_wire_node {
	uint64_t node;
	uint64_t total, free; /* bytes of the pool's ranges on that node */
};
/* A quarantined piece of memory and the IOMMU holder it waits for (PROTOCOL.md, "Quarantine"). */
struct gmem_wire_quarantine {
	char guest[GMEM_NAME_MAX + 1];
	bool destroyed; /* the guest is gone; its memory stays allocated */
	uint64_t offset, length;
	uint64_t seq;   /* unacked: the conversion the holder did not ack */
	uint64_t client_id;
	uint64_t pid;
	char client_name[GMEM_NAME_MAX + 1];
};
struct gmem_status_reply {
	char server[GMEM_NAME_MAX + 1];
	char backend[16];
	bool enforcing;
	uint64_t pool_size;
	uint64_t pool_used;
	uint64_t touched;
	uint64_t guests;
	uint64_t clients;
	struct gmem_wire_node *nodes; /* kmod: the pool per NUMA node (ranges given with @node) */
	size_t n_nodes;
	uint64_t quarantined; /* bytes, over the pool */
	struct gmem_wire_quarantine *quarantine; /* the records the caller may see */
	size_t n_quarantine;
};

struct gmem_guest_args { /* lease, release, publish-map */
	char name[GMEM_NAME_MAX + 1];
};
struct gmem_destroy_args {
	char name[GMEM_NAME_MAX + 1];
	bool force; /* feature "operator" */
};

/* Orphans (feature "orphans", role admin): guests the module holds that no journal names. */
struct gmem_wire_orphan {
	uint64_t id; /* the module's guest id */
	uint64_t size, granule;
	bool on_node; /* created on `node`'s ranges (else: any) */
	uint64_t node;
	uint64_t private_bytes;
	uint64_t holders; /* files open on it (of processes of an earlier gmemd) */
	uint64_t cookie;  /* the module's cookie: the id the gmemd that created it gave it */
};
struct gmem_orphans_reply {
	struct gmem_wire_orphan *orphans;
	size_t n_orphans;
	uint64_t next; /* 0 = this was the last page, else pass as 'after' */
};
struct gmem_adopt_args {
	uint64_t id; /* an orphan's module id */
	char name[GMEM_NAME_MAX + 1];
	uint64_t owner; /* uid */
};
struct gmem_orphan_args {
	uint64_t id;
};

/* Operator ops (feature "operator", role admin). */
struct gmem_holders_args {
	char name[GMEM_NAME_MAX + 1];
	uint64_t after; /* a client id: list holders with larger ids */
};
struct gmem_wire_attachment {
	uint64_t id;
	uint64_t offset, length;
	int kind; /* enum gmem_attach_kind */
};
struct gmem_wire_holder {
	uint64_t client_id;
	uint64_t pid, uid;
	char client_name[GMEM_NAME_MAX + 1];
	int role;
	uint64_t files;
	bool leased;
	uint64_t attachments; /* how many; the first GMEM_HOLDER_RANGES_MAX are listed */
	struct gmem_wire_attachment *ranges;
	size_t n_ranges;
};
struct gmem_holders_reply {
	struct gmem_wire_holder *holders;
	size_t n_holders;
	uint64_t next;
};
struct gmem_cancel_args {
	uint64_t epoch; /* 0: this gmemd's */
	uint64_t seq;
};
struct gmem_evict_args {
	uint64_t client_id;
};

/* stats (feature "stats"): per guest, what gmemctl top shows. */
struct gmem_wire_guest_stats {
	uint64_t id;
	char name[GMEM_NAME_MAX + 1];
	uint64_t conversions, committed, aborted, unverified; /* ended, since the guest was created */
	uint64_t queued;   /* waiting, the one in flight included */
	uint64_t window;   /* how many recent conversions p50 and p99 are over */
	uint64_t p50_us, p99_us;
	uint64_t quarantined_bytes;
	uint64_t slowest_client_id; /* 0: none in the window */
	uint64_t slowest_pid;
	char slowest_name[GMEM_NAME_MAX + 1];
	uint64_t slowest_vote_us;
};
struct gmem_stats_reply {
	struct gmem_wire_guest_stats *guests;
	size_t n_guests;
	uint64_t next;
	uint64_t quarantined_bytes; /* over every guest the caller may see */
};
struct gmem_empty_reply {
	char unused;
};

struct gmem_create_args {
	char name[GMEM_NAME_MAX + 1];
	uint64_t size;
	uint64_t granule;
	bool on_node; /* kmod: take the memory from `node`'s ranges only */
	uint64_t node;
	bool ephemeral; /* feature "ephemeral" */
};
struct gmem_wire_guest {
	uint64_t id;
	char name[GMEM_NAME_MAX + 1];
	uint64_t size;
	uint64_t granule;
	uint64_t owner;
	uint64_t touched;
	uint64_t holders;
	uint64_t attachments;
	bool leased;
	uint64_t delegations; /* made and not yet ended: unredeemed tokens and redeemed attachments */
	bool ephemeral;
};

struct gmem_list_args {
	uint64_t after; /* guest id; 0 = from the start */
};
struct gmem_list_reply {
	struct gmem_wire_guest *guests;
	size_t n_guests;
	uint64_t next; /* 0 = this was the last page, else pass as 'after' */
};

struct gmem_open_reply {
	struct gmem_wire_guest guest;
	uint64_t fd; /* index into the datagram's SCM_RIGHTS array: always 0 */
};

struct gmem_grant_args { /* grant, revoke */
	char name[GMEM_NAME_MAX + 1];
	char who[32]; /* "uid:N" or "gid:N" */
	int role;     /* enum gmem_role: device or vmm */
};

struct gmem_attach_args {
	char name[GMEM_NAME_MAX + 1];
	uint64_t offset;
	uint64_t length;
	int kind;
	uint64_t pid; /* feature attach-pid: held on behalf of this child of the requester; 0 = the connection */
};
struct gmem_attach_reply {
	uint64_t id;
};
struct gmem_detach_args {
	uint64_t id;
};

struct gmem_delegate_args {
	char name[GMEM_NAME_MAX + 1];
	char who[32]; /* the grantee: "uid:N" or "gid:N" */
	uint64_t offset;
	uint64_t length;
	int kind; /* enum gmem_attach_kind: mmap or iommu */
};
struct gmem_delegate_reply {
	uint64_t id; /* names the delegation for undelegate */
	char token[GMEM_TOKEN_LEN + 1];
	uint64_t expires_ms; /* the token is good for this long */
};
struct gmem_redeem_args {
	char token[GMEM_TOKEN_LEN + 1];
};
struct gmem_redeem_reply {
	struct gmem_wire_guest guest;
	uint64_t fd; /* index into the datagram's SCM_RIGHTS array: always 0 */
	uint64_t attachment;
	uint64_t delegation;
};
struct gmem_undelegate_args {
	uint64_t id;
};

struct gmem_wire_range {
	uint64_t offset;
	uint64_t length;
};

struct gmem_convert_args {
	char name[GMEM_NAME_MAX + 1];
	struct gmem_wire_range *ranges;
	size_t n_ranges;
	int target;  /* enum gmem_target */
	int content; /* 0 preserve, 1 zero */
	bool force;
};
struct gmem_wire_refusal {
	uint64_t client_id;
	uint64_t pid;
	char client_name[GMEM_NAME_MAX + 1];
	char err[32]; /* errno name */
	char reason[GMEM_TEXT_MAX];
	bool timed_out;
	bool gone;
};
struct gmem_wire_party { /* a participant named in an outcome */
	uint64_t client_id;
	uint64_t pid;
	char client_name[GMEM_NAME_MAX + 1];
};
struct gmem_convert_reply {
	uint64_t epoch, seq;
	int outcome; /* enum gmem_outcome */
	uint64_t changed; /* bytes that changed state */
	uint64_t participants;
	uint64_t latency_us;
	struct gmem_wire_refusal *refusals;
	size_t n_refusals;
	struct gmem_wire_party *unverified;
	size_t n_unverified;
	struct gmem_wire_party *revoked; /* kmod: kept a mapping through the commit; pid = who mapped it */
	size_t n_revoked;
	struct gmem_wire_party *not_asked; /* force: the participants it did not ask */
	size_t n_not_asked;
};

struct gmem_vote_args {
	uint64_t epoch, seq;
	int vote; /* 0 yes, 1 no */
	char err[32];
	char reason[GMEM_TEXT_MAX];
};
struct gmem_ack_args {
	uint64_t epoch, seq;
};

struct gmem_resolve_reply { /* resolve: what a restarted gmemd decided for an in-doubt conversion */
	char guest[GMEM_NAME_MAX + 1];
	int outcome; /* enum gmem_outcome */
};

/* publish-map: the guest's shareability map as a sealed memfd (layout in pubmap-layout.h). */
struct gmem_publish_map_reply {
	uint64_t fd; /* index into the datagram's SCM_RIGHTS array: always 0 */
	uint64_t bytes;    /* the file's size */
	uint64_t granule;
	uint64_t granules;
};

struct gmem_map_args {
	char name[GMEM_NAME_MAX + 1];
	uint64_t offset; /* start listing runs here */
};
struct gmem_wire_run {
	uint64_t offset;
	uint64_t length;
	int state; /* enum gmem_target */
};
struct gmem_map_reply {
	uint64_t size;
	uint64_t granule;
	uint64_t shared_bytes, private_bytes; /* over the whole guest */
	uint64_t quarantined_bytes; /* who holds them: the status reply (a map page has no room left) */
	struct gmem_wire_run *runs;
	size_t n_runs;
	uint64_t next; /* 0: the last page; else pass as offset */
};

struct gmem_clients_args {
	uint64_t after; /* client id; 0 = from the start */
};
struct gmem_wire_client {
	uint64_t id;
	uint64_t pid, uid, gid;
	bool hello;
	int role; /* enum gmem_role; meaningful after hello */
	char client_name[GMEM_NAME_MAX + 1];
	uint64_t attachments, files, leases;
	uint64_t converts; /* its convert requests not yet answered */
	bool self;         /* the connection that asked */
};
struct gmem_clients_reply {
	struct gmem_wire_client *clients;
	size_t n_clients;
	uint64_t next; /* 0 = the last page, else pass as 'after' */
};

struct gmem_wire_conversion {
	uint64_t epoch, seq;
	char guest[GMEM_NAME_MAX + 1];
	int target; /* enum gmem_target */
	int state;  /* gmem_state_names: queued/preparing/committing in flight, the outcome when ended */
	uint64_t bytes; /* that change state (known once it started) */
	uint64_t ranges;
	uint64_t participants;
	uint64_t latency_us; /* from the request: to its outcome, or until now while in flight */
	uint64_t requester_pid;
};
struct gmem_conversions_reply {
	struct gmem_wire_conversion *in_flight; /* queued or running, by guest then queue order */
	size_t n_in_flight;
	uint64_t omitted; /* in flight but past GMEM_IN_FLIGHT_MAX */
	struct gmem_wire_conversion *recent;    /* ended, newest first */
	size_t n_recent;
};

/* ---- events ---- */
struct gmem_prepare_event {
	uint64_t epoch, seq;
	char guest[GMEM_NAME_MAX + 1];
	int target;
	int content;
	int role; /* enum gmem_role: vmm or device, as which this client takes part */
	struct gmem_wire_range *ranges;
	size_t n_ranges;
};
struct gmem_commit_event {
	uint64_t epoch, seq;
	char guest[GMEM_NAME_MAX + 1];
	uint64_t wave;
};
struct gmem_conv_event { /* abort */
	uint64_t epoch, seq;
	char guest[GMEM_NAME_MAX + 1];
};
struct gmem_done_event {
	uint64_t epoch, seq;
	char guest[GMEM_NAME_MAX + 1];
	int outcome;
};
struct gmem_watch_event {
	uint64_t epoch, seq;
	char guest[GMEM_NAME_MAX + 1];
	int target;
	int state; /* gmem_state_names */
	uint64_t bytes;
	uint64_t ranges;
	uint64_t participants;
	uint64_t latency_us;
	uint64_t requester_pid;
};

struct gmem_shutdown_event {
	char reason[GMEM_TEXT_MAX];
};
struct gmem_guest_event {
	char name[GMEM_NAME_MAX + 1];
};
struct gmem_revoked_event {
	char name[GMEM_NAME_MAX + 1];
	uint64_t attachment;
	uint64_t delegation;
};

/* ---- the op table ---- */
enum {
	GMEM_OP_FD_REPLY = 1 << 0, /* the reply carries one fd by SCM_RIGHTS */
	GMEM_OP_BEFORE_HELLO = 1 << 1,
	GMEM_OP_DEFERRED = 1 << 2, /* answered when the work ends, not at once (PROTOCOL.md, "Ops") */
};

/* X(ID, "name", args struct, args fields, reply struct, reply fields, flags) */
#define GMEM_OPS(X)                                                                                       \
	X(HELLO, "hello", gmem_hello_args, gmem_hello_args_fields, gmem_hello_reply,                      \
	  gmem_hello_reply_fields, GMEM_OP_BEFORE_HELLO)                                                  \
	X(STATUS, "status", gmem_status_args, gmem_no_fields, gmem_status_reply, gmem_status_reply_fields, 0) \
	X(CREATE, "create", gmem_create_args, gmem_create_args_fields, gmem_wire_guest,                   \
	  gmem_wire_guest_fields, 0)                                                                      \
	X(DESTROY, "destroy", gmem_destroy_args, gmem_destroy_args_fields, gmem_empty_reply, gmem_no_fields, 0) \
	X(LIST, "list", gmem_list_args, gmem_list_args_fields, gmem_list_reply, gmem_list_reply_fields, 0) \
	X(OPEN, "open", gmem_guest_args, gmem_guest_args_fields, gmem_open_reply, gmem_open_reply_fields,  \
	  GMEM_OP_FD_REPLY)                                                                               \
	X(ATTACH, "attach", gmem_attach_args, gmem_attach_args_fields, gmem_attach_reply,                 \
	  gmem_attach_reply_fields, 0)                                                                    \
	X(DETACH, "detach", gmem_detach_args, gmem_detach_args_fields, gmem_empty_reply, gmem_no_fields, 0) \
	X(LEASE, "lease", gmem_guest_args, gmem_guest_args_fields, gmem_empty_reply, gmem_no_fields, 0)   \
	X(RELEASE, "release", gmem_guest_args, gmem_guest_args_fields, gmem_empty_reply, gmem_no_fields, 0) \
	X(CONVERT, "convert", gmem_convert_args, gmem_convert_args_fields, gmem_convert_reply,            \
	  gmem_convert_reply_fields, GMEM_OP_DEFERRED)                                                     \
	X(VOTE, "vote", gmem_vote_args, gmem_vote_args_fields, gmem_empty_reply, gmem_no_fields, 0)       \
	X(ACK, "ack", gmem_ack_args, gmem_ack_args_fields, gmem_empty_reply, gmem_no_fields, 0)           \
	X(MAP, "map", gmem_map_args, gmem_map_args_fields, gmem_map_reply, gmem_map_reply_fields, 0)      \
	X(WATCH, "watch", gmem_status_args, gmem_no_fields, gmem_empty_reply, gmem_no_fields, 0)          \
	X(GRANT, "grant", gmem_grant_args, gmem_grant_args_fields, gmem_empty_reply, gmem_no_fields, 0)   \
	X(REVOKE, "revoke", gmem_grant_args, gmem_grant_args_fields, gmem_empty_reply, gmem_no_fields, 0)  \
	X(CLIENTS, "clients", gmem_clients_args, gmem_clients_args_fields, gmem_clients_reply,             \
	  gmem_clients_reply_fields, 0)                                                                   \
	X(CONVERSIONS, "conversions", gmem_status_args, gmem_no_fields, gmem_conversions_reply,           \
	  gmem_conversions_reply_fields, 0)                                                               \
	X(DELEGATE, "delegate", gmem_delegate_args, gmem_delegate_args_fields, gmem_delegate_reply,       \
	  gmem_delegate_reply_fields, 0)                                                                  \
	X(REDEEM, "redeem", gmem_redeem_args, gmem_redeem_args_fields, gmem_redeem_reply,                 \
	  gmem_redeem_reply_fields, GMEM_OP_FD_REPLY)                                                     \
	X(UNDELEGATE, "undelegate", gmem_undelegate_args, gmem_undelegate_args_fields, gmem_empty_reply,  \
	  gmem_no_fields, 0)                                                                              \
	X(RESOLVE, "resolve", gmem_ack_args, gmem_ack_args_fields, gmem_resolve_reply,                    \
	  gmem_resolve_reply_fields, 0)                                                                   \
	X(LIST_LOST, "list-lost", gmem_list_args, gmem_list_args_fields, gmem_list_reply,                 \
	  gmem_list_reply_fields, 0)                                                                      \
	X(FORGET, "forget", gmem_guest_args, gmem_guest_args_fields, gmem_empty_reply, gmem_no_fields, 0) \
	X(PUBLISH_MAP, "publish-map", gmem_guest_args, gmem_guest_args_fields, gmem_publish_map_reply,     \
	  gmem_publish_map_reply_fields, GMEM_OP_FD_REPLY)                                                \
	X(HOLDERS, "holders", gmem_holders_args, gmem_holders_args_fields, gmem_holders_reply,            \
	  gmem_holders_reply_fields, 0)                                                                   \
	X(CANCEL, "cancel", gmem_cancel_args, gmem_cancel_args_fields, gmem_empty_reply, gmem_no_fields, 0) \
	X(EVICT, "evict", gmem_evict_args, gmem_evict_args_fields, gmem_empty_reply, gmem_no_fields, 0)   \
	X(STATS, "stats", gmem_list_args, gmem_list_args_fields, gmem_stats_reply, gmem_stats_reply_fields, 0) \
	X(LIST_ORPHANS, "list-orphans", gmem_list_args, gmem_list_args_fields, gmem_orphans_reply,         \
	  gmem_orphans_reply_fields, 0)                                                                   \
	X(ADOPT, "adopt", gmem_adopt_args, gmem_adopt_args_fields, gmem_wire_guest, gmem_wire_guest_fields, 0) \
	X(DESTROY_ORPHAN, "destroy-orphan", gmem_orphan_args, gmem_orphan_args_fields, gmem_empty_reply,  \
	  gmem_no_fields, 0)

enum gmem_op {
#define X(id, ...) GMEM_OP_##id,
	GMEM_OPS(X)
#undef X
	_GMEM_OP_MAX,
	GMEM_OP_INVALID = -1,
};

/* X(ID, "name", struct, fields) */
#define GMEM_EVENTS(X)                                                                                    \
	X(SHUTDOWN, "shutdown", gmem_shutdown_event, gmem_shutdown_event_fields)                          \
	X(GUEST_DESTROYED, "guest-destroyed", gmem_guest_event, gmem_guest_event_fields)                \
	X(PREPARE, "prepare", gmem_prepare_event, gmem_prepare_event_fields)                              \
	X(COMMIT, "commit", gmem_commit_event, gmem_commit_event_fields)                                  \
	X(ABORT, "abort", gmem_conv_event, gmem_conv_event_fields)                                        \
	X(DONE, "done", gmem_done_event, gmem_done_event_fields)                                          \
	X(CONVERSION, "conversion", gmem_watch_event, gmem_watch_event_fields)                            \
	X(REVOKED, "revoked", gmem_revoked_event, gmem_revoked_event_fields)

enum gmem_wire_event {
#define X(id, ...) GMEM_WIRE_EVENT_##id,
	GMEM_EVENTS(X)
#undef X
	_GMEM_WIRE_EVENT_MAX,
	GMEM_WIRE_EVENT_INVALID = -1,
};

struct gmem_op_desc {
	const char *name;
	const struct gmem_field *args;
	size_t args_size;
	const struct gmem_field *reply;
	size_t reply_size;
	unsigned flags;
};
struct gmem_wire_event_desc {
	const char *name;
	const struct gmem_field *fields;
	size_t size;
};

extern const struct gmem_op_desc gmem_ops[_GMEM_OP_MAX];
extern const struct gmem_wire_event_desc gmem_events[_GMEM_WIRE_EVENT_MAX];

extern const struct gmem_field gmem_no_fields[];
extern const struct gmem_field gmem_hello_args_fields[], gmem_hello_reply_fields[];
extern const struct gmem_field gmem_status_reply_fields[];
extern const struct gmem_field gmem_guest_args_fields[], gmem_create_args_fields[];
extern const struct gmem_field gmem_wire_guest_fields[];
extern const struct gmem_field gmem_list_args_fields[], gmem_list_reply_fields[];
extern const struct gmem_field gmem_open_reply_fields[];
extern const struct gmem_field gmem_attach_args_fields[], gmem_attach_reply_fields[];
extern const struct gmem_field gmem_detach_args_fields[];
extern const struct gmem_field gmem_shutdown_event_fields[], gmem_guest_event_fields[];
extern const struct gmem_field gmem_wire_range_fields[];
extern const struct gmem_field gmem_convert_args_fields[], gmem_convert_reply_fields[];
extern const struct gmem_field gmem_vote_args_fields[], gmem_ack_args_fields[];
extern const struct gmem_field gmem_map_args_fields[], gmem_map_reply_fields[];
extern const struct gmem_field gmem_prepare_event_fields[], gmem_commit_event_fields[];
extern const struct gmem_field gmem_conv_event_fields[], gmem_done_event_fields[];
extern const struct gmem_field gmem_watch_event_fields[];
extern const struct gmem_field gmem_grant_args_fields[];
extern const struct gmem_field gmem_clients_args_fields[], gmem_clients_reply_fields[];
extern const struct gmem_field gmem_conversions_reply_fields[];
extern const struct gmem_field gmem_delegate_args_fields[], gmem_delegate_reply_fields[];
extern const struct gmem_field gmem_redeem_args_fields[], gmem_redeem_reply_fields[];
extern const struct gmem_field gmem_undelegate_args_fields[], gmem_revoked_event_fields[];
extern const struct gmem_field gmem_resolve_reply_fields[];
extern const struct gmem_field gmem_publish_map_reply_fields[];
extern const struct gmem_field gmem_destroy_args_fields[];
extern const struct gmem_field gmem_holders_args_fields[], gmem_holders_reply_fields[];
extern const struct gmem_field gmem_cancel_args_fields[], gmem_evict_args_fields[];
extern const struct gmem_field gmem_stats_reply_fields[];
extern const struct gmem_field gmem_orphans_reply_fields[], gmem_adopt_args_fields[], gmem_orphan_args_fields[];

enum gmem_op gmem_op_from_name(const char *name);
enum gmem_wire_event gmem_wire_event_from_name(const char *name);
