/* SPDX-License-Identifier: MIT */
/*
 * mutate: fuzz-requests' structure-aware mutator (mutate.h). Byte-level mutation of a request sequence
 * mostly breaks the JSON or a field's type and so stays in the codec; this one keeps the JSON valid and
 * knows the protocol from proto/messages.c's field tables, so it reaches what lies behind a valid op
 * with valid values: it picks one JSON record of the input and changes its op, sets a field of that op
 * to a value of its type (bounds, boundary numbers, enum names, guest names, "@T"), duplicates, drops or
 * edits array elements, removes keys, changes a value's type or nests it; or it works on whole records
 * (duplicates, drops, swaps, inserts a vote, ack, timer or reconnect).
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

static struct json_object *value_for(struct rng *r, const struct gmem_field *f, int depth);

static struct json_object *object_for(struct rng *r, const struct gmem_field *fields, int depth)
{
	struct json_object *o = json_object_new_object();
	for (const struct gmem_field *f = fields; f && f->name; f++)
		if ((f->flags & GMEM_F_REQUIRED) || below(r, 2))
			json_object_object_add(o, f->name, value_for(r, f, depth + 1));
	return o;
}

/* A value of the field's type, mostly inside its bounds. */
static struct json_object *value_for(struct rng *r, const struct gmem_field *f, int depth)
{
	size_t n = 0;
	switch (f->type) {
	case GMEM_FT_U64:
		return number(r, f);
	case GMEM_FT_BOOL:
		return json_object_new_boolean(below(r, 2));
	case GMEM_FT_STRING:
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
			json_object_array_add(a, object_for(r, f->sub, depth));
		return a;
	}
	case GMEM_FT_OBJECT:
		return depth < 4 ? object_for(r, f->sub, depth) : json_object_new_object();
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
static bool mutate_array(struct rng *r, struct json_object *args, const struct gmem_field *f)
{
	struct json_object *a;
	if (!json_object_object_get_ex(args, f->name, &a) || !json_object_is_type(a, json_type_array))
		return false;
	size_t len = json_object_array_length(a);
	switch (below(r, 4)) {
	case 0: /* another element */
		json_object_array_add(a, len && below(r, 2) ? json_object_get(json_object_array_get_idx(a, below(r, len)))
						     : object_for(r, f->sub, 1));
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
		json_object_object_add(e, sf->name, value_for(r, sf, 2));
		return true;
	}
	}
}

static bool mutate_message(struct rng *r, struct json_object *root)
{
	struct json_object *op, *args;
	enum gmem_op o = GMEM_OP_INVALID;

	if (json_object_object_get_ex(root, "op", &op) && json_object_is_type(op, json_type_string))
		o = gmem_op_from_name(json_object_get_string(op));
	if (below(r, 12) == 0 || o == GMEM_OP_INVALID) {
		o = (enum gmem_op)below(r, _GMEM_OP_MAX);
		json_object_object_add(root, "op", json_object_new_string(gmem_ops[o].name));
		if (below(r, 2))
			json_object_object_add(root, "args", object_for(r, gmem_ops[o].args, 1));
		return true;
	}
	if (!json_object_object_get_ex(root, "args", &args) || !json_object_is_type(args, json_type_object)) {
		args = json_object_new_object();
		json_object_object_add(root, "args", args);
	}
	const struct gmem_field *f = pick_field(r, gmem_ops[o].args);
	switch (below(r, 10)) {
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
			json_object_array_add(a, value_for(r, f, 1));
			json_object_object_add(args, f->name, a);
		}
		return true;
	case 3:
	case 4: /* an array's elements */
		for (const struct gmem_field *af = gmem_ops[o].args; af && af->name; af++)
			if (af->type == GMEM_FT_ARRAY && mutate_array(r, args, af))
				return true;
		/* fall through */
	default: /* a field set to a value of its type */
		if (!f)
			return false;
		json_object_object_add(args, f->name, value_for(r, f, 1));
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

static size_t mutate_records(struct rng *r, uint8_t *data, const struct span *recs, size_t n, size_t max)
{
	struct span order[RECS_MAX + 1];
	size_t m = 0;
	size_t a = below(r, n), b = below(r, n);
	const char *ins = canned[below(r, sizeof(canned) / sizeof(canned[0]))];
	unsigned kind = (unsigned)below(r, 4);

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
	return assemble(data, max, data, order, m, slot, "", 0, ins);
}

size_t fuzz_mutate_requests(uint8_t *data, size_t size, size_t max, unsigned seed)
{
	struct rng r = { .s = ((uint64_t)seed << 1) | 1 };
	struct span recs[RECS_MAX];
	size_t n = 0, n_json = 0;

	for (size_t i = 0; i < size && n < RECS_MAX;) {
		const uint8_t *nl = memchr(data + i, '\n', size - i);
		size_t len = nl ? (size_t)(nl - (data + i)) : size - i;
		recs[n++] = (struct span){ i, len };
		n_json += json_offset(data + i, len) > 0;
		i += len + 1;
	}
	if (n == 0)
		return 0;
	if (n_json == 0 || below(&r, 5) == 0)
		return mutate_records(&r, data, recs, n, max);

	/* One JSON record, mutated as JSON. */
	size_t pick = below(&r, n_json), idx = 0;
	for (size_t i = 0; i < n; i++)
		if (json_offset(data + recs[i].start, recs[i].len) && pick-- == 0) {
			idx = i;
			break;
		}
	const uint8_t *rec = data + recs[idx].start;
	size_t off = json_offset(rec, recs[idx].len);
	struct json_tokener *tok = json_tokener_new_ex(64);
	if (!tok)
		return 0;
	struct json_object *root = json_tokener_parse_ex(tok, (const char *)rec + off, (int)(recs[idx].len - off));
	json_tokener_free(tok);
	if (!root || !json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		return 0;
	}
	bool changed = false;
	for (size_t k = 1 + below(&r, 3); k > 0; k--)
		changed |= mutate_message(&r, root);
	size_t out = 0;
	if (changed)
		out = assemble(data, max, data, recs, n, idx, (const char *)rec, off,
			       json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
	return out;
}
