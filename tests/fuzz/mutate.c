/* SPDX-License-Identifier: MIT */
/*
 * mutate: fuzz-requests' structure-aware mutator (mutate.h). Byte-level mutation of a request sequence
 * mostly breaks the JSON or a field's type and so stays in the codec; this one keeps the JSON valid and
 * knows the protocol from proto/messages.c's field tables, so it reaches what lies behind a valid op
 * with valid values: it picks one JSON record of the input and changes its op, sets a field of that op
 * to a value of its type (bounds, boundary numbers, enum names, guest names, "@T"), regenerates all its
 * arguments, duplicates, drops or edits array elements, removes keys, changes a value's type or nests
 * it; or it works on whole records (duplicates, drops, swaps, inserts a vote, ack, timer or reconnect,
 * or a new request of some op from a client the input already uses).
 *
 * Values are made valid for the conversation most of the time: the input's 'create' records say which
 * guests exist, with their sizes and granules, so a guest name is mostly one the input created, and
 * offsets and lengths (top-level or in 'ranges') mostly granule-aligned and inside that guest. Without
 * that, a mutated 'convert', 'attach' or 'delegate' fails its range check nearly every time and what
 * lies behind it (the two-phase conversion, attachments, quarantine) is reached only by the seeds.
 */
#include "mutate.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "gmem-proto.h"

struct rng {
	uint64_t s;
};

static uint64_t next(struct rng *r)
{
	/* xorshift64*: deterministic per seed, so libFuzzer can replay a mutation. */
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * UINT64_C(2685821657736338717);
}

static size_t below(struct rng *r, size_t n)
{
	return n ? (size_t)(next(r) % n) : 0;
}

/* What the input's records say about the conversation (scan_context). */
#define CTX_GUESTS 8
struct guest_info {
	char name[64];
	uint64_t size, granule;
};
struct ctx {
	struct guest_info guests[CTX_GUESTS];
	size_t n_guests;
	unsigned n_converts; /* 'convert' records: conversion seqs run 1..n (the harness resets them) */
	uint64_t max_id;     /* the largest request id in the input */
};

static const uint64_t boundaries[] = {
	0, 1, 2, 3, 4095, 4096, 4097, 8192, 12288, 16384, 65536, 1 << 20, (1 << 20) + 4096, 2097152,
	4194304, UINT64_C(1) << 32, (UINT64_C(1) << 62) - 4096, UINT64_C(1) << 62, (UINT64_C(1) << 62) + 1,
	(uint64_t)INT64_MAX, (uint64_t)INT64_MAX + 1, UINT64_MAX,
};
static const char *const strings[] = { "g1", "g2", "theirs", "mine", "uid:60002", "uid:60003", "gid:61000",
				       "uid:0", "@T", "", ".x", "EBUSY", "ENOENT" };
/* Records the harness knows that are not JSON (fuzz-requests.c). */
static const char *const canned[] = { "v0y", "v1y", "v2y", "v3y", "v1n", "v2n", "k0", "k1", "k2", "t",
				      "x1", "x2", "r1", "r2", "p1", "c4", "S", "R" };

