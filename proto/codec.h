/* SPDX-License-Identifier: MIT */
/*
 * codec: JSON objects <-> C structs, driven by field tables, and the message envelope.
 *
 * One table per struct lists every key with its type, bounds and place in the struct; the same table
 * decodes (validating everything a peer sent) and encodes. The daemon decodes requests strictly
 * (an unknown key is an error); clients decode replies and events leniently (unknown keys are skipped),
 * so a newer gmemd can add fields without breaking an older libgmem. PROTOCOL.md states both rules.
 *
 * Ownership: decoded strings are copied into fixed buffers inside the struct; arrays are malloc'd and
 * owned by the struct until gmem_fields_release(). Encoding returns a new json_object owned by the caller.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

enum gmem_ftype {
	GMEM_FT_U64,    /* JSON integer in [min, max]; stored as uint64_t */
	GMEM_FT_BOOL,   /* JSON true/false; stored as bool */
	GMEM_FT_STRING, /* JSON string, valid UTF-8, no NUL, strlen in [min, size-1]; stored in char[size] */
	GMEM_FT_ENUM,   /* JSON string, one of names[]; stored as int (the index) */
	GMEM_FT_FLAGS,  /* JSON array of strings; known names[] set bits, unknown ones are ignored; uint32_t */
	GMEM_FT_ARRAY,  /* JSON array of objects described by sub; stored as (elem *ptr, size_t count) */
	GMEM_FT_OBJECT, /* JSON object described by sub; stored inline as a struct */
};

enum {
	GMEM_F_REQUIRED = 1 << 0,  /* decode: missing is an error */
	GMEM_F_OMIT_EMPTY = 1 << 1, /* encode: skip when zero / false / "" / no elements */
};

struct gmem_field {
	const char *name;
	enum gmem_ftype type;
	unsigned flags;
	size_t offset;
	size_t size;                   /* STRING: buffer size; ARRAY: element size */
	uint64_t min, max;             /* U64: value bounds; STRING: min length; ARRAY: max elements */
	const char *const *names;      /* ENUM, FLAGS: NULL-terminated */
	const struct gmem_field *sub;  /* ARRAY: element fields; OBJECT: its fields */
	size_t count_offset;           /* ARRAY: offset of the size_t element count */
};

#define GMEM_INT_MAX ((uint64_t)INT64_MAX) /* the protocol's integer range is [0, 2^63-1] */

#define GMEM_FIELD_U64(S, m, key, lo, hi, fl)                                                            \
	{ .name = key, .type = GMEM_FT_U64, .flags = fl, .offset = offsetof(S, m), .min = lo, .max = hi }
#define GMEM_FIELD_BOOL(S, m, key, fl) { .name = key, .type = GMEM_FT_BOOL, .flags = fl, .offset = offsetof(S, m) }
#define GMEM_FIELD_STRING(S, m, key, minlen, fl)                                                         \
	{ .name = key, .type = GMEM_FT_STRING, .flags = fl, .offset = offsetof(S, m),                   \
	  .size = sizeof(((S *)0)->m), .min = minlen }
#define GMEM_FIELD_ENUM(S, m, key, tbl, fl)                                                              \
	{ .name = key, .type = GMEM_FT_ENUM, .flags = fl, .offset = offsetof(S, m), .names = tbl }
#define GMEM_FIELD_FLAGS(S, m, key, tbl, fl)                                                             \
	{ .name = key, .type = GMEM_FT_FLAGS, .flags = fl, .offset = offsetof(S, m), .names = tbl }
#define GMEM_FIELD_ARRAY(S, m, cnt, key, E, subtbl, maxn, fl)                                            \
	{ .name = key, .type = GMEM_FT_ARRAY, .flags = fl, .offset = offsetof(S, m), .size = sizeof(E),   \
	  .max = maxn, .sub = subtbl, .count_offset = offsetof(S, cnt) }
#define GMEM_FIELD_OBJECT(S, m, key, subtbl, fl)                                                         \
	{ .name = key, .type = GMEM_FT_OBJECT, .flags = fl, .offset = offsetof(S, m), .sub = subtbl }
#define GMEM_FIELD_END { .name = NULL }

/* Why a decode failed: a negative errno plus a message naming the key. */
struct gmem_codec_error {
	int err;
	char msg[160];
};

enum {
	GMEM_DECODE_STRICT = 1 << 0, /* unknown keys are -EINVAL (the daemon reading a request) */
};

/* obj must be a JSON object (NULL counts as {}). out must be zero-initialised or hold defaults: absent
 * optional keys leave it as it was. On failure everything decoded so far is released. */
int gmem_decode(const struct gmem_field *fields, struct json_object *obj, void *out, unsigned flags,
		struct gmem_codec_error *err);
int gmem_encode(const struct gmem_field *fields, const void *in, struct json_object **ret);
/* Frees the arrays a decode allocated (recursively); leaves the struct reusable. */
void gmem_fields_release(const struct gmem_field *fields, void *obj);

/* Copies src into dst (size > 0), cut short if needed at a UTF-8 character boundary. */
void gmem_utf8_copy(char *dst, size_t size, const char *src);

/*
 * Parse one datagram: valid UTF-8, nesting at most GMEM_JSON_DEPTH, no NUL byte, nothing after the
 * value, and the value must be an object. -EBADMSG otherwise (err->msg says why).
 */
int gmem_json_parse(const char *buf, size_t len, struct json_object **ret, struct gmem_codec_error *err);
