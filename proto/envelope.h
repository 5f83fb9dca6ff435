/* SPDX-License-Identifier: MIT */
/*
 * envelope: the outer shape of every datagram (PROTOCOL.md, "Messages").
 *   request  {"id": N, "op": "name", "args": {...}}
 *   reply    {"id": N, "result": {...}}
 *   error    {"id": N | null, "error": {"errno": "ENOENT", "message": "..."}}
 *   event    {"event": "name", "data": {...}}
 * Building returns a malloc'd, NUL-terminated buffer owned by the caller, at most GMEM_MSG_MAX bytes
 * (-EMSGSIZE otherwise). Parsing borrows from the json root: the envelope is valid while root lives.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "gmem-proto.h"

enum gmem_msg_kind { GMEM_MSG_REQUEST, GMEM_MSG_REPLY, GMEM_MSG_ERROR, GMEM_MSG_EVENT };

struct gmem_envelope {
	enum gmem_msg_kind kind;
	bool has_id;
	uint64_t id;
	const char *name;          /* request: op; event: event name (borrowed) */
	struct json_object *body;  /* args / result / data (borrowed, may be NULL) */
	int err;                   /* error: positive errno (EIO for a name we do not know) */
	const char *err_name;      /* error: as sent (borrowed) */
	const char *message;       /* error: as sent (borrowed, may be "") */
};

/* The daemon's view: only requests are valid; unknown top-level keys are an error. On failure the
 * envelope still tells whether an id could be read, so the error reply can carry it. */
int gmem_envelope_parse_request(struct json_object *root, struct gmem_envelope *env,
				struct gmem_codec_error *err);
/* The client's view: replies, errors and events; unknown top-level keys are skipped. */
int gmem_envelope_parse_incoming(struct json_object *root, struct gmem_envelope *env,
				 struct gmem_codec_error *err);

int gmem_build_request(uint64_t id, enum gmem_op op, const void *args, char **ret, size_t *ret_len);
int gmem_build_reply(uint64_t id, enum gmem_op op, const void *reply, char **ret, size_t *ret_len);
/* err is a negative or positive errno; id_or_null < 0 means no id could be read. */
int gmem_build_error(bool has_id, uint64_t id, int err, const char *message, char **ret, size_t *ret_len);
int gmem_build_event(enum gmem_wire_event ev, const void *data, char **ret, size_t *ret_len);