static struct json_object *number(struct rng *r, const struct gmem_field *f)
{
	uint64_t v;
	switch (below(r, f ? 6 : 3)) {
	case 0:
		v = boundaries[below(r, sizeof(boundaries) / sizeof(boundaries[0]))];
		break;
	case 1:
		v = next(r) % 70000;
		break;
	case 3:
		v = f->min + below(r, 3);
		break;
	case 4:
		v = f->max - below(r, 3);
		break;
	default: /* a few granules: offsets and lengths that pass validation, so what lies behind it runs */
		v = 4096 * below(r, 17);
		break;
	}
	return json_object_new_uint64(v);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static const struct guest_info *find_guest(const struct ctx *cx, const char *name)
{
	for (size_t i = 0; cx && name && i < cx->n_guests; i++)
		if (!strcmp(cx->guests[i].name, name))
			return &cx->guests[i];
	return NULL;
}

/* The guest an args object names, if the input created it. */
static const struct guest_info *args_guest(const struct ctx *cx, struct json_object *args)
{
	struct json_object *n;
	if (!args || !json_object_object_get_ex(args, "name", &n) || !json_object_is_type(n, json_type_string))
		return NULL;
	return find_guest(cx, json_object_get_string(n));
}

static uint64_t get_u64(struct json_object *o, const char *key, uint64_t dflt)
{
	struct json_object *v;
	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return dflt;
	return json_object_get_uint64(v);
}

/* A granule-aligned offset inside g, or a granule-aligned length that fits from offset on (a few granules
 * mostly: conversions and attachments of a whole guest are in the seeds already). */
static uint64_t valid_offset(struct rng *r, const struct guest_info *g)
{
	uint64_t pages = g->size / g->granule;
	return g->granule * (below(r, 2) ? below(r, min_u64(pages, 16)) : below(r, pages));
}

static uint64_t valid_length(struct rng *r, const struct guest_info *g, uint64_t offset)
{
	uint64_t left = offset < g->size && offset % g->granule == 0 ? (g->size - offset) / g->granule
								      : g->size / g->granule;
	if (!left)
		left = 1;
	return g->granule * (1 + (below(r, 4) ? below(r, min_u64(left, 8)) : below(r, left)));
}

/* A number for the field named key that makes sense in this conversation, or NULL to use any number. */
static struct json_object *number_in_context(struct rng *r, const struct ctx *cx, const struct gmem_field *f,
					     const struct guest_info *g, struct json_object *sibling)
{
	if (!cx)
		return NULL;
	if (g && !strcmp(f->name, "offset"))
		return json_object_new_uint64(valid_offset(r, g));
	if (g && !strcmp(f->name, "length"))
		return json_object_new_uint64(valid_length(r, g, get_u64(sibling, "offset", 0)));
	/* create: a few granules (a big guest costs memory and time at every conversion, and the seeds
	 * have big ones) */
	if (!strcmp(f->name, "size"))
		return json_object_new_uint64(get_u64(sibling, "granule", 4096) == 2097152 ? 2097152 * (1 + below(r, 2))
											: 4096 * (1 + below(r, 16)));
	if (!strcmp(f->name, "granule"))
		return json_object_new_uint64(below(r, 2) ? 4096 : 2097152);
	if (!strcmp(f->name, "seq"))
		return json_object_new_uint64(1 + below(r, cx->n_converts + 1));
	if (!strcmp(f->name, "epoch"))
		return json_object_new_uint64(1); /* the harness's FUZZ_EPOCH */
	if (!strcmp(f->name, "id") || !strcmp(f->name, "client_id") || !strcmp(f->name, "after"))
		return json_object_new_uint64(below(r, 8));
	if (!strcmp(f->name, "version"))
		return json_object_new_uint64(1);
	return NULL;
}

static struct json_object *value_for(struct rng *r, const struct ctx *cx, const struct gmem_field *f,
				     const struct guest_info *g, struct json_object *sibling, int depth);

static bool is_create_arg(const struct gmem_field *f)
{
	for (const struct gmem_field *c = gmem_ops[GMEM_OP_CREATE].args; c->name; c++)
		if (c == f)
			return true;
	return false;
}

/* An object of the table's fields: the required ones and some others. A guest name comes first, so the
 * offsets and lengths after it can fit that guest, and an offset before its length. */
static struct json_object *object_for(struct rng *r, const struct ctx *cx, const struct gmem_field *fields,
				      const struct guest_info *g, int depth)
{
	struct json_object *o = json_object_new_object();
	for (const struct gmem_field *f = fields; f && f->name; f++)
		if ((f->flags & GMEM_F_REQUIRED) || below(r, 2)) {
			json_object_object_add(o, f->name, value_for(r, cx, f, g, o, depth + 1));
			if (!g && !strcmp(f->name, "name"))
				g = args_guest(cx, o);
		}
	return o;
}

/* A value of the field's type, mostly inside its bounds and, with a context, mostly valid in it. g is
 * the guest the enclosing request names (or NULL), sibling the object the value goes into. */
static struct json_object *value_for(struct rng *r, const struct ctx *cx, const struct gmem_field *f,
				     const struct guest_info *g, struct json_object *sibling, int depth)
{
	struct json_object *v;
	size_t n = 0;
	switch (f->type) {
	case GMEM_FT_U64:
		v = number_in_context(r, cx, f, g, sibling);
		return v ? v : number(r, f);
	case GMEM_FT_BOOL:
		return json_object_new_boolean(below(r, 2));
	case GMEM_FT_STRING:
		/* A guest the input created; for 'create', mostly another one. */
		if (cx && cx->n_guests && !strcmp(f->name, "name") && (!is_create_arg(f) || below(r, 4) == 0))
			return json_object_new_string(cx->guests[below(r, cx->n_guests)].name);
		if (below(r, 8) == 0) {
			/* one past the field's length */
			char *s = malloc(f->size + 1);
			if (!s)
				return json_object_new_string("x");
			memset(s, 'a', f->size);
			s[f->size] = '\0';
			struct json_object *o = json_object_new_string(s);
			free(s);
			return o;
		}
		return json_object_new_string(strings[below(r, sizeof(strings) / sizeof(strings[0]))]);
	case GMEM_FT_ENUM:
		while (f->names[n])
			n++;
		return json_object_new_string(f->names[below(r, n)]);
	case GMEM_FT_FLAGS: {
		struct json_object *a = json_object_new_array();
		while (f->names[n])
			n++;
		for (size_t k = below(r, 4); k > 0; k--)
			json_object_array_add(a, json_object_new_string(f->names[below(r, n)]));
		return a;
	}
	case GMEM_FT_ARRAY: {
		struct json_object *a = json_object_new_array();
		for (size_t k = 1 + below(r, 4); k > 0 && depth < 4; k--)
			json_object_array_add(a, object_for(r, cx, f->sub, g, depth));
		return a;
	}
	case GMEM_FT_OBJECT:
		return depth < 4 ? object_for(r, cx, f->sub, g, depth) : json_object_new_object();
	}
	return json_object_new_null();
}

/* A value of some other type than the field expects. */
static struct json_object *wrong_value(struct rng *r)
{
	switch (below(r, 7)) {
	case 0:
		return json_object_new_string("4096");
	case 1:
		return json_object_new_int64(-1);
	case 2:
		return json_object_new_double(1.5);
	case 3:
		return json_object_new_array();
	case 4:
		return json_object_new_object();
	case 5:
		return json_object_new_boolean(1);
	default:
		return NULL; /* JSON null */
	}
}

static const struct gmem_field *pick_field(struct rng *r, const struct gmem_field *fields)
{
	size_t n = 0;
	while (fields && fields[n].name)
		n++;
	return n ? &fields[below(r, n)] : NULL;
}

/* Mutates an element of an array-of-objects field already present. */
static bool mutate_array(struct rng *r, const struct ctx *cx, struct json_object *args, const struct gmem_field *f)
{
	const struct guest_info *g = args_guest(cx, args);
	struct json_object *a;
	if (!json_object_object_get_ex(args, f->name, &a) || !json_object_is_type(a, json_type_array))
		return false;
	size_t len = json_object_array_length(a);
	switch (below(r, 4)) {
	case 0: /* another element */
		json_object_array_add(a, len && below(r, 2) ? json_object_get(json_object_array_get_idx(a, below(r, len)))
						     : object_for(r, cx, f->sub, g, 1));
		return true;
	case 1: /* one element less */
		if (!len)
			return false;
		json_object_array_del_idx(a, below(r, len), 1);
		return true;
	default: { /* a field of one element */
		if (!len)
			return false;
		struct json_object *e = json_object_array_get_idx(a, below(r, len));
		const struct gmem_field *sf = pick_field(r, f->sub);
		if (!sf || !json_object_is_type(e, json_type_object))
			return false;
		json_object_object_add(e, sf->name, value_for(r, cx, sf, g, e, 2));
		return true;
	}
	}
}

static bool mutate_message(struct rng *r, const struct ctx *conv, struct json_object *root)
{
	struct json_object *op, *args;
	enum gmem_op o = GMEM_OP_INVALID;
	/* Values valid in the conversation three times in four, any values of the right type otherwise: one
	 * choice for the whole message, so a message with several fields comes out valid as a whole. */
	const struct ctx *cx = below(r, 4) ? conv : NULL;

	if (json_object_object_get_ex(root, "op", &op) && json_object_is_type(op, json_type_string))
		o = gmem_op_from_name(json_object_get_string(op));
	if (below(r, 12) == 0 || o == GMEM_OP_INVALID) {
		o = (enum gmem_op)below(r, _GMEM_OP_MAX);
		json_object_object_add(root, "op", json_object_new_string(gmem_ops[o].name));
		if (below(r, 2))
			json_object_object_add(root, "args", object_for(r, cx, gmem_ops[o].args, NULL, 1));
		return true;
	}
	if (!json_object_object_get_ex(root, "args", &args) || !json_object_is_type(args, json_type_object)) {
		args = json_object_new_object();
		json_object_object_add(root, "args", args);
	}
	const struct gmem_field *f = pick_field(r, gmem_ops[o].args);
	const struct guest_info *g = args_guest(cx, args);
	switch (below(r, 12)) {
	case 0: /* the id */
		json_object_object_add(root, "id", below(r, 4) ? json_object_new_uint64(next(r) % 1000)
							       : number(r, NULL));
		return true;
	case 1: /* a key less */
		if (!f)
			return false;
		json_object_object_del(args, f->name);
		return true;
	case 2: /* a value of the wrong type, or nested deeper */
		if (!f)
			return false;
		if (below(r, 2)) {
			json_object_object_add(args, f->name, wrong_value(r));
		} else {
			struct json_object *a = json_object_new_array();
			json_object_array_add(a, value_for(r, cx, f, g, args, 1));
			json_object_object_add(args, f->name, a);
		}
		return true;
	case 3:
	case 4: /* an array's elements */
		for (const struct gmem_field *af = gmem_ops[o].args; af && af->name; af++)
			if (af->type == GMEM_FT_ARRAY && mutate_array(r, cx, args, af))
				return true;
		/* fall through */
	default: /* a field set to a value of its type */
		if (!f)
			return false;
		json_object_object_add(args, f->name, value_for(r, cx, f, g, args, 1));
		return true;
	case 10:
	case 11: /* all arguments anew, valid in the conversation (mostly) */
		json_object_object_add(root, "args", object_for(r, cx, gmem_ops[o].args, NULL, 1));
		return true;
	}
}

struct span {
	size_t start, len;
};

/* Where the JSON of record [start, start+len) begins, or 0 if it has none. */
static size_t json_offset(const uint8_t *p, size_t len)
{
	if (len >= 2 && p[0] >= '0' && p[0] <= '5' && p[1] == '{')
		return 1;
	if (len >= 3 && (p[0] == 'd' || p[0] == 'F' || p[0] == 'O') && p[1] >= '0' && p[1] <= '5' && p[2] == '{')
		return 2;
	return 0;
}

#define RECS_MAX 256

/* One JSON value from [p, p+n), or NULL. */
static struct json_object *parse_json(const char *p, size_t n)
{
	struct json_tokener *tok = json_tokener_new_ex(64);
	if (!tok)
		return NULL;
	struct json_object *root = json_tokener_parse_ex(tok, p, (int)n);
	json_tokener_free(tok);
	return root;
}

/* Writes records (in order, given as spans of src, one replaced by repl) into out; 0 if it would not fit. */
static size_t assemble(uint8_t *out, size_t max, const uint8_t *src, const struct span *recs, size_t n,
		       size_t replace, const char *repl_prefix, size_t prefix_len, const char *repl)
{
	size_t len = 0;
	/* Built in a scratch copy: src and out are the same buffer. */
	uint8_t *tmp = malloc(max + 1);
	if (!tmp)
		return 0;
	for (size_t i = 0; i < n; i++) {
		size_t need;
		if (i == replace) {
			size_t rl = strlen(repl);
			need = prefix_len + rl + 1;
			if (len + need > max)
				goto too_big;
			memcpy(tmp + len, repl_prefix, prefix_len);
			memcpy(tmp + len + prefix_len, repl, rl);
			len += prefix_len + rl;
		} else {
			need = recs[i].len + 1;
			if (len + need > max)
				goto too_big;
			memcpy(tmp + len, src + recs[i].start, recs[i].len);
			len += recs[i].len;
		}
		tmp[len++] = '\n';
	}
	memcpy(out, tmp, len);
	free(tmp);
	return len;
too_big:
	free(tmp);
	return 0;
}

/* A new request from the client of a JSON record already in the input, mostly of an op the input uses
 * already, with arguments valid in the conversation (mostly). */
static char *new_request(struct rng *r, const struct ctx *cx, const uint8_t *data, const struct span *recs,
			 const size_t *json_recs, size_t n_json)
{
	const struct span *like = &recs[json_recs[below(r, n_json)]];
	size_t off = json_offset(data + like->start, like->len);
	enum gmem_op o = (enum gmem_op)below(r, _GMEM_OP_MAX);

	if (below(r, 2)) {
		const struct span *other = &recs[json_recs[below(r, n_json)]];
		size_t ooff = json_offset(data + other->start, other->len);
		struct json_object *root = parse_json((const char *)data + other->start + ooff,
									other->len - ooff);
		struct json_object *op;
		if (root && json_object_object_get_ex(root, "op", &op) && json_object_is_type(op, json_type_string) &&
		    gmem_op_from_name(json_object_get_string(op)) != GMEM_OP_INVALID)
			o = gmem_op_from_name(json_object_get_string(op));
		json_object_put(root);
	}
	struct json_object *root = json_object_new_object();
	json_object_object_add(root, "id", json_object_new_uint64(cx->max_id + 1 + below(r, 4)));
	json_object_object_add(root, "op", json_object_new_string(gmem_ops[o].name));
	json_object_object_add(root, "args", object_for(r, cx, gmem_ops[o].args, NULL, 1));
	const char *js = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	char *out = malloc(off + strlen(js) + 1);
	if (out) {
		memcpy(out, data + like->start, off);
		strcpy(out + off, js);
	}
	json_object_put(root);
	return out;
}

static size_t mutate_records(struct rng *r, const struct ctx *cx, uint8_t *data, const struct span *recs, size_t n,
			     const size_t *json_recs, size_t n_json, size_t max)
{
	struct span order[RECS_MAX + 1];
	size_t m = 0;
	size_t a = below(r, n), b = below(r, n);
	const char *ins = canned[below(r, sizeof(canned) / sizeof(canned[0]))];
	char *req = NULL;
	/* 0 duplicate, 1 drop, 2 swap, 3 insert a canned record, 4 insert a new request */
	unsigned kind = (unsigned)below(r, n_json ? 5 : 4);

	if (kind == 4) {
		req = new_request(r, cx, data, recs, json_recs, n_json);
		if (!req)
			return 0;
		ins = req;
		kind = 3;
	}

	for (size_t i = 0; i < n && m < RECS_MAX; i++) {
		if (kind == 1 && i == a && n > 1)
			continue; /* dropped */
		order[m++] = kind == 2 && i == a ? recs[b] : kind == 2 && i == b ? recs[a] : recs[i];
		if (kind == 0 && i == a && m < RECS_MAX)
			order[m++] = recs[i]; /* duplicated */
		if (kind == 3 && i == a && m < RECS_MAX)
			order[m++] = (struct span){ SIZE_MAX, 0 }; /* the canned record goes here */
	}
	size_t slot = SIZE_MAX;
	for (size_t i = 0; i < m; i++)
		if (order[i].start == SIZE_MAX)
			slot = i;
	size_t out = assemble(data, max, data, order, m, slot, "", 0, ins);
	free(req);
	return out;
}

/* Reads the guests the input creates (name, size, granule), counts its conversions and finds its largest
 * request id. Only records that mention "create" are parsed: the scan runs once per mutation. */
static void scan_context(struct ctx *cx, const uint8_t *data, const struct span *recs, const size_t *json_recs,
			 size_t n_json)
{
	memset(cx, 0, sizeof(*cx));
	for (size_t k = 0; k < n_json; k++) {
		const struct span *sp = &recs[json_recs[k]];
		const char *p = (const char *)data + sp->start;
		size_t off = json_offset(data + sp->start, sp->len);
		bool create = memmem(p, sp->len, "\"create\"", 8) != NULL;
		cx->n_converts += memmem(p, sp->len, "\"convert\"", 9) != NULL;
		const char *id = memmem(p, sp->len, "\"id\":", 5);
		if (id) {
			uint64_t v = 0;
			for (const char *d = id + 5; d < p + sp->len && *d >= '0' && *d <= '9' && v < 1000000; d++)
				v = v * 10 + (uint64_t)(*d - '0');
			if (v < 1000000 && v > cx->max_id)
				cx->max_id = v;
		}
		if (!create || cx->n_guests == CTX_GUESTS)
			continue;
		struct json_object *root = parse_json(p + off, sp->len - off), *op, *args, *name;
		if (root && json_object_object_get_ex(root, "op", &op) && json_object_is_type(op, json_type_string) &&
		    !strcmp(json_object_get_string(op), "create") && json_object_object_get_ex(root, "args", &args) &&
		    json_object_object_get_ex(args, "name", &name) && json_object_is_type(name, json_type_string) &&
		    strlen(json_object_get_string(name)) < sizeof(cx->guests[0].name)) {
			struct guest_info *g = &cx->guests[cx->n_guests];
			g->granule = get_u64(args, "granule", 4096);
			g->size = get_u64(args, "size", 0);
			/* Only guests that can exist: creating the others fails. */
			if (g->granule && g->size >= g->granule && g->size % g->granule == 0 && !find_guest(cx, json_object_get_string(name))) {
				strcpy(g->name, json_object_get_string(name));
				cx->n_guests++;
			}
		}
		json_object_put(root);
	}
}

size_t fuzz_mutate_requests(uint8_t *data, size_t size, size_t max, unsigned seed)
{
	struct rng r = { .s = ((uint64_t)seed << 1) | 1 };
	struct span recs[RECS_MAX];
	size_t json_recs[RECS_MAX];
	size_t n = 0, n_json = 0;
	struct ctx cx;

	for (size_t i = 0; i < size && n < RECS_MAX;) {
		const uint8_t *nl = memchr(data + i, '\n', size - i);
		size_t len = nl ? (size_t)(nl - (data + i)) : size - i;
		if (json_offset(data + i, len))
			json_recs[n_json++] = n;
		recs[n++] = (struct span){ i, len };
		i += len + 1;
	}
	if (n == 0)
		return 0;
	scan_context(&cx, data, recs, json_recs, n_json);
	if (n_json == 0 || below(&r, 4) == 0)
		return mutate_records(&r, &cx, data, recs, n, json_recs, n_json, max);

	/* One JSON record, mutated as JSON. */
	size_t idx = json_recs[below(&r, n_json)];
	const uint8_t *rec = data + recs[idx].start;
	size_t off = json_offset(rec, recs[idx].len);
	struct json_object *root = parse_json((const char *)rec + off, recs[idx].len - off);
	if (!root || !json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		return 0;
	}
	bool changed = false;
	for (size_t k = 1 + below(&r, 3); k > 0; k--)
		changed |= mutate_message(&r, &cx, root);
	/* One time in six the mutated message goes in after the original instead of replacing it: the
	 * conversation up to and including it stays, and the variant runs in the state it left. */
	struct span order[RECS_MAX + 1];
	size_t m = 0, slot = 0;
	bool copy = below(&r, 6) == 0;
	for (size_t i = 0; i < n; i++) {
		if (i == idx && copy)
			order[m++] = recs[i];
		if (i == idx)
			slot = m;
		order[m++] = recs[i];
	}
	size_t out = 0;
	if (changed)
		out = assemble(data, max, data, order, m, slot, (const char *)rec, off,
			       json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
	return out;
}
