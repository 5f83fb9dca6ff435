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

#define GMEM_DEFAULT_SOCKET "/run/gmem/gmemd.sock"

/* enum gmem_role and enum gmem_attach_kind are public API (gmem.h); these name them on the wire. */
extern const char *const gmem_role_names[];
extern const char *const gmem_attach_kind_names[];

/* Optional capabilities, negotiated at hello: the bit index is the position in this list. */
#define GMEM_FEATURES(X)                                                                                 \
	X(LEASE, "lease")                                                                                \
	X(LIST_PAGES, "list-pages")
enum {
#define X(id, name) GMEM_FEATURE_BIT_##id,
	GMEM_FEATURES(X)
#undef X
};
#define X(id, name) GMEM_FEATURE_##id = 1u << GMEM_FEATURE_BIT_##id,
enum { GMEM_FEATURES(X) };
#undef X
extern const char *const gmem_feature_names[];
#define GMEM_FEATURES_ALL ((1u << (0 GMEM_FEATURES(GMEM_COUNT_ONE))) - 1)
#define GMEM_COUNT_ONE(id, name) +1

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
struct gmem_status_reply {
	char server[GMEM_NAME_MAX + 1];
	char backend[16];
	bool enforcing;
	uint64_t pool_size;
	uint64_t pool_used;
	uint64_t touched;
	uint64_t guests;
	uint64_t clients;
};

struct gmem_guest_args { /* destroy, lease, release */
	char name[GMEM_NAME_MAX + 1];
};
struct gmem_empty_reply {
	char unused;
};

struct gmem_create_args {
	char name[GMEM_NAME_MAX + 1];
	uint64_t size;
	uint64_t granule;
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

struct gmem_attach_args {
	char name[GMEM_NAME_MAX + 1];
	uint64_t offset;
	uint64_t length;
	int kind;
};
struct gmem_attach_reply {
	uint64_t id;
};
struct gmem_detach_args {
	uint64_t id;
};

/* ---- events ---- */
struct gmem_shutdown_event {
	char reason[GMEM_TEXT_MAX];
};
struct gmem_guest_event {
	char name[GMEM_NAME_MAX + 1];
};

/* ---- the op table ---- */
enum {
	GMEM_OP_FD_REPLY = 1 << 0, /* the reply carries one fd by SCM_RIGHTS */
	GMEM_OP_BEFORE_HELLO = 1 << 1,
};

/* X(ID, "name", args struct, args fields, reply struct, reply fields, flags) */
#define GMEM_OPS(X)                                                                                       \
	X(HELLO, "hello", gmem_hello_args, gmem_hello_args_fields, gmem_hello_reply,                      \
	  gmem_hello_reply_fields, GMEM_OP_BEFORE_HELLO)                                                  \
	X(STATUS, "status", gmem_status_args, gmem_no_fields, gmem_status_reply, gmem_status_reply_fields, 0) \
	X(CREATE, "create", gmem_create_args, gmem_create_args_fields, gmem_wire_guest,                   \
	  gmem_wire_guest_fields, 0)                                                                      \
	X(DESTROY, "destroy", gmem_guest_args, gmem_guest_args_fields, gmem_empty_reply, gmem_no_fields, 0) \
	X(LIST, "list", gmem_list_args, gmem_list_args_fields, gmem_list_reply, gmem_list_reply_fields, 0) \
	X(OPEN, "open", gmem_guest_args, gmem_guest_args_fields, gmem_open_reply, gmem_open_reply_fields,  \
	  GMEM_OP_FD_REPLY)                                                                               \
	X(ATTACH, "attach", gmem_attach_args, gmem_attach_args_fields, gmem_attach_reply,                 \
	  gmem_attach_reply_fields, 0)                                                                    \
	X(DETACH, "detach", gmem_detach_args, gmem_detach_args_fields, gmem_empty_reply, gmem_no_fields, 0) \
	X(LEASE, "lease", gmem_guest_args, gmem_guest_args_fields, gmem_empty_reply, gmem_no_fields, 0)   \
	X(RELEASE, "release", gmem_guest_args, gmem_guest_args_fields, gmem_empty_reply, gmem_no_fields, 0)

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
	X(GUEST_DESTROYED, "guest-destroyed", gmem_guest_event, gmem_guest_event_fields)

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

enum gmem_op gmem_op_from_name(const char *name);
enum gmem_wire_event gmem_wire_event_from_name(const char *name);
