/* SPDX-License-Identifier: MIT */
/*
 * test-codec: the table-driven JSON codec (codec.c), the message envelope (envelope.c) and the op and
 * event tables (messages.c).
 *
 * Round trips iterate gmem_ops[] and gmem_events[], so an op added to the table without an example in
 * fill_example() fails here. The decode rejections are table-driven too: every field of every payload
 * table (and of the element table of every array field, reached through .sub) gets the wrong JSON types,
 * out-of-bounds values and bad strings of its type, and each must fail with the exact errno and a message
 * naming the field. Decode failures are never followed by
 * gmem_fields_release(), so under LeakSanitizer a failure path that forgets to free shows up as a leak.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "codec.h"
#include "envelope.h"
#include "errname.h"
#include "gmem-proto.h"

#define WIRE_SIZE_MAX (UINT64_C(1) << 62) /* messages.c: SIZE_MAX_WIRE */
#define I64MAX ((uint64_t)INT64_MAX)
#define PLACEHOLDER "@@gmem-test-value@@"

/* Stands for "not written": gmem_json_parse must leave *ret alone on failure. */
static int sentinel_storage;
#define SENTINEL ((struct json_object *)(void *)&sentinel_storage)

enum { FULL, MINIMAL };

/* ---------------------------------------------------------------------------------------------- */
/* helpers                                                                                          */

__attribute__((format(printf, 1, 2))) static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	assert_true(r >= 0);
	return s;
}

static void *xcalloc(size_t size)
{
	void *p = calloc(1, size ? size : 1);
	assert_non_null(p);
	return p;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);
	assert_non_null(d);
	return d;
}

/* unit repeated n times, malloc'd. */
static char *repeat(const char *unit, size_t n)
{
	size_t ul = strlen(unit);
	char *s = malloc(ul * n + 1);

	assert_non_null(s);
	for (size_t i = 0; i < n; i++)
		memcpy(s + i * ul, unit, ul);
	s[ul * n] = '\0';
	return s;
}

/* Strict UTF-8 (RFC 3629): shortest form only, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;

	for (size_t i = 0; i < n;) {
		unsigned c = s[i];
		size_t len;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2, cp = c & 0x1f, min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3, cp = c & 0x0f, min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

/* s with bytes outside printable ASCII as \xNN, for failure messages that must stay readable text. */
static const char *escaped(const char *s, char *out, size_t size)
{
	size_t o = 0;

	for (; *s && o + 5 < size; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c < 0x7f)
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
	}
	out[o] = '\0';
	return out;
}

static bool has_substr(const char *haystack, const char *needle)
{
	return strstr(haystack, needle) != NULL;
}

/* Every built datagram: NUL-terminated at len, within the limit, strictly valid UTF-8. */
static void check_datagram(const char *buf, size_t len)
{
	assert_non_null(buf);
	assert_int_equal(strlen(buf), len);
	assert_true(len > 0);
	assert_true(len <= GMEM_MSG_MAX);
	if (!utf8_valid(buf, len))
		fail_msg("built datagram is not valid UTF-8: %.200s", buf);
}

static struct json_object *parse_ok(const char *buf, size_t len)
{
	struct json_object *root = SENTINEL;
	struct gmem_codec_error e = { 0 };
	int r = gmem_json_parse(buf, len, &root, &e);

	if (r != 0)
		fail_msg("gmem_json_parse(%.200s): %d (%s), want 0", buf, r, e.msg);
	assert_non_null(root);
	assert_ptr_not_equal(root, SENTINEL);
	assert_true(json_object_is_type(root, json_type_object));
	return root;
}

static struct json_object *parse_str(const char *s)
{
	return parse_ok(s, strlen(s));
}

static void expect_parse_fail(const char *what, const char *buf, size_t len)
{
	struct json_object *root = SENTINEL;
	struct gmem_codec_error e = { 0 };
	int r = gmem_json_parse(buf, len, &root, &e);

	if (r != -EBADMSG) {
		if (r == 0)
			json_object_put(root);
		fail_msg("%s: gmem_json_parse returned %d, want -EBADMSG (%d)", what, r, -EBADMSG);
	}
	assert_int_equal(e.err, -EBADMSG);
	assert_true(e.msg[0] != '\0');
	assert_ptr_equal(root, SENTINEL);
}
#define EXPECT_PARSE_FAIL(what, lit) expect_parse_fail(what, lit, sizeof(lit) - 1)

/* Every array field (also inside nested objects) is NULL with a zero count: what a failed decode of a
 * zeroed struct must leave behind. */
static void assert_released(const struct gmem_field *fields, const void *obj, const char *where)
{
	for (const struct gmem_field *f = fields; f->name; f++) {
		const char *p = (const char *)obj + f->offset;
		if (f->type == GMEM_FT_OBJECT)
			assert_released(f->sub, p, where);
		if (f->type != GMEM_FT_ARRAY)
			continue;
		if (*(void *const *)p != NULL || *(const size_t *)((const char *)obj + f->count_offset) != 0)
			fail_msg("%s: array '%s' not released after a failed decode", where, f->name);
	}
}

static bool has_pointers(const struct gmem_field *fields)
{
	for (const struct gmem_field *f = fields; f->name; f++)
		if (f->type == GMEM_FT_ARRAY || (f->type == GMEM_FT_OBJECT && has_pointers(f->sub)))
			return true;
	return false;
}

static bool has_required(const struct gmem_field *fields)
{
	for (const struct gmem_field *f = fields; f->name; f++)
		if (f->flags & GMEM_F_REQUIRED)
			return true;
	return false;
}

/* Field-by-field comparison through the table; failures name the path. */
static void assert_fields_equal(const struct gmem_field *fields, const void *want, const void *got,
				const char *where)
{
	for (const struct gmem_field *f = fields; f->name; f++) {
		const char *a = (const char *)want + f->offset, *b = (const char *)got + f->offset;

		switch (f->type) {
		case GMEM_FT_U64:
			if (*(const uint64_t *)a != *(const uint64_t *)b)
				fail_msg("%s.%s: got %ju, want %ju", where, f->name,
					 (uintmax_t) * (const uint64_t *)b, (uintmax_t) * (const uint64_t *)a);
			break;
		case GMEM_FT_BOOL:
			if (*(const bool *)a != *(const bool *)b)
				fail_msg("%s.%s: got %d, want %d", where, f->name, *(const bool *)b, *(const bool *)a);
			break;
		case GMEM_FT_STRING:
			if (strcmp(a, b) != 0)
				fail_msg("%s.%s: got \"%s\", want \"%s\"", where, f->name, b, a);
			break;
		case GMEM_FT_ENUM:
			if (*(const int *)a != *(const int *)b)
				fail_msg("%s.%s: got %d, want %d", where, f->name, *(const int *)b, *(const int *)a);
			break;
		case GMEM_FT_FLAGS:
			if (*(const uint32_t *)a != *(const uint32_t *)b)
				fail_msg("%s.%s: got %#x, want %#x", where, f->name, *(const uint32_t *)b,
					 *(const uint32_t *)a);
			break;
		case GMEM_FT_ARRAY: {
			size_t na = *(const size_t *)((const char *)want + f->count_offset);
			size_t nb = *(const size_t *)((const char *)got + f->count_offset);
			const char *ea = *(char *const *)a, *eb = *(char *const *)b;
			if (na != nb)
				fail_msg("%s.%s: got %zu elements, want %zu", where, f->name, nb, na);
			if (nb && !eb)
				fail_msg("%s.%s: %zu elements but no storage", where, f->name, nb);
			for (size_t i = 0; i < na; i++) {
				char sub[128];
				snprintf(sub, sizeof(sub), "%s.%s[%zu]", where, f->name, i);
				assert_fields_equal(f->sub, ea + i * f->size, eb + i * f->size, sub);
			}
			break;
		}
		case GMEM_FT_OBJECT: {
			char sub[128];
			snprintf(sub, sizeof(sub), "%s.%s", where, f->name);
			assert_fields_equal(f->sub, a, b, sub);
			break;
		}
		}
	}
}

/* ---------------------------------------------------------------------------------------------- */
/* examples: one filled struct per payload table                                                    */

static const char name64[] = "abcdefghijklmnopqrstuvwxyABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
_Static_assert(sizeof(name64) == GMEM_NAME_MAX + 1, "name64 is a longest guest name");
static struct gmem_wire_guest list_src[3];

static struct gmem_wire_guest example_guest(unsigned i)
{
	struct gmem_wire_guest g;

	memset(&g, 0, sizeof(g));
	g.id = 100 + i;
	snprintf(g.name, sizeof(g.name), "guest-%u.vm_x", i);
	g.size = (uint64_t)(i + 1) * GMEM_GRANULE_2M;
	g.granule = i % 2 ? GMEM_GRANULE_4K : GMEM_GRANULE_2M;
	g.owner = 1000 + i;
	g.touched = (uint64_t)i * 4096;
	g.holders = i;
	g.attachments = 2 * i + 1;
	g.leased = i % 2;
	g.ephemeral = i % 3 == 1;
	return g;
}

/* The largest guest object a daemon can send: a 64-byte name and every integer at its maximum. */
static struct gmem_wire_guest worst_guest(uint64_t big)
{
	struct gmem_wire_guest g;

	memset(&g, 0, sizeof(g));
	g.id = g.size = g.granule = g.owner = g.touched = g.holders = g.attachments = big;
	memcpy(g.name, name64, GMEM_NAME_MAX);
	g.leased = true;
	return g;
}

/* A shutdown reason with everything JSON must escape, multi-byte UTF-8 and a control character. */
static const char tricky_text[] = "stopping: \"quoted\" back\\slash /slash\n\ttab \x01 "
				  "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf";

/* The element table of parent's array or object field key: how the file-static element tables of
 * messages.c (refusals, unverified, runs) are reached. */
static const struct gmem_field *sub_table(const struct gmem_field *parent, const char *key)
{
	for (const struct gmem_field *f = parent; f->name; f++)
		if (strcmp(f->name, key) == 0 && f->sub)
			return f->sub;
	fail_msg("no nested table '%s'", key);
	return NULL;
}

/* Conversions: static storage for the arrays of the examples, one set per variant (never released). */
static struct gmem_wire_range ranges_src[2][3];
static struct gmem_wire_refusal refusals_src[2];
static struct gmem_wire_party parties_src[2];
static struct gmem_wire_run runs_src[3];

static struct gmem_wire_range example_range(unsigned i)
{
	struct gmem_wire_range r = { .offset = (uint64_t)i * GMEM_GRANULE_2M, .length = (uint64_t)(i + 1) * 4096 };
	return r;
}

/* Every field set, strings at their longest or hardest to encode. */
static struct gmem_wire_refusal example_refusal(unsigned i)
{
	struct gmem_wire_refusal w;

	memset(&w, 0, sizeof(w));
	w.client_id = i ? 30 + i : I64MAX;
	w.pid = i ? 4000 + i : I64MAX;
	if (i)
		snprintf(w.client_name, sizeof(w.client_name), "device-%u", i);
	else
		memcpy(w.client_name, name64, GMEM_NAME_MAX);
	strcpy(w.err, i ? "ETIMEDOUT" : "ENOTRECOVERABLE");
	strcpy(w.reason, i ? "did not vote in time" : tricky_text);
	w.timed_out = true;
	w.gone = !i;
	return w;
}

static struct gmem_wire_attachment example_attachment(unsigned i)
{
	return (struct gmem_wire_attachment){ .id = 1 + i, .offset = (uint64_t)i * 4096, .length = 4096,
					      .kind = (int)(i % 3) };
}

static struct gmem_wire_attachment holder_ranges_src[2][GMEM_HOLDER_RANGES_MAX];

static struct gmem_wire_holder example_holder(unsigned i)
{
	struct gmem_wire_holder w;

	memset(&w, 0, sizeof(w));
	w.client_id = i ? 10 + i : I64MAX;
	w.pid = i ? 4000 + i : I64MAX;
	w.uid = i ? 1000 : I64MAX;
	if (i)
		snprintf(w.client_name, sizeof(w.client_name), "dev-%u", i);
	else
		memcpy(w.client_name, name64, GMEM_NAME_MAX);
	w.role = (int)(i % 3);
	w.files = i + 1;
	w.leased = i == 0;
	w.attachments = i ? 1 : I64MAX;
	size_t n = i ? 1 : GMEM_HOLDER_RANGES_MAX;
	for (size_t k = 0; k < n; k++)
		holder_ranges_src[i % 2][k] = example_attachment((unsigned)k);
	w.ranges = holder_ranges_src[i % 2]; /* static storage: never released */
	w.n_ranges = n;
	return w;
}

static struct gmem_wire_holder holders_src[2];

static struct gmem_wire_guest_stats example_guest_stats(unsigned i)
{
	struct gmem_wire_guest_stats w;

	memset(&w, 0, sizeof(w));
	w.id = i ? 7 + i : I64MAX;
	if (i)
		snprintf(w.name, sizeof(w.name), "vm-%u", i);
	else
		memcpy(w.name, name64, GMEM_NAME_MAX);
	w.conversions = i ? 100 + i : I64MAX;
	w.committed = i ? 90 : I64MAX;
	w.aborted = i ? 9 : I64MAX;
	w.unverified = i ? 1 : I64MAX;
	w.queued = i;
	w.window = i ? 100 : I64MAX;
	w.p50_us = 150 + i;
	w.p99_us = i ? 2500 : I64MAX;
	w.quarantined_bytes = i ? 0 : I64MAX;
	w.slowest_client_id = i ? 3 : I64MAX;
	w.slowest_pid = 4000 + i;
	if (i)
		snprintf(w.slowest_name, sizeof(w.slowest_name), "vfio-%u", i);
	else
		memcpy(w.slowest_name, name64, GMEM_NAME_MAX);
	w.slowest_vote_us = 1400 + i;
	return w;
}

static struct gmem_wire_guest_stats guest_stats_src[2];
static struct gmem_wire_orphan orphans_src[2];

static struct gmem_wire_orphan example_orphan(unsigned i)
{
	return (struct gmem_wire_orphan){
		.id = i ? I64MAX : 1, .size = I64MAX - i, .granule = GMEM_GRANULE_2M, .on_node = i, .node = i ? I64MAX : 0,
		.private_bytes = I64MAX - 1, .holders = I64MAX - 2, .cookie = I64MAX - 3,
	};
}

static struct gmem_wire_party example_party(unsigned i)
{
	struct gmem_wire_party w;

	memset(&w, 0, sizeof(w));
	w.client_id = i ? 40 + i : I64MAX;
	w.pid = i ? 5000 + i : I64MAX;
	if (i)
		snprintf(w.client_name, sizeof(w.client_name), "vmm-%u", i);
	else
		memcpy(w.client_name, name64, GMEM_NAME_MAX);
	return w;
}

static struct gmem_wire_run example_run(unsigned i)
{
	struct gmem_wire_run r = { .offset = (uint64_t)i * GMEM_GRANULE_2M, .length = GMEM_GRANULE_2M,
				   .state = i % 2 ? GMEM_PRIVATE : GMEM_SHARED };
	return r;
}

/* Points *ranges at the variant's static ranges: three with the last at the wire's maximum (FULL), or
 * the one smallest range (MINIMAL). */
static size_t example_ranges(int variant, struct gmem_wire_range **ranges)
{
	struct gmem_wire_range *r = ranges_src[variant];

	if (variant == FULL) {
		r[0] = example_range(0);
		r[1] = example_range(5);
		r[2] = (struct gmem_wire_range){ .offset = WIRE_SIZE_MAX, .length = WIRE_SIZE_MAX };
		*ranges = r;
		return 3;
	}
	r[0] = (struct gmem_wire_range){ .offset = 0, .length = 1 };
	*ranges = r;
	return 1;
}

/* buf is zeroed and sized for the table's struct. */
/* A quarantine record with every field at its widest (static storage: never released). */
static struct gmem_wire_quarantine *example_quarantine(void)
{
	static struct gmem_wire_quarantine q;
	memcpy(q.guest, name64, GMEM_NAME_MAX);
	q.destroyed = true;
	q.offset = WIRE_SIZE_MAX;
	q.length = WIRE_SIZE_MAX;
	q.seq = I64MAX;
	q.client_id = I64MAX;
	q.pid = 4194304;
	memcpy(q.client_name, name64, GMEM_NAME_MAX);
	return &q;
}

static void fill_example(const struct gmem_field *fields, void *buf, int variant)
{
	bool full = variant == FULL;

	if (fields == gmem_no_fields)
		return;
	if (fields == gmem_hello_args_fields) {
		struct gmem_hello_args *a = buf;
		a->version = full ? 65535 : GMEM_PROTOCOL_VERSION;
		a->role = full ? GMEM_ROLE_ADMIN : GMEM_ROLE_VMM;
		if (full) {
			a->features = GMEM_FEATURES_ALL;
			memcpy(a->client_name, name64, GMEM_NAME_MAX);
		}
	} else if (fields == gmem_hello_reply_fields) {
		struct gmem_hello_reply *r = buf;
		r->version = GMEM_PROTOCOL_VERSION;
		if (full) {
			r->features = GMEM_FEATURE_LIST_PAGES;
			strcpy(r->server, "gmemd 0.1.0");
			strcpy(r->backend, "abcdefghijklmno"); /* 15 bytes, the most char[16] holds */
			r->enforcing = true;
			r->client_id = I64MAX;
		}
	} else if (fields == gmem_status_reply_fields) {
		struct gmem_status_reply *r = buf;
		if (full) {
			strcpy(r->server, "gmemd 0.1.0");
			strcpy(r->backend, "kmod");
			r->enforcing = true;
			r->pool_size = UINT64_C(64) << 30;
			r->pool_used = UINT64_C(3) << 30;
			r->touched = 12345 * 4096;
			r->guests = 7;
			r->clients = I64MAX;
			static struct gmem_wire_node nodes_src[2]; /* static storage: never released */
			nodes_src[0] = (struct gmem_wire_node){ .node = 0, .total = 64 << 20, .free = 60 << 20 };
			nodes_src[1] = (struct gmem_wire_node){ .node = GMEM_NODE_MAX, .total = I64MAX, .free = I64MAX };
			r->nodes = nodes_src;
			r->n_nodes = 2;
			r->quarantined = WIRE_SIZE_MAX;
			r->n_quarantine = 1;
			r->quarantine = example_quarantine();
		}
	} else if (fields == sub_table(gmem_status_reply_fields, "nodes")) {
		if (full)
			*(struct gmem_wire_node *)buf = (struct gmem_wire_node){ .node = 1, .total = 1 << 21, .free = 0 };
	} else if (fields == sub_table(gmem_status_reply_fields, "quarantine")) {
		if (full)
			*(struct gmem_wire_quarantine *)buf = *example_quarantine();
	} else if (fields == gmem_guest_args_fields) {
		struct gmem_guest_args *a = buf;
		if (full)
			memcpy(a->name, name64, GMEM_NAME_MAX);
		else
			strcpy(a->name, "g");
	} else if (fields == gmem_create_args_fields) {
		struct gmem_create_args *a = buf;
		strcpy(a->name, full ? "vm-create.1" : "c");
		a->size = full ? WIRE_SIZE_MAX : 1;
		a->granule = full ? GMEM_GRANULE_2M : 0;
		a->on_node = full;
		a->node = full ? GMEM_NODE_MAX : 0;
		a->ephemeral = full;
	} else if (fields == gmem_wire_guest_fields) {
		if (full)
			*(struct gmem_wire_guest *)buf = example_guest(7);
	} else if (fields == gmem_list_args_fields) {
		struct gmem_list_args *a = buf;
		a->after = full ? I64MAX : 0;
	} else if (fields == gmem_list_reply_fields) {
		struct gmem_list_reply *r = buf;
		if (full) {
			for (unsigned i = 0; i < 3; i++)
				list_src[i] = example_guest(i);
			r->guests = list_src; /* static storage: never released */
			r->n_guests = 3;
			r->next = 103;
		}
	} else if (fields == gmem_open_reply_fields) {
		struct gmem_open_reply *r = buf;
		if (full)
			r->guest = example_guest(4);
		r->fd = 0;
	} else if (fields == gmem_attach_args_fields) {
		struct gmem_attach_args *a = buf;
		strcpy(a->name, full ? "vm-attach" : "a");
		a->offset = full ? WIRE_SIZE_MAX : 0;
		a->length = full ? WIRE_SIZE_MAX : 1;
		a->kind = full ? GMEM_ATTACH_KVM : GMEM_ATTACH_MMAP;
	} else if (fields == gmem_destroy_args_fields) {
		struct gmem_destroy_args *a = buf;
		if (full)
			memcpy(a->name, name64, GMEM_NAME_MAX);
		else
			strcpy(a->name, "d");
		a->force = full;
	} else if (fields == gmem_holders_args_fields) {
		struct gmem_holders_args *a = buf;
		strcpy(a->name, full ? "vm-holders" : "h");
		a->after = full ? I64MAX : 0;
	} else if (fields == sub_table(sub_table(gmem_holders_reply_fields, "holders"), "ranges")) {
		if (full)
			*(struct gmem_wire_attachment *)buf = example_attachment(2);
	} else if (fields == sub_table(gmem_holders_reply_fields, "holders")) {
		if (full)
			*(struct gmem_wire_holder *)buf = example_holder(1);
	} else if (fields == gmem_holders_reply_fields) {
		struct gmem_holders_reply *r = buf;
		if (full) {
			holders_src[0] = example_holder(0);
			holders_src[1] = example_holder(1);
			r->holders = holders_src; /* static storage: never released */
			r->n_holders = 2;
			r->next = I64MAX;
		}
	} else if (fields == sub_table(gmem_stats_reply_fields, "guests")) {
		if (full)
			*(struct gmem_wire_guest_stats *)buf = example_guest_stats(1);
	} else if (fields == gmem_stats_reply_fields) {
		struct gmem_stats_reply *r = buf;
		if (full) {
			guest_stats_src[0] = example_guest_stats(0);
			guest_stats_src[1] = example_guest_stats(1);
			r->guests = guest_stats_src; /* static storage: never released */
			r->n_guests = 2;
			r->next = I64MAX;
			r->quarantined_bytes = I64MAX;
		}
	} else if (fields == sub_table(gmem_orphans_reply_fields, "orphans")) {
		if (full)
			*(struct gmem_wire_orphan *)buf = example_orphan(1);
	} else if (fields == gmem_orphans_reply_fields) {
		struct gmem_orphans_reply *r = buf;
		if (full) {
			orphans_src[0] = example_orphan(0);
			orphans_src[1] = example_orphan(1);
			r->orphans = orphans_src; /* static storage: never released */
			r->n_orphans = 2;
			r->next = I64MAX;
		}
	} else if (fields == gmem_adopt_args_fields) {
		struct gmem_adopt_args *a = buf;
		a->id = full ? I64MAX : 1;
		if (full)
			memcpy(a->name, name64, GMEM_NAME_MAX);
		else
			strcpy(a->name, "o");
		a->owner = full ? UINT32_MAX - 1 : 0;
	} else if (fields == gmem_orphan_args_fields) {
		((struct gmem_orphan_args *)buf)->id = full ? I64MAX : 1;
	} else if (fields == gmem_cancel_args_fields) {
		struct gmem_cancel_args *a = buf;
		a->epoch = full ? I64MAX : 0;
		a->seq = full ? I64MAX : 1;
	} else if (fields == gmem_evict_args_fields) {
		((struct gmem_evict_args *)buf)->client_id = full ? I64MAX : 1;
	} else if (fields == gmem_publish_map_reply_fields) {
		struct gmem_publish_map_reply *r = buf;
		r->fd = 0;
		r->bytes = full ? I64MAX : 1;
		r->granule = full ? GMEM_GRANULE_2M : GMEM_GRANULE_4K;
		r->granules = full ? I64MAX : 1;
	} else if (fields == gmem_attach_reply_fields) {
		((struct gmem_attach_reply *)buf)->id = full ? I64MAX : 1;
	} else if (fields == gmem_detach_args_fields) {
		((struct gmem_detach_args *)buf)->id = full ? I64MAX : 1;
	} else if (fields == gmem_shutdown_event_fields) {
		if (full)
			strcpy(((struct gmem_shutdown_event *)buf)->reason, tricky_text);
	} else if (fields == gmem_guest_event_fields) {
		if (full)
			memcpy(((struct gmem_guest_event *)buf)->name, name64, GMEM_NAME_MAX);
	} else if (fields == gmem_wire_range_fields) {
		struct gmem_wire_range *r = buf;
		r->offset = full ? WIRE_SIZE_MAX : 0;
		r->length = full ? WIRE_SIZE_MAX : 1;
	} else if (fields == gmem_convert_args_fields) {
		struct gmem_convert_args *a = buf;
		if (full)
			memcpy(a->name, name64, GMEM_NAME_MAX);
		else
			strcpy(a->name, "c");
		a->n_ranges = example_ranges(variant, &a->ranges); /* static storage: never released */
		a->target = full ? GMEM_PRIVATE : GMEM_SHARED;
		a->content = full ? 1 : 0; /* zero : preserve */
		a->force = full;
	} else if (fields == sub_table(gmem_convert_reply_fields, "refusals")) {
		if (full)
			*(struct gmem_wire_refusal *)buf = example_refusal(0);
	} else if (fields == sub_table(gmem_convert_reply_fields, "unverified")) {
		if (full)
			*(struct gmem_wire_party *)buf = example_party(0);
	} else if (fields == gmem_convert_reply_fields) {
		struct gmem_convert_reply *r = buf;
		if (full) {
			r->epoch = r->seq = I64MAX;
			r->outcome = GMEM_COMMITTED_UNVERIFIED;
			r->changed = WIRE_SIZE_MAX;
			r->participants = 65;
			r->latency_us = 123456;
			/* A real reply has refusals (aborted) or unverified parties (committed-unverified), never
			 * both; the codec carries both. Static storage: never released. */
			for (unsigned i = 0; i < 2; i++) {
				refusals_src[i] = example_refusal(i);
				parties_src[i] = example_party(i);
			}
			r->refusals = refusals_src;
			r->n_refusals = 2;
			r->unverified = parties_src;
			r->n_unverified = 2;
		} else {
			r->seq = 1; /* conversion numbers start at 1, as in votes, acks and events */
			r->outcome = GMEM_COMMITTED;
		}
	} else if (fields == gmem_clients_args_fields) {
		((struct gmem_clients_args *)buf)->after = full ? I64MAX : 0;
	} else if (fields == sub_table(gmem_clients_reply_fields, "clients")) {
		struct gmem_wire_client *w = buf;
		w->id = full ? I64MAX : 1;
		if (full) {
			w->pid = I64MAX;
			w->uid = w->gid = UINT32_MAX;
			w->hello = true;
			w->role = GMEM_ROLE_ADMIN;
			memcpy(w->client_name, name64, GMEM_NAME_MAX);
			w->attachments = GMEM_ATTACH_MAX;
			w->files = w->leases = I64MAX;
			w->converts = GMEM_CONVERTS_MAX;
			w->self = true;
		}
	} else if (fields == gmem_clients_reply_fields) {
		struct gmem_clients_reply *r = buf;
		if (full) {
			static struct gmem_wire_client src[2]; /* static storage: never released */
			for (unsigned i = 0; i < 2; i++) {
				memset(&src[i], 0, sizeof(src[i]));
				src[i].id = 10 + i;
				src[i].pid = 100 + i;
				src[i].hello = i;
				src[i].role = GMEM_ROLE_DEVICE;
			}
			r->clients = src;
			r->n_clients = 2;
			r->next = 11;
		}
	} else if (fields == sub_table(gmem_conversions_reply_fields, "in_flight")) {
		struct gmem_wire_conversion *w = buf;
		w->seq = full ? I64MAX : 1;
		strcpy(w->guest, "g");
		if (full) {
			w->epoch = I64MAX;
			memcpy(w->guest, name64, GMEM_NAME_MAX);
			w->target = GMEM_PRIVATE;
			w->state = 5; /* committed-unverified, the last name */
			w->bytes = WIRE_SIZE_MAX;
			w->ranges = GMEM_RANGES_MAX;
			w->participants = 65;
			w->latency_us = I64MAX;
			w->requester_pid = I64MAX;
		}
	} else if (fields == gmem_conversions_reply_fields) {
		struct gmem_conversions_reply *r = buf;
		if (full) {
			static struct gmem_wire_conversion src[3]; /* static storage: never released */
			for (unsigned i = 0; i < 3; i++) {
				memset(&src[i], 0, sizeof(src[i]));
				src[i].seq = 1 + i;
				snprintf(src[i].guest, sizeof(src[i].guest), "vm%u", i);
				src[i].state = (int)i;
			}
			r->in_flight = src;
			r->n_in_flight = 2;
			r->omitted = 7;
			r->recent = src + 2;
			r->n_recent = 1;
		}
	} else if (fields == gmem_grant_args_fields) {
		struct gmem_grant_args *a = buf;
		if (full) {
			memcpy(a->name, name64, GMEM_NAME_MAX);
			strcpy(a->who, "uid:4294967294");
			a->role = GMEM_ROLE_VMM;
		} else {
			strcpy(a->name, "g");
			strcpy(a->who, "gid:0");
			a->role = GMEM_ROLE_DEVICE;
		}
	} else if (fields == gmem_vote_args_fields) {
		struct gmem_vote_args *a = buf;
		a->epoch = full ? I64MAX : 0;
		a->seq = full ? I64MAX : 1;
		a->vote = full ? 1 : 0; /* no : yes */
		if (full) {
			strcpy(a->err, "ENOTRECOVERABLE");
			strcpy(a->reason, tricky_text);
		}
	} else if (fields == gmem_ack_args_fields) {
		struct gmem_ack_args *a = buf;
		a->epoch = full ? I64MAX : 0;
		a->seq = full ? I64MAX : 1;
	} else if (fields == gmem_resolve_reply_fields) {
		struct gmem_resolve_reply *r = buf;
		if (full)
			memcpy(r->guest, name64, GMEM_NAME_MAX);
		else
			strcpy(r->guest, "g");
		r->outcome = full ? GMEM_COMMITTED_UNVERIFIED : GMEM_COMMITTED;
	} else if (fields == gmem_map_args_fields) {
		struct gmem_map_args *a = buf;
		if (full)
			memcpy(a->name, name64, GMEM_NAME_MAX);
		else
			strcpy(a->name, "m");
		a->offset = full ? WIRE_SIZE_MAX : 0;
	} else if (fields == sub_table(gmem_map_reply_fields, "runs")) {
		struct gmem_wire_run *r = buf;
		r->offset = full ? I64MAX : 0;
		r->length = full ? I64MAX : 1;
		r->state = full ? GMEM_PRIVATE : GMEM_SHARED;
	} else if (fields == gmem_map_reply_fields) {
		struct gmem_map_reply *r = buf;
		if (full) {
			r->size = WIRE_SIZE_MAX;
			r->granule = GMEM_GRANULE_2M;
			r->shared_bytes = WIRE_SIZE_MAX - 4 * GMEM_GRANULE_2M;
			r->private_bytes = 4 * GMEM_GRANULE_2M;
			for (unsigned i = 0; i < 3; i++)
				runs_src[i] = example_run(i);
			r->runs = runs_src; /* static storage: never released */
			r->n_runs = 3;
			r->next = 3 * GMEM_GRANULE_2M;
		}
	} else if (fields == gmem_prepare_event_fields) {
		struct gmem_prepare_event *p = buf;
		p->epoch = full ? I64MAX : 0;
		p->seq = full ? I64MAX : 1;
		if (full)
			memcpy(p->guest, name64, GMEM_NAME_MAX);
		else
			strcpy(p->guest, "g");
		p->target = full ? GMEM_PRIVATE : GMEM_SHARED;
		p->content = full ? 1 : 0;
		p->role = full ? GMEM_ROLE_DEVICE : GMEM_ROLE_VMM;
		p->n_ranges = example_ranges(variant, &p->ranges); /* static storage: never released */
	} else if (fields == gmem_commit_event_fields) {
		struct gmem_commit_event *c = buf;
		c->epoch = full ? I64MAX : 0;
		c->seq = full ? I64MAX : 1;
		strcpy(c->guest, full ? "vm-commit.2" : "g");
		c->wave = full ? 3 : 1;
	} else if (fields == gmem_conv_event_fields) {
		struct gmem_conv_event *c = buf;
		c->epoch = full ? I64MAX : 0;
		c->seq = full ? I64MAX : 1;
		if (full)
			memcpy(c->guest, name64, GMEM_NAME_MAX);
		else
			strcpy(c->guest, "g");
	} else if (fields == gmem_done_event_fields) {
		struct gmem_done_event *d = buf;
		d->epoch = full ? I64MAX : 0;
		d->seq = full ? I64MAX : 1;
		strcpy(d->guest, full ? "vm-done" : "g");
		d->outcome = full ? GMEM_COMMITTED_UNVERIFIED : GMEM_COMMITTED;
	} else if (fields == gmem_watch_event_fields) {
		struct gmem_watch_event *w = buf;
		w->epoch = full ? I64MAX : 0;
		w->seq = full ? I64MAX : 1;
		if (full)
			memcpy(w->guest, name64, GMEM_NAME_MAX);
		else
			strcpy(w->guest, "g");
		w->target = full ? GMEM_PRIVATE : GMEM_SHARED;
		w->state = 0; /* queued */
		if (full) {
			while (gmem_state_names[w->state + 1]) /* the last state */
				w->state++;
			w->bytes = WIRE_SIZE_MAX;
			w->ranges = GMEM_RANGES_MAX;
			w->participants = 65;
			w->latency_us = I64MAX;
			w->requester_pid = 4194304;
		}
	} else if (fields == gmem_delegate_args_fields) {
		struct gmem_delegate_args *a = buf;
		if (full)
			memcpy(a->name, name64, GMEM_NAME_MAX);
		else
			strcpy(a->name, "g");
		strcpy(a->who, full ? "gid:4294967294" : "uid:0");
		a->offset = full ? WIRE_SIZE_MAX : 0;
		a->length = full ? WIRE_SIZE_MAX : 1;
		a->kind = full ? GMEM_ATTACH_IOMMU : GMEM_ATTACH_MMAP;
	} else if (fields == gmem_delegate_reply_fields) {
		struct gmem_delegate_reply *r = buf;
		r->id = full ? I64MAX : 1;
		strcpy(r->token, full ? "ffffffffffffffffffffffffffffffff" : "00000000000000000000000000000000");
		r->expires_ms = full ? I64MAX : 0;
	} else if (fields == gmem_redeem_args_fields) {
		strcpy(((struct gmem_redeem_args *)buf)->token, full ? "0123456789abcdef0123456789abcdef" : "x");
	} else if (fields == gmem_redeem_reply_fields) {
		struct gmem_redeem_reply *r = buf;
		if (full) {
			r->guest = example_guest(5);
			r->guest.delegations = I64MAX;
		}
		r->fd = 0;
		r->attachment = full ? I64MAX : 1;
		r->delegation = full ? I64MAX : 1;
	} else if (fields == gmem_undelegate_args_fields) {
		((struct gmem_undelegate_args *)buf)->id = full ? I64MAX : 1;
	} else if (fields == gmem_revoked_event_fields) {
		struct gmem_revoked_event *e = buf;
		if (full)
			memcpy(e->name, name64, GMEM_NAME_MAX);
		e->attachment = full ? I64MAX : 0;
		e->delegation = full ? I64MAX : 0;
	} else {
		fail_msg("no example for this field table (first key '%s'): add one to fill_example()",
			 fields[0].name);
	}
}

/* Every payload table once, with how its receiver decodes it. */
struct table {
	char name[48];
	const struct gmem_field *fields;
	size_t size;
	unsigned flags;
};

static size_t collect_tables(struct table *t, size_t max)
{
	size_t n = 0;

	for (int i = 0; i < 2 * _GMEM_OP_MAX + _GMEM_WIRE_EVENT_MAX; i++) {
		struct table c = { .flags = 0 };
		if (i < _GMEM_OP_MAX) {
			snprintf(c.name, sizeof(c.name), "%s.args", gmem_ops[i].name);
			c.fields = gmem_ops[i].args, c.size = gmem_ops[i].args_size, c.flags = GMEM_DECODE_STRICT;
		} else if (i < 2 * _GMEM_OP_MAX) {
			const struct gmem_op_desc *d = &gmem_ops[i - _GMEM_OP_MAX];
			snprintf(c.name, sizeof(c.name), "%s.result", d->name);
			c.fields = d->reply, c.size = d->reply_size;
		} else {
			const struct gmem_wire_event_desc *d = &gmem_events[i - 2 * _GMEM_OP_MAX];
			snprintf(c.name, sizeof(c.name), "event %s", d->name);
			c.fields = d->fields, c.size = d->size;
		}
		bool seen = false;
		for (size_t k = 0; k < n; k++)
			seen |= t[k].fields == c.fields;
		if (seen)
			continue;
		assert_true(n < max);
		t[n++] = c;
	}
	/* The element tables of arrays (refusals, runs, ranges...), decoded as their parent is. */
	for (size_t i = 0; i < n; i++) {
		for (const struct gmem_field *f = t[i].fields; f->name; f++) {
			if (f->type != GMEM_FT_ARRAY)
				continue;
			bool seen = false;
			for (size_t k = 0; k < n; k++)
				seen |= t[k].fields == f->sub;
			if (seen)
				continue;
			assert_true(n < max);
			struct table c = { .fields = f->sub, .size = f->size, .flags = t[i].flags };
			snprintf(c.name, sizeof(c.name), "%.30s.%.14s[]", t[i].name, f->name);
			t[n++] = c;
		}
	}
	return n;
}

/* The FULL example of t as JSON text, with key set to the raw JSON text raw (NULL: key removed). */
static char *example_with(const struct table *t, const char *key, const char *raw)
{
	void *ex = xcalloc(t->size);
	struct json_object *o = NULL;
	char *text;

	fill_example(t->fields, ex, FULL);
	assert_int_equal(gmem_encode(t->fields, ex, &o), 0);
	free(ex); /* examples own nothing (the list reply points at static storage) */
	if (raw)
		json_object_object_add(o, key, json_object_new_string(PLACEHOLDER));
	else
		json_object_object_del(o, key);
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	assert_non_null(s);
	if (raw) {
		const char *p = strstr(s, "\"" PLACEHOLDER "\"");
		assert_non_null(p);
		text = xasprintf("%.*s%s%s", (int)(p - s), s, raw, p + strlen(PLACEHOLDER) + 2);
	} else {
		text = xstrdup(s);
	}
	json_object_put(o);
	return text;
}

/* Parses text (must be valid JSON) and decodes it into a new zeroed struct (*ret, freed by caller). */
static int decode_text(const struct gmem_field *fields, size_t size, const char *text, unsigned flags,
		       void **ret, struct gmem_codec_error *e)
{
	struct json_object *root = parse_str(text);
	void *out = xcalloc(size);

	memset(e, 0, sizeof(*e));
	int r = gmem_decode(fields, root, out, flags, e);
	json_object_put(root);
	*ret = out;
	return r;
}

/* text must fail to decode with want, and when field is set the message must quote it. Nothing is
 * released afterwards on purpose: a failed decode must have freed everything itself. */
static unsigned decode_checks;

static void expect_decode_err(const char *ctx, const struct gmem_field *fields, size_t size, const char *text,
			      unsigned flags, int want, const char *field)
{
	struct gmem_codec_error e;
	void *out;

	decode_checks++;
	int r = decode_text(fields, size, text, flags, &out, &e);

	if (r != want) {
		if (r == 0)
			gmem_fields_release(fields, out);
		free(out);
		fail_msg("%s: decoding %.160s returned %d (%s), want %d", ctx, text, r, r ? e.msg : "ok", want);
	}
	if (e.err != want)
		fail_msg("%s: err->err is %d, want %d", ctx, e.err, want);
	if (field) {
		char q[96];
		snprintf(q, sizeof(q), "'%s'", field);
		if (!has_substr(e.msg, q))
			fail_msg("%s: message \"%s\" does not name %s", ctx, e.msg, q);
	}
	assert_released(fields, out, ctx);
	free(out);
}

/* text must decode; returns the struct (release with release_free). */
static void *expect_decode_ok(const char *ctx, const struct gmem_field *fields, size_t size, const char *text,
			      unsigned flags)
{
	struct gmem_codec_error e;
	void *out;

	decode_checks++;
	int r = decode_text(fields, size, text, flags, &out, &e);

	if (r != 0) {
		free(out);
		fail_msg("%s: decoding %.160s returned %d (%s), want 0", ctx, text, r, e.msg);
	}
	return out;
}

/*
 * A string holding \u0000 is refused (PROTOCOL.md: "Strings are valid UTF-8 with no \u0000"): by
 * gmem_json_parse (-EBADMSG, nothing returned) or, if the parse lets it through, by the decode (-EINVAL
 * naming field).
 */
static void expect_nul_rejected(const char *ctx, const struct gmem_field *fields, size_t size, const char *text,
				unsigned flags, const char *field)
{
	struct json_object *root = SENTINEL;
	struct gmem_codec_error e = { 0 };
	int r = gmem_json_parse(text, strlen(text), &root, &e);

	if (r == 0) {
		json_object_put(root);
		expect_decode_err(ctx, fields, size, text, flags, -EINVAL, field);
		return;
	}
	decode_checks++;
	if (r != -EBADMSG)
		fail_msg("%s: gmem_json_parse(%.160s) returned %d (%s), want 0 or -EBADMSG", ctx, text, r, e.msg);
	assert_int_equal(e.err, -EBADMSG);
	assert_ptr_equal(root, SENTINEL);
}

static void release_free(const struct gmem_field *fields, void *obj)
{
	gmem_fields_release(fields, obj);
	assert_released(fields, obj, "gmem_fields_release");
	free(obj);
}

/* ---------------------------------------------------------------------------------------------- */
/* tables                                                                                           */

static void test_tables(void **state)
{
	(void)state;
	for (int op = 0; op < _GMEM_OP_MAX; op++) {
		const struct gmem_op_desc *d = &gmem_ops[op];
		assert_non_null(d->name);
		assert_non_null(d->args);
		assert_non_null(d->reply);
		assert_true(d->args_size > 0 && d->reply_size > 0);
		assert_int_equal(gmem_op_from_name(d->name), op);
	}
	for (int ev = 0; ev < _GMEM_WIRE_EVENT_MAX; ev++) {
		assert_non_null(gmem_events[ev].name);
		assert_non_null(gmem_events[ev].fields);
		assert_int_equal(gmem_wire_event_from_name(gmem_events[ev].name), ev);
	}
	assert_int_equal(gmem_op_from_name("frobnicate"), GMEM_OP_INVALID);
	assert_int_equal(gmem_op_from_name(""), GMEM_OP_INVALID);
	assert_int_equal(gmem_op_from_name("HELLO"), GMEM_OP_INVALID);
	assert_int_equal(gmem_wire_event_from_name("guest-created"), GMEM_WIRE_EVENT_INVALID);
	size_t nfeat = 0;
	while (gmem_feature_names[nfeat])
		nfeat++;
	assert_true(nfeat >= 2 && nfeat <= GMEM_FLAGS_MAX);
	assert_int_equal(GMEM_FEATURES_ALL, (UINT32_C(1) << nfeat) - 1);
	assert_string_equal(gmem_feature_names[GMEM_FEATURE_BIT_LEASE], "lease");
	assert_string_equal(gmem_feature_names[GMEM_FEATURE_BIT_LIST_PAGES], "list-pages");
}

/* ---------------------------------------------------------------------------------------------- */
/* round trips                                                                                      */

static void roundtrip_request(int op, int variant, uint64_t id)
{
	const struct gmem_op_desc *d = &gmem_ops[op];
	void *args = xcalloc(d->args_size), *out = xcalloc(d->args_size);
	struct gmem_codec_error e = { 0 };
	struct gmem_envelope env;
	char *buf = NULL;
	size_t len = 0;
	char where[64];

	snprintf(where, sizeof(where), "%s.args[%s]", d->name, variant == FULL ? "full" : "minimal");
	fill_example(d->args, args, variant);
	assert_int_equal(gmem_build_request(id, (enum gmem_op)op, args, &buf, &len), 0);
	check_datagram(buf, len);

	struct json_object *root = parse_ok(buf, len);
	if (gmem_envelope_parse_request(root, &env, &e) != 0)
		fail_msg("%s: parse_request: %s", where, e.msg);
	assert_int_equal(env.kind, GMEM_MSG_REQUEST);
	assert_true(env.has_id);
	assert_int_equal(env.id, id);
	assert_string_equal(env.name, d->name);
	assert_int_equal(gmem_op_from_name(env.name), op);
	assert_non_null(env.body);
	if (gmem_decode(d->args, env.body, out, GMEM_DECODE_STRICT, &e) != 0)
		fail_msg("%s: strict decode: %s", where, e.msg);
	assert_fields_equal(d->args, args, out, where);
	if (!has_pointers(d->args))
		assert_memory_equal(args, out, d->args_size);

	release_free(d->args, out);
	json_object_put(root);
	free(buf);
	free(args);
}

static void test_roundtrip_requests(void **state)
{
	static const uint64_t ids[] = { 0, 1, 4242, I64MAX };
	(void)state;

	for (int op = 0; op < _GMEM_OP_MAX; op++)
		for (int variant = FULL; variant <= MINIMAL; variant++)
			for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
				roundtrip_request(op, variant, ids[i]);
}

static void roundtrip_reply(int op, int variant, uint64_t id, unsigned flags)
{
	const struct gmem_op_desc *d = &gmem_ops[op];
	void *reply = xcalloc(d->reply_size), *out = xcalloc(d->reply_size);
	struct gmem_codec_error e = { 0 };
	struct gmem_envelope env;
	char *buf = NULL;
	size_t len = 0;
	char where[64];

	snprintf(where, sizeof(where), "%s.result[%s]", d->name, variant == FULL ? "full" : "minimal");
	fill_example(d->reply, reply, variant);
	assert_int_equal(gmem_build_reply(id, (enum gmem_op)op, reply, &buf, &len), 0);
	check_datagram(buf, len);

	struct json_object *root = parse_ok(buf, len);
	if (gmem_envelope_parse_incoming(root, &env, &e) != 0)
		fail_msg("%s: parse_incoming: %s", where, e.msg);
	assert_int_equal(env.kind, GMEM_MSG_REPLY);
	assert_true(env.has_id);
	assert_int_equal(env.id, id);
	assert_non_null(env.body);
	if (gmem_decode(d->reply, env.body, out, flags, &e) != 0)
		fail_msg("%s: decode: %s", where, e.msg);
	assert_fields_equal(d->reply, reply, out, where);
	if (!has_pointers(d->reply))
		assert_memory_equal(reply, out, d->reply_size);

	release_free(d->reply, out);
	json_object_put(root);
	free(buf);
	free(reply); /* the list example points at static storage */
}

static void test_roundtrip_replies(void **state)
{
	(void)state;
	for (int op = 0; op < _GMEM_OP_MAX; op++)
		for (int variant = FULL; variant <= MINIMAL; variant++) {
			roundtrip_reply(op, variant, 7, 0);
			roundtrip_reply(op, variant, I64MAX, 0);
			/* The daemon sends nothing a strict reader would refuse either. */
			roundtrip_reply(op, variant, 0, GMEM_DECODE_STRICT);
		}
}

/* list pages of several sizes, with and without next, compared element by element */
static void test_roundtrip_list_pages(void **state)
{
	static const size_t sizes[] = { 0, 1, 2, 5, 199, GMEM_LIST_PAGE };
	struct gmem_wire_guest *g = xcalloc(GMEM_LIST_PAGE * sizeof(*g));
	(void)state;

	for (size_t i = 0; i < GMEM_LIST_PAGE; i++)
		g[i] = example_guest((unsigned)i);
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		for (int with_next = 0; with_next <= 1; with_next++) {
			struct gmem_list_reply src = { .guests = g, .n_guests = sizes[s] };
			struct gmem_list_reply got;
			struct gmem_codec_error e = { 0 };
			struct gmem_envelope env;
			char *buf = NULL;
			size_t len;

			src.next = with_next ? 100 + sizes[s] : 0;
			memset(&got, 0, sizeof(got));
			assert_int_equal(gmem_build_reply(3, GMEM_OP_LIST, &src, &buf, &len), 0);
			check_datagram(buf, len);
			struct json_object *root = parse_ok(buf, len);
			assert_int_equal(gmem_envelope_parse_incoming(root, &env, &e), 0);
			assert_int_equal(env.kind, GMEM_MSG_REPLY);
			struct json_object *v = NULL;
			assert_int_equal(json_object_object_get_ex(env.body, "next", &v), with_next);
			assert_true(json_object_object_get_ex(env.body, "guests", &v));
			assert_int_equal(json_object_array_length(v), sizes[s]);

			assert_int_equal(gmem_decode(gmem_list_reply_fields, env.body, &got, 0, &e), 0);
			assert_int_equal(got.n_guests, sizes[s]);
			assert_int_equal(got.next, src.next);
			if (sizes[s] == 0)
				assert_null(got.guests);
			for (size_t i = 0; i < sizes[s]; i++)
				assert_memory_equal(&got.guests[i], &g[i], sizeof(g[i]));
			gmem_fields_release(gmem_list_reply_fields, &got);
			assert_null(got.guests);
			assert_int_equal(got.n_guests, 0);
			json_object_put(root);
			free(buf);
		}
	}
	free(g);
}

static void test_roundtrip_open_reply(void **state)
{
	struct gmem_open_reply src, got;
	struct gmem_codec_error e = { 0 };
	struct gmem_envelope env;
	char *buf = NULL;
	size_t len;
	(void)state;

	memset(&src, 0, sizeof(src));
	memset(&got, 0, sizeof(got));
	src.guest = example_guest(9);
	src.guest.leased = true;
	assert_int_equal(gmem_build_reply(11, GMEM_OP_OPEN, &src, &buf, &len), 0);
	check_datagram(buf, len);
	struct json_object *root = parse_ok(buf, len);
	assert_int_equal(gmem_envelope_parse_incoming(root, &env, &e), 0);

	/* The nested object is on the wire as an object, not flattened. */
	struct json_object *g = NULL, *v = NULL;
	assert_true(json_object_object_get_ex(env.body, "guest", &g));
	assert_true(json_object_is_type(g, json_type_object));
	assert_true(json_object_object_get_ex(g, "name", &v));
	assert_string_equal(json_object_get_string(v), src.guest.name);
	assert_true(json_object_object_get_ex(env.body, "fd", &v));
	assert_int_equal(json_object_get_int64(v), 0);

	assert_int_equal(gmem_decode(gmem_open_reply_fields, env.body, &got, 0, &e), 0);
	assert_memory_equal(&got, &src, sizeof(got));
	gmem_fields_release(gmem_open_reply_fields, &got);
	json_object_put(root);
	free(buf);
}

static void test_roundtrip_events(void **state)
{
	(void)state;
	for (int ev = 0; ev < _GMEM_WIRE_EVENT_MAX; ev++) {
		for (int variant = FULL; variant <= MINIMAL; variant++) {
			const struct gmem_wire_event_desc *d = &gmem_events[ev];
			void *data = xcalloc(d->size), *out = xcalloc(d->size);
			struct gmem_codec_error e = { 0 };
			struct gmem_envelope env;
			char *buf = NULL;
			size_t len;

			fill_example(d->fields, data, variant);
			assert_int_equal(gmem_build_event((enum gmem_wire_event)ev, data, &buf, &len), 0);
			check_datagram(buf, len);
			struct json_object *root = parse_ok(buf, len);
			if (gmem_envelope_parse_incoming(root, &env, &e) != 0)
				fail_msg("event %s: %s", d->name, e.msg);
			assert_int_equal(env.kind, GMEM_MSG_EVENT);
			assert_false(env.has_id);
			assert_string_equal(env.name, d->name);
			assert_int_equal(gmem_wire_event_from_name(env.name), ev);
			assert_non_null(env.body);
			assert_int_equal(gmem_decode(d->fields, env.body, out, 0, &e), 0);
			assert_fields_equal(d->fields, data, out, d->name);
			if (!has_pointers(d->fields))
				assert_memory_equal(data, out, d->size);
			release_free(d->fields, out);
			json_object_put(root);
			free(buf);
			free(data); /* the prepare example points at static storage */
		}
	}

	/* The longest reason the table allows. */
	struct gmem_shutdown_event s, got;
	struct gmem_codec_error e = { 0 };
	struct gmem_envelope env;
	char *buf;
	size_t len;
	memset(&s, 0, sizeof(s));
	memset(&got, 0, sizeof(got));
	memset(s.reason, 'r', GMEM_TEXT_MAX - 1);
	assert_int_equal(gmem_build_event(GMEM_WIRE_EVENT_SHUTDOWN, &s, &buf, &len), 0);
	struct json_object *root = parse_ok(buf, len);
	assert_int_equal(gmem_envelope_parse_incoming(root, &env, &e), 0);
	assert_int_equal(gmem_decode(gmem_shutdown_event_fields, env.body, &got, 0, &e), 0);
	assert_memory_equal(&s, &got, sizeof(s));
	json_object_put(root);
	free(buf);
}

static bool body_has(const char *datagram, const char *body_key, const char *key)
{
	struct json_object *root = parse_str(datagram), *body = NULL;
	assert_true(json_object_object_get_ex(root, body_key, &body));
	bool r = json_object_object_get_ex(body, key, NULL);
	json_object_put(root);
	return r;
}

/* GMEM_F_OMIT_EMPTY fields vanish when empty; the others are always sent. */
static void test_omit_empty(void **state)
{
	char *buf;
	size_t len;
	(void)state;

	struct gmem_hello_args h = { .version = 1, .role = GMEM_ROLE_VMM };
	assert_int_equal(gmem_build_request(1, GMEM_OP_HELLO, &h, &buf, &len), 0);
	assert_false(body_has(buf, "args", "client_name"));
	assert_true(body_has(buf, "args", "features")); /* not omit-empty: [] */
	free(buf);
	strcpy(h.client_name, "x");
	assert_int_equal(gmem_build_request(1, GMEM_OP_HELLO, &h, &buf, &len), 0);
	assert_true(body_has(buf, "args", "client_name"));
	free(buf);

	struct gmem_create_args c = { .name = "c", .size = 4096 };
	assert_int_equal(gmem_build_request(1, GMEM_OP_CREATE, &c, &buf, &len), 0);
	assert_false(body_has(buf, "args", "granule"));
	free(buf);

	struct gmem_list_args l = { .after = 0 };
	assert_int_equal(gmem_build_request(1, GMEM_OP_LIST, &l, &buf, &len), 0);
	assert_false(body_has(buf, "args", "after"));
	free(buf);

	struct gmem_list_reply lr = { .guests = NULL, .n_guests = 0, .next = 0 };
	assert_int_equal(gmem_build_reply(1, GMEM_OP_LIST, &lr, &buf, &len), 0);
	assert_false(body_has(buf, "result", "next"));
	assert_true(body_has(buf, "result", "guests"));
	free(buf);

	struct gmem_status_reply st;
	memset(&st, 0, sizeof(st));
	assert_int_equal(gmem_build_reply(1, GMEM_OP_STATUS, &st, &buf, &len), 0);
	for (const struct gmem_field *f = gmem_status_reply_fields; f->name; f++)
		if (!(f->flags & GMEM_F_OMIT_EMPTY)) /* nodes: only where the backend has them */
			assert_true(body_has(buf, "result", f->name));
	free(buf);

	/* Conversions. */
	struct gmem_wire_range rg = { .offset = 0, .length = 4096 };
	struct gmem_convert_args ca = { .name = "c", .ranges = &rg, .n_ranges = 1, .target = GMEM_SHARED };
	assert_int_equal(gmem_build_request(1, GMEM_OP_CONVERT, &ca, &buf, &len), 0);
	assert_true(body_has(buf, "args", "target")); /* required: sent even as "shared" (0) */
	assert_false(body_has(buf, "args", "content"));
	assert_false(body_has(buf, "args", "force"));
	free(buf);
	ca.n_ranges = 0;
	assert_int_equal(gmem_build_request(1, GMEM_OP_CONVERT, &ca, &buf, &len), 0);
	assert_true(body_has(buf, "args", "ranges")); /* required: sent even empty */
	free(buf);

	struct gmem_convert_reply cr;
	memset(&cr, 0, sizeof(cr));
	assert_int_equal(gmem_build_reply(1, GMEM_OP_CONVERT, &cr, &buf, &len), 0);
	assert_false(body_has(buf, "result", "refusals"));
	assert_false(body_has(buf, "result", "unverified"));
	static const char *const cr_always[] = { "epoch", "seq", "outcome", "changed", "participants", "latency_us" };
	for (size_t i = 0; i < sizeof(cr_always) / sizeof(cr_always[0]); i++)
		assert_true(body_has(buf, "result", cr_always[i]));
	free(buf);

	struct gmem_vote_args va = { .seq = 1 };
	assert_int_equal(gmem_build_request(1, GMEM_OP_VOTE, &va, &buf, &len), 0);
	assert_true(body_has(buf, "args", "epoch"));
	assert_true(body_has(buf, "args", "vote"));
	assert_false(body_has(buf, "args", "errno"));
	assert_false(body_has(buf, "args", "reason"));
	free(buf);

	struct gmem_map_args ma = { .name = "m" };
	assert_int_equal(gmem_build_request(1, GMEM_OP_MAP, &ma, &buf, &len), 0);
	assert_false(body_has(buf, "args", "offset"));
	free(buf);
	struct gmem_map_reply mr;
	memset(&mr, 0, sizeof(mr));
	assert_int_equal(gmem_build_reply(1, GMEM_OP_MAP, &mr, &buf, &len), 0);
	assert_true(body_has(buf, "result", "runs"));
	assert_true(body_has(buf, "result", "shared_bytes"));
	assert_false(body_has(buf, "result", "next"));
	free(buf);

	struct gmem_prepare_event pe = { .seq = 1, .guest = "g" };
	assert_int_equal(gmem_build_event(GMEM_WIRE_EVENT_PREPARE, &pe, &buf, &len), 0);
	assert_true(body_has(buf, "data", "content")); /* not omit-empty: "preserve" */
	assert_true(body_has(buf, "data", "ranges"));
	free(buf);
	struct gmem_watch_event we = { .seq = 1, .guest = "g" };
	assert_int_equal(gmem_build_event(GMEM_WIRE_EVENT_CONVERSION, &we, &buf, &len), 0);
	assert_true(body_has(buf, "data", "bytes"));
	assert_false(body_has(buf, "data", "latency_us"));
	assert_false(body_has(buf, "data", "requester_pid"));
	free(buf);
}

/* The exact bytes of a few datagrams (PROTOCOL.md, "Messages"). */
static void test_wire_format(void **state)
{
	char *buf;
	size_t len;
	(void)state;

	struct gmem_status_args sa = { 0 };
	assert_int_equal(gmem_build_request(1, GMEM_OP_STATUS, &sa, &buf, &len), 0);
	assert_string_equal(buf, "{\"id\":1,\"op\":\"status\",\"args\":{}}");
	free(buf);

	struct gmem_detach_args da = { .id = 5 };
	assert_int_equal(gmem_build_request(I64MAX, GMEM_OP_DETACH, &da, &buf, &len), 0);
	assert_string_equal(buf, "{\"id\":9223372036854775807,\"op\":\"detach\",\"args\":{\"id\":5}}");
	free(buf);

	struct gmem_attach_reply ar = { .id = 3 };
	assert_int_equal(gmem_build_reply(5, GMEM_OP_ATTACH, &ar, &buf, &len), 0);
	assert_string_equal(buf, "{\"id\":5,\"result\":{\"id\":3}}");
	free(buf);

	assert_int_equal(gmem_build_error(false, 0, -ENOENT, "gone", &buf, &len), 0);
	assert_string_equal(buf, "{\"id\":null,\"error\":{\"errno\":\"ENOENT\",\"message\":\"gone\"}}");
	free(buf);

	struct gmem_guest_event ge = { .name = "vm1" };
	assert_int_equal(gmem_build_event(GMEM_WIRE_EVENT_GUEST_DESTROYED, &ge, &buf, &len), 0);
	assert_string_equal(buf, "{\"event\":\"guest-destroyed\",\"data\":{\"name\":\"vm1\"}}");
	free(buf);

	struct gmem_wire_range rg[2] = { { .offset = 0, .length = 4096 }, { .offset = 8192, .length = 2097152 } };
	struct gmem_convert_args ca = { .name = "vm1", .ranges = rg, .n_ranges = 2, .target = GMEM_PRIVATE, .content = 1 };
	assert_int_equal(gmem_build_request(2, GMEM_OP_CONVERT, &ca, &buf, &len), 0);
	assert_string_equal(buf, "{\"id\":2,\"op\":\"convert\",\"args\":{\"name\":\"vm1\",\"ranges\":[{\"offset\":0,"
				 "\"length\":4096},{\"offset\":8192,\"length\":2097152}],\"target\":\"private\","
				 "\"content\":\"zero\"}}");
	free(buf);

	struct gmem_ack_args aa = { .epoch = 3, .seq = 9 };
	assert_int_equal(gmem_build_request(4, GMEM_OP_ACK, &aa, &buf, &len), 0);
	assert_string_equal(buf, "{\"id\":4,\"op\":\"ack\",\"args\":{\"epoch\":3,\"seq\":9}}");
	free(buf);

	struct gmem_commit_event ce = { .epoch = 3, .seq = 9, .guest = "vm1", .wave = 2 };
	assert_int_equal(gmem_build_event(GMEM_WIRE_EVENT_COMMIT, &ce, &buf, &len), 0);
	assert_string_equal(buf, "{\"event\":\"commit\",\"data\":{\"epoch\":3,\"seq\":9,\"guest\":\"vm1\",\"wave\":2}}");
	free(buf);
}

/* ---------------------------------------------------------------------------------------------- */
/* errors                                                                                           */

static void parse_error_datagram(const char *buf, size_t len, struct json_object **root, struct gmem_envelope *env)
{
	struct gmem_codec_error e = { 0 };

	check_datagram(buf, len);
	*root = parse_ok(buf, len);
	if (gmem_envelope_parse_incoming(*root, env, &e) != 0)
		fail_msg("error datagram %s: %s", buf, e.msg);
	assert_int_equal(env->kind, GMEM_MSG_ERROR);
	assert_null(env->body);
}

static void test_error_roundtrip(void **state)
{
	struct json_object *root;
	struct gmem_envelope env;
	char *buf;
	size_t len;
	(void)state;

	/* With an id, negative errno. */
	assert_int_equal(gmem_build_error(true, 42, -ENOENT, "no guest 'vm1'", &buf, &len), 0);
	parse_error_datagram(buf, len, &root, &env);
	assert_true(env.has_id);
	assert_int_equal(env.id, 42);
	assert_int_equal(env.err, ENOENT);
	assert_string_equal(env.err_name, "ENOENT");
	assert_string_equal(env.message, "no guest 'vm1'");
	json_object_put(root);
	free(buf);

	/* Without an id: "id": null, and a positive errno works the same. */
	assert_int_equal(gmem_build_error(false, 99, EBADMSG, "bad", &buf, &len), 0);
	parse_error_datagram(buf, len, &root, &env);
	assert_false(env.has_id);
	struct json_object *id = SENTINEL;
	assert_true(json_object_object_get_ex(root, "id", &id));
	assert_null(id);
	assert_int_equal(env.err, EBADMSG);
	assert_string_equal(env.message, "bad");
	json_object_put(root);
	free(buf);

	/* id 0 and the largest id. */
	assert_int_equal(gmem_build_error(true, 0, -EINVAL, "", &buf, &len), 0);
	parse_error_datagram(buf, len, &root, &env);
	assert_true(env.has_id);
	assert_int_equal(env.id, 0);
	assert_string_equal(env.message, "");
	json_object_put(root);
	free(buf);
	assert_int_equal(gmem_build_error(true, I64MAX, -EINVAL, NULL, &buf, &len), 0);
	parse_error_datagram(buf, len, &root, &env);
	assert_int_equal(env.id, I64MAX);
	assert_string_equal(env.message, ""); /* NULL message: "" */
	json_object_put(root);
	free(buf);

	/* A message with everything JSON escapes comes back byte for byte. */
	assert_int_equal(gmem_build_error(true, 1, -EIO, tricky_text, &buf, &len), 0);
	parse_error_datagram(buf, len, &root, &env);
	assert_string_equal(env.message, tricky_text);
	json_object_put(root);
	free(buf);

	/* An errno outside the table goes out as EIO. */
	assert_null(gmem_errno_name(4000));
	assert_int_equal(gmem_build_error(true, 2, -4000, "odd", &buf, &len), 0);
	parse_error_datagram(buf, len, &root, &env);
	assert_string_equal(env.err_name, "EIO");
	assert_int_equal(env.err, EIO);
	assert_string_equal(env.message, "odd");
	json_object_put(root);
	free(buf);
}

/* Every errno with a name maps back to itself through the wire. */
static void test_error_all_errnos(void **state)
{
	int named = 0;
	(void)state;

	for (int err = 1; err < 4096; err++) {
		const char *name = gmem_errno_name(err);
		struct json_object *root;
		struct gmem_envelope env;
		char *buf;
		size_t len;

		assert_ptr_equal(gmem_errno_name(-err), name);
		if (!name)
			continue;
		named++;
		assert_int_equal(gmem_errno_from_name(name), err);
		assert_int_equal(gmem_build_error(true, (uint64_t)err, -err, name, &buf, &len), 0);
		parse_error_datagram(buf, len, &root, &env);
		assert_int_equal(env.id, err);
		if (env.err != err)
			fail_msg("errno %d (%s) came back as %d (%s)", err, name, env.err, env.err_name);
		assert_string_equal(env.err_name, name);
		assert_string_equal(env.message, name);
		json_object_put(root);
		free(buf);
	}
	assert_true(named > 50);
	assert_int_equal(gmem_errno_from_name("ENOSUCHTHING"), 0);
	assert_int_equal(gmem_errno_from_name(""), 0);
	assert_int_equal(gmem_errno_from_name(NULL), 0);
	assert_int_equal(gmem_errno_from_name("enoent"), 0);
}

/* Messages are capped at GMEM_TEXT_MAX - 1 bytes, cut at a character boundary, for every character
 * width and every alignment of the cut. */
static void test_error_message_cut_utf8(void **state)
{
	static const char *const chars[] = { "a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80" };
	(void)state;

	for (size_t w = 0; w < 4; w++) {
		for (size_t pre = 0; pre < 4; pre++) {
			char *body = repeat(chars[w], 400);
			char *msg = xasprintf("%.*s%s", (int)pre, "xyz", body);
			struct json_object *root;
			struct gmem_envelope env;
			char *buf;
			size_t len;

			assert_true(strlen(msg) > GMEM_TEXT_MAX);
			assert_int_equal(gmem_build_error(true, 1, -EINVAL, msg, &buf, &len), 0);
			parse_error_datagram(buf, len, &root, &env);
			size_t n = strlen(env.message);
			if (n > GMEM_TEXT_MAX - 1 || n < GMEM_TEXT_MAX - (w + 1))
				fail_msg("width %zu, prefix %zu: message cut to %zu bytes", w + 1, pre, n);
			assert_memory_equal(env.message, msg, n);
			if (!utf8_valid(env.message, n))
				fail_msg("width %zu, prefix %zu: cut inside a character", w + 1, pre);
			json_object_put(root);
			free(buf);
			free(msg);
			free(body);
		}
	}

	/* At and just over the cap, in ASCII. */
	char *m255 = repeat("m", GMEM_TEXT_MAX - 1), *m256 = repeat("m", GMEM_TEXT_MAX);
	struct json_object *root;
	struct gmem_envelope env;
	char *buf;
	size_t len;
	assert_int_equal(gmem_build_error(true, 1, -EINVAL, m255, &buf, &len), 0);
	parse_error_datagram(buf, len, &root, &env);
	assert_string_equal(env.message, m255);
	json_object_put(root);
	free(buf);
	assert_int_equal(gmem_build_error(true, 1, -EINVAL, m256, &buf, &len), 0);
	parse_error_datagram(buf, len, &root, &env);
	assert_string_equal(env.message, m255);
	json_object_put(root);
	free(buf);
	free(m255);
	free(m256);

	/* Any message fits in a datagram, even one of 200 KiB of characters JSON escapes. */
	char *huge = repeat("\x01\"", 100 * 1024);
	assert_int_equal(gmem_build_error(true, 1, -EINVAL, huge, &buf, &len), 0);
	check_datagram(buf, len);
	free(buf);
	free(huge);
}

static void test_utf8_copy(void **state)
{
	static const struct {
		const char *src;
		size_t size;
		const char *want;
	} cases[] = {
		{ "", 1, "" },
		{ "abc", 1, "" },
		{ "abc", 3, "ab" },
		{ "abc", 4, "abc" },
		{ "abc", 16, "abc" },
		{ "\xc3\xa9", 2, "" },
		{ "\xc3\xa9", 3, "\xc3\xa9" },
		{ "a\xc3\xa9", 3, "a" },
		{ "\xe2\x82\xac\xe2\x82\xac", 4, "\xe2\x82\xac" },
		{ "\xe2\x82\xac\xe2\x82\xac", 6, "\xe2\x82\xac" },
		{ "\xe2\x82\xac\xe2\x82\xac", 7, "\xe2\x82\xac\xe2\x82\xac" },
		{ "ab\xe2\x82\xac", 5, "ab" },
		{ "\xf0\x9f\x98\x80x", 4, "" },
		{ "\xf0\x9f\x98\x80x", 5, "\xf0\x9f\x98\x80" },
		{ "\xf0\x9f\x98\x80x", 6, "\xf0\x9f\x98\x80x" },
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char dst[32];
		memset(dst, 'Z', sizeof(dst));
		gmem_utf8_copy(dst, cases[i].size, cases[i].src);
		if (strcmp(dst, cases[i].want) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, dst, cases[i].want);
		for (size_t k = cases[i].size; k < sizeof(dst); k++)
			assert_int_equal(dst[k], 'Z'); /* nothing written past size */
	}
}

/* ---------------------------------------------------------------------------------------------- */
/* decode rejections, table-driven                                                                  */

static const char *const u64_wrong_type[] = {
	"\"1\"", "\"\"", "true", "false", "null", "[]", "[1]", "{}", "1.0", "0.0", "-0.0", "1e3", "1E3", "1e0",
	"0.5", "-1.0", "1e400", "NaN", "Infinity", "-Infinity", NULL,
};
/* json-c clamps: 2^64 and beyond arrive as UINT64_MAX, below -2^63 as INT64_MIN; all must be ERANGE. */
static const char *const u64_out_of_range[] = {
	"-1", "-4096", "-9223372036854775807", "-9223372036854775808", "-9223372036854775809",
	"-99999999999999999999999", "9223372036854775808", "9223372036854775809", "18446744073709551615",
	"18446744073709551616", "36893488147419103232", "99999999999999999999999999999", NULL,
};
static const char *const bool_wrong_type[] = {
	"1", "0", "\"true\"", "\"false\"", "\"\"", "null", "[]", "[true]", "{}", "1.0", NULL,
};
static const char *const string_wrong_type[] = {
	"1", "0", "1.5", "true", "false", "null", "[]", "[\"x\"]", "{}", "{\"x\":\"y\"}", NULL,
};
static const char *const string_with_nul[] = {
	"\"\\u0000\"", "\"a\\u0000\"", "\"a\\u0000b\"", "\"\\u0000abc\"", NULL,
};
static const char *const flags_wrong[] = {
	"1", "true", "null", "{}", "[1]", "[null]", "[true]", "[1.5]", "[[]]", "[{}]", "[[\"lease\"]]", NULL,
};
static const char *const array_wrong_type[] = { "{}", "1", "\"x\"", "null", "true", "{\"0\":{}}", NULL };
static const char *const array_wrong_elem[] = { "[1]", "[\"x\"]", "[[]]", "[true]", "[{}, 1]", "[{},[]]", NULL };
static const char *const object_wrong_type[] = { "[]", "[{}]", "1", "\"x\"", "null", "true", NULL };

struct field_ctx {
	const struct table *t;
	const struct gmem_field *f;
};

static void reject(const struct field_ctx *c, const char *raw, int want, bool named)
{
	char ctx[128];
	char *text = example_with(c->t, c->f->name, raw);

	snprintf(ctx, sizeof(ctx), "%s: '%s' = %.40s", c->t->name, c->f->name, raw);
	expect_decode_err(ctx, c->t->fields, c->t->size, text, c->t->flags, want, named ? c->f->name : NULL);
	free(text);
}

static void reject_all(const struct field_ctx *c, const char *const *raws, int want)
{
	for (size_t i = 0; raws[i]; i++)
		reject(c, raws[i], want, true);
}

/* raw must decode; returns the decoded struct. */
static void *accept(const struct field_ctx *c, const char *raw)
{
	char ctx[128];
	char *text = example_with(c->t, c->f->name, raw);

	snprintf(ctx, sizeof(ctx), "%s: '%s' = %.40s", c->t->name, c->f->name, raw);
	void *out = expect_decode_ok(ctx, c->t->fields, c->t->size, text, c->t->flags);
	free(text);
	return out;
}

static const void *member(const struct field_ctx *c, const void *obj)
{
	return (const char *)obj + c->f->offset;
}

static void accept_u64(const struct field_ctx *c, uint64_t v)
{
	char *raw = xasprintf("%ju", (uintmax_t)v);
	void *out = accept(c, raw);
	if (*(const uint64_t *)member(c, out) != v)
		fail_msg("%s: '%s' = %s decoded as %ju", c->t->name, c->f->name, raw,
			 (uintmax_t) * (const uint64_t *)member(c, out));
	release_free(c->t->fields, out);
	free(raw);
}

static void accept_string(const struct field_ctx *c, const char *raw, const char *want)
{
	void *out = accept(c, raw);
	if (strcmp(member(c, out), want) != 0)
		fail_msg("%s: '%s' = %.40s decoded as \"%s\"", c->t->name, c->f->name, raw,
			 (const char *)member(c, out));
	release_free(c->t->fields, out);
}

static char *json_string_of(const char *unit, size_t n)
{
	char *body = repeat(unit, n);
	char *s = xasprintf("\"%s\"", body);
	free(body);
	return s;
}

/* A JSON array of n copies of elem. */
static char *json_array_of(const char *elem, size_t n)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *fp = open_memstream(&buf, &size);

	assert_non_null(fp);
	fputc('[', fp);
	for (size_t i = 0; i < n; i++)
		fprintf(fp, "%s%s", i ? "," : "", elem);
	fputc(']', fp);
	assert_int_equal(fclose(fp), 0);
	return buf;
}

static void check_u64_field(const struct field_ctx *c)
{
	const struct gmem_field *f = c->f;

	reject_all(c, u64_wrong_type, -EINVAL);
	reject_all(c, u64_out_of_range, -ERANGE);
	assert_true(f->max <= GMEM_INT_MAX); /* so 2^63 above is always out of range */
	accept_u64(c, f->min);
	accept_u64(c, f->max);
	if (f->min > 0) {
		char *raw = xasprintf("%ju", (uintmax_t)(f->min - 1));
		reject(c, raw, -ERANGE, true);
		free(raw);
	}
	if (f->max < GMEM_INT_MAX) {
		char *raw = xasprintf("%ju", (uintmax_t)(f->max + 1));
		reject(c, raw, -ERANGE, true);
		free(raw);
		raw = xasprintf("%ju", (uintmax_t)GMEM_INT_MAX);
		reject(c, raw, -ERANGE, true);
		free(raw);
	}
}

static void check_bool_field(const struct field_ctx *c)
{
	reject_all(c, bool_wrong_type, -EINVAL);
	for (int v = 0; v <= 1; v++) {
		void *out = accept(c, v ? "true" : "false");
		assert_int_equal(*(const bool *)member(c, out), v);
		release_free(c->t->fields, out);
	}
}

static void check_string_field(const struct field_ctx *c)
{
	const struct gmem_field *f = c->f;
	char *raw;

	reject_all(c, string_wrong_type, -EINVAL);
	for (size_t i = 0; string_with_nul[i]; i++) {
		char ctx[128];
		raw = example_with(c->t, f->name, string_with_nul[i]);
		snprintf(ctx, sizeof(ctx), "%.48s: '%.24s' = %.40s", c->t->name, f->name, string_with_nul[i]);
		expect_nul_rejected(ctx, c->t->fields, c->t->size, raw, c->t->flags, f->name);
		free(raw);
	}

	/* Length in bytes after unescaping, against the buffer size. */
	char *want = repeat("x", f->size - 1);
	raw = json_string_of("x", f->size - 1);
	accept_string(c, raw, want);
	free(raw);
	raw = json_string_of("\\u0078", f->size - 1); /* escaped 'x': long text, short string */
	accept_string(c, raw, want);
	free(raw);
	free(want);
	raw = json_string_of("x", f->size);
	reject(c, raw, -ENAMETOOLONG, true);
	free(raw);
	raw = json_string_of("x", f->size + 1000);
	reject(c, raw, -ENAMETOOLONG, true);
	free(raw);
	/* Multi-byte characters count as their bytes. */
	want = repeat("\xc3\xa9", (f->size - 1) / 2);
	raw = json_string_of("\xc3\xa9", (f->size - 1) / 2);
	accept_string(c, raw, want);
	free(raw);
	raw = json_string_of("\\u00e9", (f->size - 1) / 2);
	accept_string(c, raw, want);
	free(raw);
	free(want);
	raw = json_string_of("\xc3\xa9", (f->size + 1) / 2);
	reject(c, raw, -ENAMETOOLONG, true);
	free(raw);
	raw = json_string_of("\xe2\x82\xac", f->size / 3 + 1);
	reject(c, raw, -ENAMETOOLONG, true);
	free(raw);

	/* The minimum length. */
	if (f->min > 0) {
		reject(c, "\"\"", -EINVAL, true);
		raw = json_string_of("y", f->min);
		char *w = repeat("y", f->min);
		accept_string(c, raw, w);
		free(w);
		free(raw);
		if (f->min > 1) {
			raw = json_string_of("y", f->min - 1);
			reject(c, raw, -EINVAL, true);
			free(raw);
		}
	} else {
		accept_string(c, "\"\"", "");
	}
}

static void check_enum_field(const struct field_ctx *c)
{
	const char *const *names = c->f->names;
	char *raw;

	reject_all(c, string_wrong_type, -EINVAL);
	raw = xasprintf("[\"%s\"]", names[0]);
	reject(c, raw, -EINVAL, true);
	free(raw);
	static const char *const unknown[] = { "\"\"", "\"bogus\"", NULL };
	reject_all(c, unknown, -EINVAL);
	char upper[64];
	snprintf(upper, sizeof(upper), "\"%s\"", names[0]);
	for (char *p = upper; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	reject(c, upper, -EINVAL, true);
	raw = xasprintf("\" %s\"", names[0]);
	reject(c, raw, -EINVAL, true);
	free(raw);
	raw = xasprintf("\"%sx\"", names[0]);
	reject(c, raw, -EINVAL, true);
	free(raw);

	for (int i = 0; names[i]; i++) {
		raw = xasprintf("\"%s\"", names[i]);
		void *out = accept(c, raw);
		assert_int_equal(*(const int *)member(c, out), i);
		release_free(c->t->fields, out);
		free(raw);
	}
}

static uint32_t decode_flags(const struct field_ctx *c, const char *raw)
{
	void *out = accept(c, raw);
	uint32_t bits = *(const uint32_t *)member(c, out);
	release_free(c->t->fields, out);
	return bits;
}

static void check_flags_field(const struct field_ctx *c)
{
	const char *const *names = c->f->names;
	size_t n = 0;
	char *raw;

	while (names[n])
		n++;
	assert_true(n >= 1 && n <= 32);
	reject_all(c, flags_wrong, -EINVAL);
	raw = xasprintf("\"%s\"", names[0]); /* a string, not an array of one */
	reject(c, raw, -EINVAL, true);
	free(raw);
	raw = xasprintf("[\"%s\",1]", names[0]);
	reject(c, raw, -EINVAL, true);
	free(raw);
	raw = xasprintf("[\"%s\",null]", names[0]);
	reject(c, raw, -EINVAL, true);
	free(raw);
	raw = json_array_of("\"unknown-feature\"", GMEM_FLAGS_MAX + 1);
	reject(c, raw, -E2BIG, true);
	free(raw);

	/* Unknown names are skipped, known ones set their bit. */
	assert_int_equal(decode_flags(c, "[]"), 0);
	raw = json_array_of("\"unknown-feature\"", GMEM_FLAGS_MAX);
	assert_int_equal(decode_flags(c, raw), 0);
	free(raw);
	assert_int_equal(decode_flags(c, "[\"bogus\",\"\",\"LEASE\"]"), 0);
	for (size_t i = 0; i < n; i++) {
		raw = xasprintf("[\"zz-new\",\"%s\",\"%s\",\"zz-newer\"]", names[i], names[i]);
		assert_int_equal(decode_flags(c, raw), UINT32_C(1) << i);
		free(raw);
	}
	char *buf = NULL;
	size_t size = 0;
	FILE *fp = open_memstream(&buf, &size);
	assert_non_null(fp);
	fputs("[\"first-unknown\"", fp);
	for (size_t i = n; i-- > 0;)
		fprintf(fp, ",\"%s\",\"unknown-%zu\"", names[i], i);
	fputc(']', fp);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(decode_flags(c, buf), (n == 32 ? UINT32_MAX : (UINT32_C(1) << n) - 1));
	free(buf);
}

/* One valid element of the array field f as JSON text (malloc'd): "{}" when its table requires nothing,
 * else the element table's FULL example. */
static char *example_element(const struct gmem_field *f)
{
	if (!has_required(f->sub))
		return xstrdup("{}");
	void *e = xcalloc(f->size);
	struct json_object *o = NULL;
	fill_example(f->sub, e, FULL);
	assert_int_equal(gmem_encode(f->sub, e, &o), 0);
	free(e);
	char *s = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

static void check_array_field(const struct field_ctx *c)
{
	const struct gmem_field *f = c->f;
	char *raw;

	reject_all(c, array_wrong_type, -EINVAL);
	for (size_t i = 0; array_wrong_elem[i]; i++)
		reject(c, array_wrong_elem[i], -EINVAL, false);
	void *out = accept(c, "[]");
	assert_null(*(void *const *)member(c, out));
	assert_int_equal(*(const size_t *)((const char *)out + f->count_offset), 0);
	release_free(c->t->fields, out);

	char *elem = example_element(f);
	/* A bad element after good ones: those are freed (LeakSanitizer checks). */
	raw = xasprintf("[%s,%s,7]", elem, elem);
	reject(c, raw, -EINVAL, false);
	free(raw);
	raw = xasprintf("[%s,null]", elem);
	reject(c, raw, -EINVAL, false);
	free(raw);
	raw = xasprintf("[%s,{\"zz_unknown\":1}]", elem);
	if (c->t->flags & GMEM_DECODE_STRICT) { /* strictness reaches into elements */
		reject(c, raw, -EINVAL, false);
	} else if (!has_required(f->sub)) {
		out = accept(c, raw);
		assert_int_equal(*(const size_t *)((const char *)out + f->count_offset), 2);
		release_free(c->t->fields, out);
	}
	free(raw);
	if (has_required(f->sub)) { /* an element without a required key, named */
		for (const struct gmem_field *sf = f->sub; sf->name; sf++) {
			if (!(sf->flags & GMEM_F_REQUIRED))
				continue;
			struct json_object *o = parse_str(elem);
			json_object_object_del(o, sf->name);
			raw = xasprintf("[%s,%s]", elem, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
			json_object_put(o);
			char ctx[128];
			char *text = example_with(c->t, f->name, raw);
			snprintf(ctx, sizeof(ctx), "%.48s: '%.24s' element without '%.24s'", c->t->name, f->name,
				 sf->name);
			expect_decode_err(ctx, c->t->fields, c->t->size, text, c->t->flags, -EINVAL, sf->name);
			free(text);
			free(raw);
		}
	}

	/* The element count: max fits, one more is E2BIG naming the array. */
	raw = json_array_of(elem, f->max + 1);
	reject(c, raw, -E2BIG, true);
	free(raw);
	raw = json_array_of(elem, f->max + 1000);
	reject(c, raw, -E2BIG, true);
	free(raw);
	raw = json_array_of(elem, f->max);
	out = accept(c, raw);
	assert_int_equal(*(const size_t *)((const char *)out + f->count_offset), f->max);
	assert_non_null(*(void *const *)member(c, out));
	release_free(c->t->fields, out);
	free(raw);
	free(elem);
}

static void check_object_field(const struct field_ctx *c)
{
	reject_all(c, object_wrong_type, -EINVAL);
	if (!has_required(c->f->sub)) {
		void *out = accept(c, "{}");
		release_free(c->t->fields, out);
	}
}

static void check_table(const struct table *t)
{
	char ctx[128];
	char *text;

	/* The example itself decodes, strictly and leniently. */
	text = example_with(t, "zz-not-there", NULL);
	snprintf(ctx, sizeof(ctx), "%.48s: example", t->name);
	release_free(t->fields, expect_decode_ok(ctx, t->fields, t->size, text, GMEM_DECODE_STRICT));
	release_free(t->fields, expect_decode_ok(ctx, t->fields, t->size, text, 0));
	free(text);

	/* An unknown key: EINVAL naming it when strict, skipped when lenient. */
	text = example_with(t, "zz_unknown", "{\"deep\":[1,2]}");
	snprintf(ctx, sizeof(ctx), "%.48s: unknown key", t->name);
	expect_decode_err(ctx, t->fields, t->size, text, GMEM_DECODE_STRICT, -EINVAL, "zz_unknown");
	release_free(t->fields, expect_decode_ok(ctx, t->fields, t->size, text, 0));
	free(text);

	for (const struct gmem_field *f = t->fields; f->name; f++) {
		struct field_ctx c = { .t = t, .f = f };

		/* Missing: EINVAL naming it when required; otherwise the default stays. */
		text = example_with(t, f->name, NULL);
		snprintf(ctx, sizeof(ctx), "%.48s: without '%.40s'", t->name, f->name);
		if (f->flags & GMEM_F_REQUIRED) {
			expect_decode_err(ctx, t->fields, t->size, text, t->flags, -EINVAL, f->name);
			struct gmem_codec_error e;
			void *out;
			assert_int_equal(decode_text(t->fields, t->size, text, t->flags, &out, &e), -EINVAL);
			assert_true(has_substr(e.msg, "missing"));
			free(out);
		} else {
			release_free(t->fields, expect_decode_ok(ctx, t->fields, t->size, text, t->flags));
		}
		free(text);

		switch (f->type) {
		case GMEM_FT_U64:
			check_u64_field(&c);
			break;
		case GMEM_FT_BOOL:
			check_bool_field(&c);
			break;
		case GMEM_FT_STRING:
			check_string_field(&c);
			break;
		case GMEM_FT_ENUM:
			check_enum_field(&c);
			break;
		case GMEM_FT_FLAGS:
			check_flags_field(&c);
			break;
		case GMEM_FT_ARRAY:
			check_array_field(&c);
			break;
		case GMEM_FT_OBJECT:
			check_object_field(&c);
			break;
		}
	}
}

static void test_decode_every_field(void **state)
{
	struct table tables[2 * _GMEM_OP_MAX + _GMEM_WIRE_EVENT_MAX + 16];
	bool seen_type[GMEM_FT_OBJECT + 1] = { false };
	(void)state;

	size_t n = collect_tables(tables, sizeof(tables) / sizeof(tables[0]));
	for (size_t i = 0; i < n; i++) {
		check_table(&tables[i]);
		for (const struct gmem_field *f = tables[i].fields; f->name; f++)
			seen_type[f->type] = true;
	}
	print_message("%zu payload tables, %u decode checks\n", n, decode_checks);
	/* Every field type was exercised by some table. */
	for (int ty = 0; ty <= GMEM_FT_OBJECT; ty++)
		if (!seen_type[ty])
			fail_msg("no table has a field of type %d", ty);
}

/* ---------------------------------------------------------------------------------------------- */
/* decode rejections, by hand                                                                       */

#define ARGS(T) gmem_##T##_fields, sizeof(struct gmem_##T)

static void test_decode_u64(void **state)
{
	(void)state;
	/* The bounds of the tables, spelled out. */
	expect_decode_err("version 0", ARGS(hello_args), "{\"version\":0,\"role\":\"vmm\"}", GMEM_DECODE_STRICT,
			  -ERANGE, "version");
	expect_decode_err("version 65536", ARGS(hello_args), "{\"version\":65536,\"role\":\"vmm\"}",
			  GMEM_DECODE_STRICT, -ERANGE, "version");
	expect_decode_err("size 0", ARGS(create_args), "{\"name\":\"a\",\"size\":0}", GMEM_DECODE_STRICT, -ERANGE,
			  "size");
	expect_decode_err("size 2^62+1", ARGS(create_args), "{\"name\":\"a\",\"size\":4611686018427387905}",
			  GMEM_DECODE_STRICT, -ERANGE, "size");
	expect_decode_err("granule 4095", ARGS(create_args), "{\"name\":\"a\",\"size\":1,\"granule\":4095}",
			  GMEM_DECODE_STRICT, -ERANGE, "granule");
	expect_decode_err("granule 2M+1", ARGS(create_args), "{\"name\":\"a\",\"size\":1,\"granule\":2097153}",
			  GMEM_DECODE_STRICT, -ERANGE, "granule");
	expect_decode_err("detach 0", ARGS(detach_args), "{\"id\":0}", GMEM_DECODE_STRICT, -ERANGE, "id");
	expect_decode_err("attach length 0", ARGS(attach_args),
			  "{\"name\":\"a\",\"offset\":0,\"length\":0,\"kind\":\"mmap\"}", GMEM_DECODE_STRICT, -ERANGE,
			  "length");
	expect_decode_err("open fd 1", ARGS(open_reply), "{\"guest\":{},\"fd\":1}", 0, -ERANGE, "fd");

	/* json-c's clamping must not turn these into a valid value. */
	static const char *const big[] = { "9223372036854775808", "18446744073709551615", "18446744073709551616",
					   "340282366920938463463374607431768211456", "-1",
					   "-9223372036854775808", "-18446744073709551616" };
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
		char *text = xasprintf("{\"after\":%s}", big[i]);
		expect_decode_err(big[i], ARGS(list_args), text, GMEM_DECODE_STRICT, -ERANGE, "after");
		free(text);
	}
	static const char *const floats[] = { "1.0", "1e3", "1E+3", "1e-3", "0.0", "-0.0", "4096.5", "1e400" };
	for (size_t i = 0; i < sizeof(floats) / sizeof(floats[0]); i++) {
		char *text = xasprintf("{\"after\":%s}", floats[i]);
		expect_decode_err(floats[i], ARGS(list_args), text, GMEM_DECODE_STRICT, -EINVAL, "after");
		free(text);
	}

	struct gmem_list_args *l = expect_decode_ok("max", ARGS(list_args), "{\"after\":9223372036854775807}", 0);
	assert_int_equal(l->after, I64MAX);
	free(l);

	/* Conversions. */
	expect_decode_err("vote seq 0", ARGS(vote_args), "{\"epoch\":0,\"seq\":0,\"vote\":\"yes\"}",
			  GMEM_DECODE_STRICT, -ERANGE, "seq");
	expect_decode_err("ack seq 0", ARGS(ack_args), "{\"epoch\":0,\"seq\":0}", GMEM_DECODE_STRICT, -ERANGE, "seq");
	expect_decode_err("ack epoch -1", ARGS(ack_args), "{\"epoch\":-1,\"seq\":1}", GMEM_DECODE_STRICT, -ERANGE,
			  "epoch");
	expect_decode_err("wave 0", ARGS(commit_event), "{\"epoch\":0,\"seq\":1,\"guest\":\"g\",\"wave\":0}", 0,
			  -ERANGE, "wave");
	expect_decode_err("wave 4", ARGS(commit_event), "{\"epoch\":0,\"seq\":1,\"guest\":\"g\",\"wave\":4}", 0,
			  -ERANGE, "wave");
	expect_decode_err("map offset 2^62+1", ARGS(map_args), "{\"name\":\"m\",\"offset\":4611686018427387905}",
			  GMEM_DECODE_STRICT, -ERANGE, "offset");
	expect_decode_err("range offset 2^62+1", ARGS(convert_args),
			  "{\"name\":\"c\",\"ranges\":[{\"offset\":4611686018427387905,\"length\":1}],\"target\":\"shared\"}",
			  GMEM_DECODE_STRICT, -ERANGE, "offset");
	expect_decode_err("range length 0", ARGS(convert_args),
			  "{\"name\":\"c\",\"ranges\":[{\"offset\":0,\"length\":0}],\"target\":\"shared\"}",
			  GMEM_DECODE_STRICT, -ERANGE, "length");
	struct gmem_convert_args *ca = expect_decode_ok(
		"range 2^62", ARGS(convert_args),
		"{\"name\":\"c\",\"ranges\":[{\"offset\":4611686018427387904,\"length\":4611686018427387904}],"
		"\"target\":\"shared\"}",
		GMEM_DECODE_STRICT);
	assert_int_equal(ca->n_ranges, 1);
	assert_int_equal(ca->ranges[0].offset, WIRE_SIZE_MAX);
	assert_int_equal(ca->ranges[0].length, WIRE_SIZE_MAX);
	release_free(gmem_convert_args_fields, ca);
}

static void test_decode_strings(void **state)
{
	struct gmem_guest_args *g;
	char *text;
	(void)state;

	g = expect_decode_ok("64", ARGS(guest_args), "{\"name\":\"" "abcdefghijklmnopqrstuvwxyABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-" "\"}",
			     GMEM_DECODE_STRICT);
	assert_string_equal(g->name, name64);
	free(g);
	text = xasprintf("{\"name\":\"%sX\"}", name64);
	expect_decode_err("65", ARGS(guest_args), text, GMEM_DECODE_STRICT, -ENAMETOOLONG, "name");
	free(text);
	expect_decode_err("empty", ARGS(guest_args), "{\"name\":\"\"}", GMEM_DECODE_STRICT, -EINVAL, "name");
	expect_nul_rejected("nul", ARGS(guest_args), "{\"name\":\"vm\\u0000x\"}", GMEM_DECODE_STRICT, "name");
	expect_nul_rejected("only nul", ARGS(guest_args), "{\"name\":\"\\u0000\"}", GMEM_DECODE_STRICT, "name");

	/* Escapes decode; the codec does not judge guest names (gmem_name_valid does). */
	g = expect_decode_ok("escapes", ARGS(guest_args), "{\"name\":\"a\\n\\u00e9\\ud83d\\ude00\\/\\\\\"}",
			     GMEM_DECODE_STRICT);
	assert_string_equal(g->name, "a\n\xc3\xa9\xf0\x9f\x98\x80/\\");
	free(g);

	/* 32 two-byte characters fill 64 bytes; one more does not fit. */
	char *e32 = repeat("\xc3\xa9", 32), *e33 = repeat("\xc3\xa9", 33);
	text = xasprintf("{\"name\":\"%s\"}", e32);
	g = expect_decode_ok("32 e-acute", ARGS(guest_args), text, GMEM_DECODE_STRICT);
	assert_string_equal(g->name, e32);
	free(g);
	free(text);
	text = xasprintf("{\"name\":\"%s\"}", e33);
	expect_decode_err("33 e-acute", ARGS(guest_args), text, GMEM_DECODE_STRICT, -ENAMETOOLONG, "name");
	free(text);
	free(e32);
	free(e33);

	/* char[16] backend: 15 fits, 16 does not. */
	struct gmem_hello_reply *h = expect_decode_ok("backend 15", ARGS(hello_reply),
						      "{\"version\":1,\"backend\":\"123456789012345\"}", 0);
	assert_string_equal(h->backend, "123456789012345");
	free(h);
	expect_decode_err("backend 16", ARGS(hello_reply), "{\"version\":1,\"backend\":\"1234567890123456\"}", 0,
			  -ENAMETOOLONG, "backend");

	/* Conversions: char[32] errno names and GMEM_TEXT_MAX reasons, in a vote and inside a reply's refusals. */
	char *en31 = repeat("E", 31), *en32 = repeat("E", 32);
	char *r255 = repeat("r", GMEM_TEXT_MAX - 1), *r256 = repeat("r", GMEM_TEXT_MAX);
	text = xasprintf("{\"epoch\":1,\"seq\":2,\"vote\":\"no\",\"errno\":\"%s\",\"reason\":\"%s\"}", en31, r255);
	struct gmem_vote_args *v = expect_decode_ok("vote 31/255", ARGS(vote_args), text, GMEM_DECODE_STRICT);
	assert_string_equal(v->err, en31);
	assert_string_equal(v->reason, r255);
	assert_int_equal(v->vote, 1);
	free(v);
	free(text);
	text = xasprintf("{\"epoch\":1,\"seq\":2,\"vote\":\"no\",\"errno\":\"%s\"}", en32);
	expect_decode_err("vote errno 32", ARGS(vote_args), text, GMEM_DECODE_STRICT, -ENAMETOOLONG, "errno");
	free(text);
	text = xasprintf("{\"epoch\":1,\"seq\":2,\"vote\":\"no\",\"reason\":\"%s\"}", r256);
	expect_decode_err("vote reason 256", ARGS(vote_args), text, GMEM_DECODE_STRICT, -ENAMETOOLONG, "reason");
	free(text);
	expect_nul_rejected("vote reason nul", ARGS(vote_args),
			    "{\"epoch\":1,\"seq\":2,\"vote\":\"no\",\"reason\":\"a\\u0000b\"}", GMEM_DECODE_STRICT,
			    "reason");
	text = xasprintf("{\"epoch\":1,\"seq\":2,\"outcome\":\"aborted\",\"refusals\":[{\"client_id\":3,"
			 "\"reason\":\"ok\"},{\"client_id\":4,\"reason\":\"%s\"}]}", r256);
	expect_decode_err("refusal reason 256", ARGS(convert_reply), text, 0, -ENAMETOOLONG, "reason");
	free(text);
	text = xasprintf("{\"epoch\":1,\"seq\":2,\"outcome\":\"aborted\",\"refusals\":[{\"client_name\":\"%sX\"}]}",
			 name64);
	expect_decode_err("refusal client_name 65", ARGS(convert_reply), text, 0, -ENAMETOOLONG, "client_name");
	free(text);
	text = xasprintf("{\"epoch\":1,\"seq\":2,\"outcome\":\"committed-unverified\",\"unverified\":[{\"client_name\":"
			 "\"%s\"},{\"client_name\":\"%sX\"}]}", name64, name64);
	expect_decode_err("party client_name 65", ARGS(convert_reply), text, 0, -ENAMETOOLONG, "client_name");
	free(text);
	/* Event guests are names of at least one byte. */
	expect_decode_err("abort guest empty", ARGS(conv_event), "{\"epoch\":0,\"seq\":1,\"guest\":\"\"}", 0, -EINVAL,
			  "guest");
	text = xasprintf("{\"epoch\":0,\"seq\":1,\"guest\":\"%sX\"}", name64);
	expect_decode_err("abort guest 65", ARGS(conv_event), text, 0, -ENAMETOOLONG, "guest");
	free(text);
	free(en31);
	free(en32);
	free(r255);
	free(r256);
}

static void test_decode_enum(void **state)
{
	(void)state;
	for (int i = 0; gmem_role_names[i]; i++) {
		char *text = xasprintf("{\"version\":1,\"role\":\"%s\"}", gmem_role_names[i]);
		struct gmem_hello_args *h = expect_decode_ok("role", ARGS(hello_args), text, GMEM_DECODE_STRICT);
		assert_int_equal(h->role, i);
		free(h);
		free(text);
	}
	static const char *const bad[] = { "\"root\"", "\"VMM\"", "\"\"", "\"vmm \"", "0", "null", "[\"vmm\"]",
					   "true", "{}" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *text = xasprintf("{\"version\":1,\"role\":%s}", bad[i]);
		expect_decode_err(bad[i], ARGS(hello_args), text, GMEM_DECODE_STRICT, -EINVAL, "role");
		free(text);
	}
	expect_decode_err("kind", ARGS(attach_args), "{\"name\":\"a\",\"offset\":0,\"length\":1,\"kind\":\"dma\"}",
			  GMEM_DECODE_STRICT, -EINVAL, "kind");

	/* Conversions: the wire names are the public enums' values. */
	struct gmem_convert_args *c = expect_decode_ok(
		"target private, content zero", ARGS(convert_args),
		"{\"name\":\"c\",\"ranges\":[{\"offset\":0,\"length\":1}],\"target\":\"private\",\"content\":\"zero\"}",
		GMEM_DECODE_STRICT);
	assert_int_equal(c->target, GMEM_PRIVATE);
	assert_int_equal(c->content, 1);
	release_free(gmem_convert_args_fields, c);
	expect_decode_err("target Private", ARGS(convert_args),
			  "{\"name\":\"c\",\"ranges\":[{\"offset\":0,\"length\":1}],\"target\":\"Private\"}",
			  GMEM_DECODE_STRICT, -EINVAL, "target");
	expect_decode_err("content scramble", ARGS(convert_args),
			  "{\"name\":\"c\",\"ranges\":[{\"offset\":0,\"length\":1}],\"target\":\"shared\","
			  "\"content\":\"scramble\"}",
			  GMEM_DECODE_STRICT, -EINVAL, "content");
	expect_decode_err("vote maybe", ARGS(vote_args), "{\"epoch\":0,\"seq\":1,\"vote\":\"maybe\"}",
			  GMEM_DECODE_STRICT, -EINVAL, "vote");
	struct gmem_done_event *d = expect_decode_ok("outcome", ARGS(done_event),
						     "{\"epoch\":0,\"seq\":1,\"guest\":\"g\",\"outcome\":"
						     "\"committed-unverified\"}", 0);
	assert_int_equal(d->outcome, GMEM_COMMITTED_UNVERIFIED);
	free(d);
	expect_decode_err("prepare role root", ARGS(prepare_event),
			  "{\"epoch\":0,\"seq\":1,\"guest\":\"g\",\"target\":\"shared\",\"role\":\"root\",\"ranges\":[]}",
			  0, -EINVAL, "role");
	expect_decode_err("run state frozen", ARGS(map_reply), "{\"runs\":[{\"offset\":0,\"length\":1,\"state\":\"frozen\"}]}",
			  0, -EINVAL, "state");
	expect_decode_err("watch state", ARGS(watch_event),
			  "{\"epoch\":0,\"seq\":1,\"guest\":\"g\",\"target\":\"shared\",\"state\":\"done\"}", 0, -EINVAL,
			  "state");
}

static void test_decode_flags(void **state)
{
	struct gmem_hello_args *h;
	(void)state;

	h = expect_decode_ok("known+unknown", ARGS(hello_args),
			     "{\"version\":1,\"role\":\"vmm\",\"features\":[\"time-travel\",\"lease\",\"list-pages\",\"x\"]}",
			     GMEM_DECODE_STRICT);
	assert_int_equal(h->features, GMEM_FEATURE_LEASE | GMEM_FEATURE_LIST_PAGES);
	free(h);
	h = expect_decode_ok("unknown only", ARGS(hello_args),
			     "{\"version\":1,\"role\":\"vmm\",\"features\":[\"time-travel\"]}", GMEM_DECODE_STRICT);
	assert_int_equal(h->features, 0);
	free(h);
	h = expect_decode_ok("list-pages", ARGS(hello_args),
			     "{\"version\":1,\"role\":\"vmm\",\"features\":[\"list-pages\"]}", GMEM_DECODE_STRICT);
	assert_int_equal(h->features, GMEM_FEATURE_LIST_PAGES);
	free(h);
	expect_decode_err("non-string", ARGS(hello_args), "{\"version\":1,\"role\":\"vmm\",\"features\":[\"lease\",7]}",
			  GMEM_DECODE_STRICT, -EINVAL, "features");
	expect_decode_err("string", ARGS(hello_args), "{\"version\":1,\"role\":\"vmm\",\"features\":\"lease\"}",
			  GMEM_DECODE_STRICT, -EINVAL, "features");
}

static void test_decode_array(void **state)
{
	struct gmem_list_reply *l;
	(void)state;

	expect_decode_err("object", ARGS(list_reply), "{\"guests\":{}}", 0, -EINVAL, "guests");
	expect_decode_err("element", ARGS(list_reply), "{\"guests\":[{\"id\":1},7]}", 0, -EINVAL, NULL);

	/* An element fails after others were decoded: they are all freed (LeakSanitizer checks). */
	expect_decode_err("third element", ARGS(list_reply),
			  "{\"guests\":[{\"id\":1,\"name\":\"a\"},{\"id\":2,\"name\":\"b\"},{\"id\":-3}]}", 0, -ERANGE,
			  "id");
	expect_nul_rejected("element name", ARGS(list_reply),
			    "{\"guests\":[{\"id\":1,\"name\":\"a\"},{\"name\":\"b\\u0000\"}]}", 0, "name");
	/* A later field fails after the whole array was decoded. */
	expect_decode_err("next after guests", ARGS(list_reply),
			  "{\"guests\":[{\"id\":1},{\"id\":2}],\"next\":\"x\"}", 0, -EINVAL, "next");
	expect_decode_err("next 2^64", ARGS(list_reply), "{\"guests\":[{\"id\":1}],\"next\":18446744073709551616}",
			  0, -ERANGE, "next");

	/* Strictness reaches into elements. */
	expect_decode_err("strict element", ARGS(list_reply), "{\"guests\":[{\"id\":1},{\"id\":2,\"color\":\"red\"}]}",
			  GMEM_DECODE_STRICT, -EINVAL, "color");
	l = expect_decode_ok("lenient element", ARGS(list_reply),
			     "{\"guests\":[{\"id\":1},{\"id\":2,\"color\":\"red\"}],\"flavour\":1}", 0);
	assert_int_equal(l->n_guests, 2);
	assert_int_equal(l->guests[1].id, 2);
	release_free(gmem_list_reply_fields, l);

	/* 200 elements is the page; 201 is E2BIG. */
	char *arr = json_array_of("{\"id\":1}", GMEM_LIST_PAGE);
	char *text = xasprintf("{\"guests\":%s}", arr);
	l = expect_decode_ok("200", ARGS(list_reply), text, 0);
	assert_int_equal(l->n_guests, GMEM_LIST_PAGE);
	release_free(gmem_list_reply_fields, l);
	free(text);
	free(arr);
	arr = json_array_of("{\"id\":1}", GMEM_LIST_PAGE + 1);
	text = xasprintf("{\"guests\":%s}", arr);
	expect_decode_err("201", ARGS(list_reply), text, 0, -E2BIG, "guests");
	free(text);
	free(arr);

	/* Convert ranges: required, each element complete, GMEM_RANGES_MAX at most. */
	expect_decode_err("no ranges", ARGS(convert_args), "{\"name\":\"c\",\"target\":\"shared\"}",
			  GMEM_DECODE_STRICT, -EINVAL, "ranges");
	expect_decode_err("ranges object", ARGS(convert_args), "{\"name\":\"c\",\"ranges\":{},\"target\":\"shared\"}",
			  GMEM_DECODE_STRICT, -EINVAL, "ranges");
	expect_decode_err("third range", ARGS(convert_args),
			  "{\"name\":\"c\",\"ranges\":[{\"offset\":0,\"length\":1},{\"offset\":8192,\"length\":4096},"
			  "{\"offset\":-4096,\"length\":1}],\"target\":\"shared\"}",
			  GMEM_DECODE_STRICT, -ERANGE, "offset");
	expect_decode_err("range without length", ARGS(convert_args),
			  "{\"name\":\"c\",\"ranges\":[{\"offset\":0,\"length\":1},{\"offset\":4096}],\"target\":\"shared\"}",
			  GMEM_DECODE_STRICT, -EINVAL, "length");
	expect_decode_err("range null", ARGS(convert_args),
			  "{\"name\":\"c\",\"ranges\":[{\"offset\":0,\"length\":1},null],\"target\":\"shared\"}",
			  GMEM_DECODE_STRICT, -EINVAL, NULL);
	expect_decode_err("range strict", ARGS(convert_args),
			  "{\"name\":\"c\",\"ranges\":[{\"offset\":0,\"length\":1,\"color\":\"red\"}],\"target\":\"shared\"}",
			  GMEM_DECODE_STRICT, -EINVAL, "color");
	/* A later field fails after the ranges were decoded. */
	expect_decode_err("target after ranges", ARGS(convert_args),
			  "{\"name\":\"c\",\"ranges\":[{\"offset\":0,\"length\":1},{\"offset\":1,\"length\":1}],"
			  "\"target\":\"sideways\"}",
			  GMEM_DECODE_STRICT, -EINVAL, "target");
	static const struct {
		const char *what;
		const struct gmem_field *fields;
		size_t size;
		const char *key, *pre, *elem, *post;
		size_t max;
		unsigned flags;
	} counted[] = {
		{ "ranges", ARGS(convert_args), "ranges", "{\"name\":\"c\",\"target\":\"private\",\"ranges\":",
		  "{\"offset\":4611686018427387904,\"length\":4611686018427387904}", "}", GMEM_RANGES_MAX,
		  GMEM_DECODE_STRICT },
		{ "prepare ranges", ARGS(prepare_event), "ranges",
		  "{\"epoch\":0,\"seq\":1,\"guest\":\"g\",\"target\":\"shared\",\"role\":\"vmm\",\"ranges\":",
		  "{\"offset\":0,\"length\":4096}", "}", GMEM_RANGES_MAX, 0 },
		{ "refusals", ARGS(convert_reply), "refusals", "{\"epoch\":1,\"seq\":1,\"outcome\":\"aborted\",\"refusals\":",
		  "{\"client_id\":7,\"errno\":\"EBUSY\",\"reason\":\"no\"}", "}", GMEM_REFUSALS_MAX, 0 },
		{ "unverified", ARGS(convert_reply), "unverified",
		  "{\"epoch\":1,\"seq\":1,\"outcome\":\"committed-unverified\",\"unverified\":", "{\"client_id\":7}", "}",
		  GMEM_REFUSALS_MAX, 0 },
		{ "runs", ARGS(map_reply), "runs", "{\"size\":4096,\"runs\":",
		  "{\"offset\":9223372036854775807,\"length\":9223372036854775807,\"state\":\"private\"}", "}",
		  GMEM_MAP_PAGE, 0 },
	};
	for (size_t i = 0; i < sizeof(counted) / sizeof(counted[0]); i++) {
		for (size_t n = counted[i].max; n <= counted[i].max + 1; n++) {
			arr = json_array_of(counted[i].elem, n);
			text = xasprintf("%s%s%s", counted[i].pre, arr, counted[i].post);
			char ctx[64];
			snprintf(ctx, sizeof(ctx), "%zu %s", n, counted[i].what);
			if (n > counted[i].max) {
				expect_decode_err(ctx, counted[i].fields, counted[i].size, text, counted[i].flags, -E2BIG,
						  counted[i].key);
			} else {
				void *out = expect_decode_ok(ctx, counted[i].fields, counted[i].size, text, counted[i].flags);
				const struct gmem_field *f = counted[i].fields;
				while (strcmp(f->name, counted[i].key) != 0)
					f++;
				assert_int_equal(*(const size_t *)((const char *)out + f->count_offset), n);
				release_free(counted[i].fields, out);
			}
			free(text);
			free(arr);
		}
	}
}

/* "JSON array of objects": a null element is not an object and must not decode as an empty one. */
static void test_decode_array_null_element(void **state)
{
	(void)state;
	expect_decode_err("[null]", ARGS(list_reply), "{\"guests\":[null]}", 0, -EINVAL, NULL);
	expect_decode_err("[{},null]", ARGS(list_reply), "{\"guests\":[{\"id\":1},null]}", 0, -EINVAL, NULL);
}

static void test_decode_object(void **state)
{
	struct gmem_open_reply *o;
	(void)state;

	static const char *const bad[] = { "[]", "1", "\"x\"", "null", "true", "[{}]" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *text = xasprintf("{\"guest\":%s,\"fd\":0}", bad[i]);
		expect_decode_err(bad[i], ARGS(open_reply), text, 0, -EINVAL, "guest");
		free(text);
	}
	expect_decode_err("missing guest", ARGS(open_reply), "{\"fd\":0}", 0, -EINVAL, "guest");
	expect_decode_err("missing fd", ARGS(open_reply), "{\"guest\":{}}", 0, -EINVAL, "fd");
	/* Errors inside the nested object name the inner key. */
	expect_decode_err("inner size", ARGS(open_reply), "{\"guest\":{\"id\":1,\"size\":-1},\"fd\":0}", 0, -ERANGE,
			  "size");
	expect_decode_err("inner leased", ARGS(open_reply), "{\"guest\":{\"leased\":1},\"fd\":0}", 0, -EINVAL,
			  "leased");
	expect_decode_err("inner name", ARGS(open_reply), "{\"guest\":{\"name\":[]},\"fd\":0}", 0, -EINVAL, "name");
	expect_decode_err("inner strict", ARGS(open_reply), "{\"guest\":{\"id\":1,\"shiny\":true},\"fd\":0}",
			  GMEM_DECODE_STRICT, -EINVAL, "shiny");
	o = expect_decode_ok("inner lenient", ARGS(open_reply),
			     "{\"guest\":{\"id\":1,\"shiny\":true,\"name\":\"n\"},\"fd\":0,\"extra\":[]}", 0);
	assert_int_equal(o->guest.id, 1);
	assert_string_equal(o->guest.name, "n");
	free(o);
}

static void test_decode_misc(void **state)
{
	struct gmem_codec_error e;
	(void)state;

	/* Missing required fields, each named. */
	expect_decode_err("no version", ARGS(hello_args), "{\"role\":\"vmm\"}", GMEM_DECODE_STRICT, -EINVAL, "version");
	expect_decode_err("no role", ARGS(hello_args), "{\"version\":1}", GMEM_DECODE_STRICT, -EINVAL, "role");
	expect_decode_err("no name", ARGS(create_args), "{\"size\":4096}", GMEM_DECODE_STRICT, -EINVAL, "name");
	expect_decode_err("no size", ARGS(create_args), "{\"name\":\"a\"}", GMEM_DECODE_STRICT, -EINVAL, "size");
	expect_decode_err("no kind", ARGS(attach_args), "{\"name\":\"a\",\"offset\":0,\"length\":1}",
			  GMEM_DECODE_STRICT, -EINVAL, "kind");
	expect_decode_err("no id", ARGS(attach_reply), "{}", 0, -EINVAL, "id");

	/* NULL is {}: fine without required fields, "missing" with them. */
	struct gmem_list_args la = { .after = 77 };
	memset(&e, 0, sizeof(e));
	assert_int_equal(gmem_decode(gmem_list_args_fields, NULL, &la, GMEM_DECODE_STRICT, &e), 0);
	assert_int_equal(la.after, 77); /* absent optional keys keep the default */
	struct gmem_status_args sa = { 0 };
	assert_int_equal(gmem_decode(gmem_no_fields, NULL, &sa, GMEM_DECODE_STRICT, &e), 0);
	struct gmem_guest_args ga;
	memset(&ga, 0, sizeof(ga));
	assert_int_equal(gmem_decode(gmem_guest_args_fields, NULL, &ga, GMEM_DECODE_STRICT, &e), -EINVAL);
	assert_int_equal(e.err, -EINVAL);
	assert_true(has_substr(e.msg, "'name'"));

	/* Defaults survive when the key is absent. */
	struct gmem_create_args ca;
	memset(&ca, 0, sizeof(ca));
	ca.granule = GMEM_GRANULE_4K;
	struct json_object *root = parse_str("{\"name\":\"a\",\"size\":8192}");
	assert_int_equal(gmem_decode(gmem_create_args_fields, root, &ca, GMEM_DECODE_STRICT, &e), 0);
	assert_int_equal(ca.granule, GMEM_GRANULE_4K);
	assert_int_equal(ca.size, 8192);
	json_object_put(root);

	/* The value handed to decode must be an object. */
	static const char *const not_obj[] = { "[]", "1", "\"x\"", "true", "1.5" };
	for (size_t i = 0; i < sizeof(not_obj) / sizeof(not_obj[0]); i++) {
		struct json_object *v = json_tokener_parse(not_obj[i]);
		assert_non_null(v);
		memset(&e, 0, sizeof(e));
		assert_int_equal(gmem_decode(gmem_no_fields, v, &sa, 0, &e), -EINVAL);
		assert_int_equal(e.err, -EINVAL);
		json_object_put(v);
	}

	/* Unknown keys: -EINVAL naming them when strict, skipped when lenient; for payloads without fields too. */
	expect_decode_err("status strict", gmem_no_fields, sizeof(struct gmem_status_args), "{\"verbose\":true}", GMEM_DECODE_STRICT, -EINVAL,
			  "verbose");
	free(expect_decode_ok("status lenient", gmem_no_fields, sizeof(struct gmem_status_args), "{\"verbose\":true}", 0));
	expect_decode_err("create strict", ARGS(create_args), "{\"name\":\"a\",\"size\":4096,\"bogus\":1}",
			  GMEM_DECODE_STRICT, -EINVAL, "bogus");
	struct gmem_create_args *c = expect_decode_ok("create lenient", ARGS(create_args),
						      "{\"name\":\"a\",\"size\":4096,\"bogus\":1}", 0);
	assert_string_equal(c->name, "a");
	assert_int_equal(c->size, 4096);
	free(c);
	/* A very long unknown key is quoted only in part, and the message stays a C string. */
	char *k = repeat("k", 5000);
	char *text = xasprintf("{\"%s\":1}", k);
	expect_decode_err("long key", gmem_no_fields, sizeof(struct gmem_status_args), text, GMEM_DECODE_STRICT, -EINVAL, NULL);
	free(text);
	free(k);
}

/*
 * The daemon sends the decode message back as the error's text. A non-ASCII unknown key is quoted with
 * "%.64s", which can cut a character in two: the message (and so the daemon's error datagram) must still
 * be valid UTF-8, or the client's own gmem_json_parse rejects the error reply.
 */
static void test_unknown_key_message_utf8(void **state)
{
	(void)state;
	for (size_t pre = 0; pre < 4; pre++) {
		char *body = repeat("\xc3\xa9", 40);
		char *text = xasprintf("{\"id\":1,\"op\":\"status\",\"args\":{\"%.*s%s\":1}}", (int)pre, "abc", body);
		struct json_object *root = parse_str(text);
		struct gmem_envelope env;
		struct gmem_codec_error e = { 0 };
		struct gmem_status_args sa = { 0 };

		assert_int_equal(gmem_envelope_parse_request(root, &env, &e), 0);
		assert_int_equal(gmem_decode(gmem_no_fields, env.body, &sa, GMEM_DECODE_STRICT, &e), -EINVAL);
		assert_true(has_substr(e.msg, "unknown field"));
		bool msg_ok = utf8_valid(e.msg, strlen(e.msg));

		/* What the daemon does with it, and what the client then sees. */
		char *buf;
		size_t len;
		assert_int_equal(gmem_build_error(true, env.id, e.err, e.msg, &buf, &len), 0);
		struct json_object *reply = SENTINEL;
		struct gmem_codec_error ce = { 0 };
		int r = gmem_json_parse(buf, len, &reply, &ce);
		if (r == 0)
			json_object_put(reply);
		free(buf);
		json_object_put(root);
		free(text);
		free(body);
		char esc[512];
		if (!msg_ok)
			fail_msg("prefix %zu: decode message is not valid UTF-8: \"%s\"; the daemon's error reply "
				 "carrying it then %s (%s)", pre, escaped(e.msg, esc, sizeof(esc)),
				 r ? "fails the client's gmem_json_parse" : "parses", r ? ce.msg : "");
		if (r != 0)
			fail_msg("prefix %zu: the client cannot parse the daemon's error reply: %s", pre, ce.msg);
	}
}

/*
 * "Strings are valid UTF-8 with no \u0000" (PROTOCOL.md). json-c keeps keys as C strings and the enum and
 * flags decoders compare with strcmp, so an embedded \u0000 silently cuts the rest off. Either the parse
 * (-EBADMSG) or the decode (-EINVAL) must refuse it.
 */
static int parse_decode(const char *text, const struct gmem_field *fields, void *out, struct gmem_codec_error *e)
{
	struct json_object *root = SENTINEL;
	int r = gmem_json_parse(text, strlen(text), &root, e);
	if (r < 0)
		return r;
	r = gmem_decode(fields, root, out, GMEM_DECODE_STRICT, e);
	json_object_put(root);
	return r;
}

static void test_nul_in_key(void **state)
{
	struct gmem_guest_args ga;
	struct gmem_codec_error e = { 0 };
	(void)state;

	memset(&ga, 0, sizeof(ga));
	int r = parse_decode("{\"name\\u0000junk\":\"vm1\"}", gmem_guest_args_fields, &ga, &e);
	if (r != -EBADMSG && r != -EINVAL)
		fail_msg("key \"name\\u0000junk\": got %d (name=\"%s\"), want -EBADMSG or -EINVAL", r, ga.name);
}

static void test_nul_in_enum(void **state)
{
	struct gmem_hello_args h;
	struct gmem_codec_error e = { 0 };
	(void)state;

	memset(&h, 0, sizeof(h));
	int r = parse_decode("{\"version\":1,\"role\":\"admin\\u0000x\"}", gmem_hello_args_fields, &h, &e);
	if (r != -EBADMSG && r != -EINVAL)
		fail_msg("role \"admin\\u0000x\": got %d (role=%d), want -EBADMSG or -EINVAL", r, h.role);
	if (r == -EINVAL)
		assert_true(has_substr(e.msg, "'role'"));
}

static void test_nul_in_flags(void **state)
{
	struct gmem_hello_args h;
	struct gmem_codec_error e = { 0 };
	(void)state;

	memset(&h, 0, sizeof(h));
	/* Unknown names are ignored, so ignoring this one is fine too; taking it for "lease" is not. */
	int r = parse_decode("{\"version\":1,\"role\":\"vmm\",\"features\":[\"lease\\u0000x\"]}", gmem_hello_args_fields,
			     &h, &e);
	if (r == 0 && h.features != 0)
		fail_msg("features [\"lease\\u0000x\"] decoded as %#x, want 0 (unknown) or an error", h.features);
	if (r != 0 && r != -EBADMSG && r != -EINVAL)
		fail_msg("features [\"lease\\u0000x\"]: got %d", r);
}

/* ---------------------------------------------------------------------------------------------- */
/* gmem_json_parse                                                                                  */

static void test_parse_rejects(void **state)
{
	(void)state;
	EXPECT_PARSE_FAIL("empty", "");
	expect_parse_fail("empty, NULL", NULL, 0);

	/* Raw NUL bytes, anywhere. */
	EXPECT_PARSE_FAIL("NUL only", "\0");
	EXPECT_PARSE_FAIL("NUL first", "\0{}");
	EXPECT_PARSE_FAIL("NUL inside", "{\0}");
	EXPECT_PARSE_FAIL("NUL in string", "{\"a\":\"x\0y\"}");
	EXPECT_PARSE_FAIL("NUL in key", "{\"a\0b\":1}");
	EXPECT_PARSE_FAIL("NUL after", "{}\0");
	EXPECT_PARSE_FAIL("NUL after, then more", "{\"a\":1}\0garbage");

	/* Trailing data and back-to-back values. */
	EXPECT_PARSE_FAIL("garbage", "{}x");
	EXPECT_PARSE_FAIL("garbage after space", "{\"a\":1} x");
	EXPECT_PARSE_FAIL("extra brace", "{}}");
	EXPECT_PARSE_FAIL("extra bracket", "{\"a\":1}]");
	EXPECT_PARSE_FAIL("two objects", "{}{}");
	EXPECT_PARSE_FAIL("two objects, space", "{\"a\":1} {\"b\":2}");
	EXPECT_PARSE_FAIL("two objects, newline", "{\"a\":1}\n{\"b\":2}");
	EXPECT_PARSE_FAIL("object then number", "{}1");
	EXPECT_PARSE_FAIL("object then utf-8", "{}\xc3\xa9");
	EXPECT_PARSE_FAIL("object then comma", "{},");

	/* Not an object at the top. */
	EXPECT_PARSE_FAIL("array", "[]");
	EXPECT_PARSE_FAIL("array of object", "[{}]");
	EXPECT_PARSE_FAIL("number", "1");
	EXPECT_PARSE_FAIL("negative number", "-1");
	EXPECT_PARSE_FAIL("float", "1.5");
	EXPECT_PARSE_FAIL("string", "\"{}\"");
	EXPECT_PARSE_FAIL("true", "true");
	EXPECT_PARSE_FAIL("null", "null");
	EXPECT_PARSE_FAIL("whitespace", "   ");

	/* Not JSON. */
	EXPECT_PARSE_FAIL("open brace", "{");
	EXPECT_PARSE_FAIL("trailing comma", "{\"a\":1,}");
	EXPECT_PARSE_FAIL("unquoted key", "{a:1}");
	EXPECT_PARSE_FAIL("single-quoted value", "{\"a\":'x'}");
	EXPECT_PARSE_FAIL("comment", "{\"a\":1/*x*/}");
	EXPECT_PARSE_FAIL("leading zero", "{\"a\":01}");
	EXPECT_PARSE_FAIL("TRUE", "{\"a\":TRUE}");
	EXPECT_PARSE_FAIL("bad escape", "{\"a\":\"\\x41\"}");
	EXPECT_PARSE_FAIL("short unicode escape", "{\"a\":\"\\u12\"}");

	/* Bad UTF-8 that is structurally broken. */
	EXPECT_PARSE_FAIL("0xff alone", "\xff");
	EXPECT_PARSE_FAIL("0xff in string", "{\"a\":\"\xff\"}");
	EXPECT_PARSE_FAIL("0xfe in string", "{\"a\":\"\xfe\"}");
	EXPECT_PARSE_FAIL("0xff in key", "{\"\xff\":1}");
	EXPECT_PARSE_FAIL("lone continuation", "{\"a\":\"\x80\"}");
	EXPECT_PARSE_FAIL("continuation first", "{\"a\":\"\xbfx\"}");
	EXPECT_PARSE_FAIL("truncated 2-byte", "{\"a\":\"\xc3\"}");
	EXPECT_PARSE_FAIL("truncated 3-byte", "{\"a\":\"\xe2\x82\"}");
	EXPECT_PARSE_FAIL("truncated 4-byte", "{\"a\":\"\xf0\x9f\x98\"}");
	EXPECT_PARSE_FAIL("lead then ascii", "{\"a\":\"\xe2x\x82\"}");
	EXPECT_PARSE_FAIL("truncated at the end", "{\"a\":\"\xe2\x82");
	EXPECT_PARSE_FAIL("byte outside strings", "{\"a\":1\xc3\xa9}");
}

/* RFC 3629: overlong forms, UTF-16 surrogates and code points above U+10FFFF are not UTF-8. All are
 * tried before failing, so the report lists every one that got through. */
static void test_parse_rejects_invalid_utf8_sequences(void **state)
{
	static const struct {
		const char *what, *json;
	} cases[] = {
		{ "overlong '/' (c0 af)", "{\"a\":\"\xc0\xaf\"}" },
		{ "overlong NUL (c0 80)", "{\"a\":\"\xc0\x80\"}" },
		{ "overlong c1 bf", "{\"a\":\"\xc1\xbf\"}" },
		{ "overlong 3-byte '/' (e0 80 af)", "{\"a\":\"\xe0\x80\xaf\"}" },
		{ "overlong 4-byte '/' (f0 80 80 af)", "{\"a\":\"\xf0\x80\x80\xaf\"}" },
		{ "surrogate U+D800 (ed a0 80)", "{\"a\":\"\xed\xa0\x80\"}" },
		{ "surrogate U+DFFF (ed bf bf)", "{\"a\":\"\xed\xbf\xbf\"}" },
		{ "U+110000 (f4 90 80 80)", "{\"a\":\"\xf4\x90\x80\x80\"}" },
		{ "lead f5 (f5 80 80 80)", "{\"a\":\"\xf5\x80\x80\x80\"}" },
		{ "lead f7 (f7 bf bf bf)", "{\"a\":\"\xf7\xbf\xbf\xbf\"}" },
		{ "overlong in a key (c0 af)", "{\"\xc0\xaf\":1}" },
	};
	int accepted = 0;
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct json_object *root = SENTINEL;
		struct gmem_codec_error e = { 0 };
		assert_false(utf8_valid(cases[i].json, strlen(cases[i].json)));
		int r = gmem_json_parse(cases[i].json, strlen(cases[i].json), &root, &e);
		if (r == 0) {
			json_object_put(root);
			print_message("accepted: %s\n", cases[i].what);
			accepted++;
		} else {
			assert_int_equal(r, -EBADMSG);
			assert_int_equal(e.err, -EBADMSG);
			assert_ptr_equal(root, SENTINEL);
		}
	}
	if (accepted)
		fail_msg("gmem_json_parse accepted %d of %zu invalid UTF-8 sequences, want -EBADMSG for all", accepted,
			 sizeof(cases) / sizeof(cases[0]));
}

static void test_parse_accepts(void **state)
{
	static const char *const ok[] = {
		"{}",
		"{\"a\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}",
		"{\"a\":\"\xc2\x80\xdf\xbf\"}",            /* U+0080, U+07FF */
		"{\"a\":\"\xe0\xa0\x80\xed\x9f\xbf\"}",    /* U+0800, U+D7FF */
		"{\"a\":\"\xee\x80\x80\xef\xbf\xbf\"}",    /* U+E000, U+FFFF */
		"{\"a\":\"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"}", /* U+10000, U+10FFFF */
		"{\"\xc3\xa9\":1}",
		"{\"a\":\"\\u0001\\ud83d\\ude00\"}",
		"{\"a\":{\"b\":[1,2,{\"c\":null}]},\"d\":true}",
	};
	(void)state;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		json_object_put(parse_str(ok[i]));
}

/* The top-level object, then depth - 1 levels of objects or arrays; the innermost holds a scalar
 * (with_value) or nothing. */
static void emit_nested(FILE *fp, unsigned depth, bool arrays, bool with_value, bool top)
{
	bool obj = top || !arrays;

	fputc(obj ? '{' : '[', fp);
	if (depth > 1) {
		if (obj)
			fputs("\"a\":", fp);
		emit_nested(fp, depth - 1, arrays, with_value, false);
	} else if (with_value) {
		fputs(obj ? "\"v\":1" : "1", fp);
	}
	fputc(obj ? '}' : ']', fp);
}

static char *nested(unsigned depth, bool arrays, bool with_value)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *fp = open_memstream(&buf, &size);

	assert_non_null(fp);
	emit_nested(fp, depth, arrays, with_value, true);
	assert_int_equal(fclose(fp), 0);
	return buf;
}

static int parse_nested(unsigned depth, bool arrays, bool with_value)
{
	char *s = nested(depth, arrays, with_value);
	struct json_object *root = NULL;
	struct gmem_codec_error e = { 0 };
	int r = gmem_json_parse(s, strlen(s), &root, &e);

	if (r == 0)
		json_object_put(root);
	else
		assert_int_equal(e.err, r);
	free(s);
	return r;
}

/*
 * Nesting, counted in objects and arrays (the top-level object is 1). json-c's max_depth counts the
 * scalar inside the innermost container as a level too, so the boundary is checked both with and without
 * a value in the innermost container. Up to GMEM_JSON_DEPTH - 1 with values, and GMEM_JSON_DEPTH empty,
 * are accepted; GMEM_JSON_DEPTH + 1 and more are rejected either way.
 */
static void test_parse_depth(void **state)
{
	(void)state;
	for (int arrays = 0; arrays <= 1; arrays++) {
		for (unsigned d = 1; d < GMEM_JSON_DEPTH; d++) {
			if (parse_nested(d, arrays, true) != 0)
				fail_msg("%u levels of %s with a value: rejected", d, arrays ? "arrays" : "objects");
			assert_int_equal(parse_nested(d, arrays, false), 0);
		}
		assert_int_equal(parse_nested(GMEM_JSON_DEPTH, arrays, false), 0);
		for (unsigned d = GMEM_JSON_DEPTH + 1; d <= GMEM_JSON_DEPTH + 3; d++) {
			if (parse_nested(d, arrays, false) != -EBADMSG || parse_nested(d, arrays, true) != -EBADMSG)
				fail_msg("%u levels of %s: accepted", d, arrays ? "arrays" : "objects");
		}
		assert_int_equal(parse_nested(1000, arrays, true), -EBADMSG);
	}

	/* Far deeper than any stack should take, never closed. */
	char *open = repeat("[", 200000);
	char *s = xasprintf("{\"a\":%s", open);
	expect_parse_fail("200000 brackets", s, strlen(s));
	free(s);
	free(open);

	/* Deep inside an otherwise valid request. */
	EXPECT_PARSE_FAIL("deep args", "{\"id\":1,\"op\":\"status\",\"args\":{\"x\":[[[[[[[[]]]]]]]]}}");
	EXPECT_PARSE_FAIL("deep args objects",
			  "{\"id\":1,\"args\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{}}}}}}}}}");
}

/* "nesting of objects and arrays at most 8 deep": 8 levels holding a value are within the limit. */
static void test_parse_depth_max_with_values(void **state)
{
	(void)state;
	for (int arrays = 0; arrays <= 1; arrays++) {
		int r = parse_nested(GMEM_JSON_DEPTH, arrays, true);
		if (r != 0) {
			char *s = nested(GMEM_JSON_DEPTH, arrays, true);
			print_error("%d levels of %s holding a value, %s: got %d, want 0\n", GMEM_JSON_DEPTH,
				    arrays ? "arrays" : "objects", s, r);
			free(s);
			fail();
		}
	}
}

/* A valid datagram cut at every byte is rejected at every cut. */
static void check_all_cuts(const char *what, const char *buf, size_t len)
{
	json_object_put(parse_ok(buf, len));
	for (size_t cut = 0; cut < len; cut++) {
		char label[96];
		snprintf(label, sizeof(label), "%s cut at %zu of %zu", what, cut, len);
		/* A copy of exactly cut bytes, so ASan sees any read past the end. */
		char *copy = malloc(cut ? cut : 1);
		assert_non_null(copy);
		memcpy(copy, buf, cut);
		expect_parse_fail(label, copy, cut);
		free(copy);
	}
}

static void test_parse_truncated(void **state)
{
	char *buf;
	size_t len;
	(void)state;

	for (int op = 0; op < _GMEM_OP_MAX; op++) {
		void *args = xcalloc(gmem_ops[op].args_size), *reply = xcalloc(gmem_ops[op].reply_size);
		fill_example(gmem_ops[op].args, args, FULL);
		fill_example(gmem_ops[op].reply, reply, FULL);
		assert_int_equal(gmem_build_request(I64MAX, (enum gmem_op)op, args, &buf, &len), 0);
		check_all_cuts(gmem_ops[op].name, buf, len);
		free(buf);
		assert_int_equal(gmem_build_reply(12, (enum gmem_op)op, reply, &buf, &len), 0);
		check_all_cuts(gmem_ops[op].name, buf, len);
		free(buf);
		free(args);
		free(reply);
	}
	for (int ev = 0; ev < _GMEM_WIRE_EVENT_MAX; ev++) {
		void *data = xcalloc(gmem_events[ev].size);
		fill_example(gmem_events[ev].fields, data, FULL);
		assert_int_equal(gmem_build_event((enum gmem_wire_event)ev, data, &buf, &len), 0);
		check_all_cuts(gmem_events[ev].name, buf, len);
		free(buf);
		free(data);
	}
	assert_int_equal(gmem_build_error(false, 0, -EINVAL, tricky_text, &buf, &len), 0);
	check_all_cuts("error", buf, len);
	free(buf);
	static const char hand[] = "{\"id\":1,\"op\":\"create\",\"args\":{\"name\":\"\\u00e9\\ud83d\\ude00\","
				   "\"size\":4096,\"x\":[true,false,null,-1.5e3,{}]}}";
	check_all_cuts("hand-written", hand, sizeof(hand) - 1);
}

/* ---------------------------------------------------------------------------------------------- */
/* envelope                                                                                         */

static void expect_request(const char *text, int want, bool has_id, uint64_t id, const char *needle)
{
	struct json_object *root = parse_str(text);
	struct gmem_envelope env;
	struct gmem_codec_error e = { 0 };
	int r;

	char why[256] = "";

	memset(&env, 0x5a, sizeof(env));
	r = gmem_envelope_parse_request(root, &env, &e);
	if (r != want)
		snprintf(why, sizeof(why), "parse_request returned %d (%s), want %d", r, r ? e.msg : "ok", want);
	else if (want < 0 && e.err != want)
		snprintf(why, sizeof(why), "err->err %d, want %d", e.err, want);
	else if (env.has_id != has_id)
		snprintf(why, sizeof(why), "has_id %d, want %d", env.has_id, has_id);
	else if (has_id && env.id != id)
		snprintf(why, sizeof(why), "id %ju, want %ju", (uintmax_t)env.id, (uintmax_t)id);
	else if (needle && !has_substr(e.msg, needle))
		snprintf(why, sizeof(why), "message \"%s\" does not mention %s", e.msg, needle);
	json_object_put(root); /* before failing, so LeakSanitizer reports only real leaks */
	if (why[0])
		fail_msg("%s: %s", text, why);
}

static void test_request_envelope(void **state)
{
	(void)state;
	/* Valid. */
	expect_request("{\"id\":1,\"op\":\"status\"}", 0, true, 1, NULL);
	expect_request("{\"op\":\"status\",\"args\":{},\"id\":0}", 0, true, 0, NULL);
	expect_request("{\"id\":9223372036854775807,\"op\":\"frobnicate\",\"args\":{\"x\":1}}", 0, true, I64MAX, NULL);

	/* The id. */
	expect_request("{\"op\":\"status\"}", -EINVAL, false, 0, "'id'");
	expect_request("{\"op\":\"status\",\"args\":{}}", -EINVAL, false, 0, "'id'");
	static const char *const bad_ids[] = { "\"1\"", "1.0", "1e3", "-1", "-9223372036854775808", "9223372036854775808",
					       "18446744073709551615", "18446744073709551616", "true", "null",
					       "[1]", "{}" };
	for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
		char *text = xasprintf("{\"id\":%s,\"op\":\"status\"}", bad_ids[i]);
		expect_request(text, -EINVAL, false, 0, "'id'");
		free(text);
	}

	/* The op: the id was readable, so it is reported for the error reply. */
	expect_request("{\"id\":7}", -EINVAL, true, 7, "'op'");
	expect_request("{\"id\":7,\"args\":{}}", -EINVAL, true, 7, "'op'");
	static const char *const bad_ops[] = { "1", "null", "true", "[\"status\"]", "{}" };
	for (size_t i = 0; i < sizeof(bad_ops) / sizeof(bad_ops[0]); i++) {
		char *text = xasprintf("{\"id\":8,\"op\":%s}", bad_ops[i]);
		expect_request(text, -EINVAL, true, 8, "'op'");
		free(text);
	}

	/* args. */
	static const char *const bad_args[] = { "[]", "1", "\"x\"", "null", "true", "[{}]" };
	for (size_t i = 0; i < sizeof(bad_args) / sizeof(bad_args[0]); i++) {
		char *text = xasprintf("{\"id\":9,\"op\":\"status\",\"args\":%s}", bad_args[i]);
		expect_request(text, -EINVAL, true, 9, "'args'");
		free(text);
	}

	/* Unknown top-level keys, wherever they are; the id still comes back when readable. */
	expect_request("{\"id\":10,\"op\":\"status\",\"extra\":1}", -EINVAL, true, 10, NULL);
	expect_request("{\"extra\":1,\"id\":11,\"op\":\"status\"}", -EINVAL, true, 11, NULL);
	expect_request("{\"id\":12,\"op\":\"status\",\"result\":{}}", -EINVAL, true, 12, NULL);
	expect_request("{\"id\":12,\"op\":\"status\",\"event\":\"shutdown\"}", -EINVAL, true, 12, NULL);
	expect_request("{\"id\":-1,\"op\":\"status\",\"extra\":1}", -EINVAL, false, 0, NULL);
	expect_request("{\"extra\":1}", -EINVAL, false, 0, NULL);
	/* Replies, errors and events are not requests. */
	expect_request("{\"id\":13,\"result\":{}}", -EINVAL, true, 13, NULL);
	expect_request("{\"event\":\"shutdown\",\"data\":{}}", -EINVAL, false, 0, NULL);

	/* Parsed request: name and body are borrowed from the root. */
	struct json_object *root = parse_str("{\"id\":3,\"op\":\"attach\",\"args\":{\"name\":\"vm\"}}");
	struct gmem_envelope env;
	struct gmem_codec_error e = { 0 };
	assert_int_equal(gmem_envelope_parse_request(root, &env, &e), 0);
	assert_int_equal(env.kind, GMEM_MSG_REQUEST);
	assert_string_equal(env.name, "attach");
	assert_non_null(env.body);
	assert_true(json_object_is_type(env.body, json_type_object));
	json_object_put(root);
	/* args absent: body NULL, which decodes as {}. */
	root = parse_str("{\"id\":3,\"op\":\"status\"}");
	assert_int_equal(gmem_envelope_parse_request(root, &env, &e), 0);
	assert_null(env.body);
	struct gmem_status_args sa = { 0 };
	assert_int_equal(gmem_decode(gmem_ops[GMEM_OP_STATUS].args, env.body, &sa, GMEM_DECODE_STRICT, &e), 0);
	struct gmem_guest_args ga;
	memset(&ga, 0, sizeof(ga));
	assert_int_equal(gmem_decode(gmem_ops[GMEM_OP_DESTROY].args, env.body, &ga, GMEM_DECODE_STRICT, &e), -EINVAL);
	assert_true(has_substr(e.msg, "'name'"));
	json_object_put(root);
}

/* PROTOCOL.md: "Unknown keys in a request (top level or in args): EINVAL naming the key." */
static void test_request_unknown_key_named(void **state)
{
	(void)state;
	expect_request("{\"id\":10,\"op\":\"status\",\"extra\":1}", -EINVAL, true, 10, "extra");
}

/* An op name with an embedded \u0000 is not the op before the NUL. */
static void test_request_op_with_nul(void **state)
{
	struct json_object *root = SENTINEL;
	struct gmem_envelope env;
	struct gmem_codec_error e = { 0 };
	static const char text[] = "{\"id\":5,\"op\":\"status\\u0000junk\"}";
	(void)state;

	int r = gmem_json_parse(text, sizeof(text) - 1, &root, &e);
	if (r == -EBADMSG)
		return;
	assert_int_equal(r, 0);
	r = gmem_envelope_parse_request(root, &env, &e);
	if (r == 0) {
		enum gmem_op op = gmem_op_from_name(env.name);
		json_object_put(root);
		if (op != GMEM_OP_INVALID)
			fail_msg("op \"status\\u0000junk\" was taken for op %d (\"%s\"), want -EINVAL", op,
				 gmem_ops[op].name);
		return;
	}
	json_object_put(root);
	assert_int_equal(r, -EINVAL);
}

static void expect_incoming_err(const char *text, int want)
{
	struct json_object *root = parse_str(text);
	struct gmem_envelope env;
	struct gmem_codec_error e = { 0 };
	int r = gmem_envelope_parse_incoming(root, &env, &e);

	if (r != want)
		fail_msg("%s: parse_incoming returned %d, want %d", text, r, want);
	assert_int_equal(e.err, want);
	assert_true(e.msg[0] != '\0');
	json_object_put(root);
}

static void test_incoming_envelope(void **state)
{
	struct json_object *root;
	struct gmem_envelope env;
	struct gmem_codec_error e = { 0 };
	(void)state;

	/* Neither a reply, an error nor an event. */
	expect_incoming_err("{}", -EBADMSG);
	expect_incoming_err("{\"id\":1}", -EBADMSG);
	expect_incoming_err("{\"id\":1,\"op\":\"status\",\"args\":{}}", -EBADMSG);
	expect_incoming_err("{\"id\":1,\"results\":{}}", -EBADMSG);
	/* Malformed ones. */
	expect_incoming_err("{\"result\":{}}", -EBADMSG);
	expect_incoming_err("{\"id\":null,\"result\":{}}", -EBADMSG);
	expect_incoming_err("{\"id\":-1,\"result\":{}}", -EBADMSG);
	expect_incoming_err("{\"id\":1,\"result\":[]}", -EBADMSG);
	expect_incoming_err("{\"id\":1,\"result\":null}", -EBADMSG);
	expect_incoming_err("{\"id\":1,\"error\":\"ENOENT\"}", -EBADMSG);
	expect_incoming_err("{\"id\":1,\"error\":{}}", -EBADMSG);
	expect_incoming_err("{\"id\":1,\"error\":{\"errno\":2}}", -EBADMSG);
	expect_incoming_err("{\"id\":1,\"error\":{\"errno\":null,\"message\":\"x\"}}", -EBADMSG);
	expect_incoming_err("{\"event\":1}", -EBADMSG);
	expect_incoming_err("{\"event\":\"shutdown\",\"data\":[]}", -EBADMSG);
	expect_incoming_err("{\"event\":\"shutdown\",\"data\":\"x\"}", -EBADMSG);

	/* An unknown errno name is EIO, with the name and message kept. */
	root = parse_str("{\"id\":4,\"error\":{\"errno\":\"EFROBNICATED\",\"message\":\"new in v9\"}}");
	assert_int_equal(gmem_envelope_parse_incoming(root, &env, &e), 0);
	assert_int_equal(env.kind, GMEM_MSG_ERROR);
	assert_true(env.has_id);
	assert_int_equal(env.id, 4);
	assert_int_equal(env.err, EIO);
	assert_string_equal(env.err_name, "EFROBNICATED");
	assert_string_equal(env.message, "new in v9");
	json_object_put(root);
	/* No message, or a non-string one: "". Unknown keys skipped. */
	root = parse_str("{\"id\":null,\"error\":{\"errno\":\"EPERM\",\"hint\":1},\"trace\":[]}");
	assert_int_equal(gmem_envelope_parse_incoming(root, &env, &e), 0);
	assert_false(env.has_id);
	assert_int_equal(env.err, EPERM);
	assert_string_equal(env.message, "");
	json_object_put(root);
	root = parse_str("{\"error\":{\"errno\":\"EBUSY\",\"message\":5}}");
	assert_int_equal(gmem_envelope_parse_incoming(root, &env, &e), 0);
	assert_false(env.has_id);
	assert_int_equal(env.err, EBUSY);
	assert_string_equal(env.message, "");
	json_object_put(root);

	/* Replies: unknown top-level keys and unknown result keys are skipped. */
	root = parse_str("{\"id\":6,\"result\":{\"id\":3,\"later\":true},\"server-time\":1}");
	assert_int_equal(gmem_envelope_parse_incoming(root, &env, &e), 0);
	assert_int_equal(env.kind, GMEM_MSG_REPLY);
	assert_int_equal(env.id, 6);
	struct gmem_attach_reply ar = { 0 };
	assert_int_equal(gmem_decode(gmem_attach_reply_fields, env.body, &ar, 0, &e), 0);
	assert_int_equal(ar.id, 3);
	json_object_put(root);

	/* Events: without data, and unknown ones. */
	root = parse_str("{\"event\":\"shutdown\"}");
	assert_int_equal(gmem_envelope_parse_incoming(root, &env, &e), 0);
	assert_int_equal(env.kind, GMEM_MSG_EVENT);
	assert_null(env.body);
	struct gmem_shutdown_event se = { .reason = "" };
	assert_int_equal(gmem_decode(gmem_shutdown_event_fields, env.body, &se, 0, &e), 0);
	json_object_put(root);
	root = parse_str("{\"event\":\"guest-resized\",\"data\":{\"name\":\"x\"}}");
	assert_int_equal(gmem_envelope_parse_incoming(root, &env, &e), 0);
	assert_int_equal(env.kind, GMEM_MSG_EVENT);
	assert_int_equal(gmem_wire_event_from_name(env.name), GMEM_WIRE_EVENT_INVALID);
	json_object_put(root);
}

/* ---------------------------------------------------------------------------------------------- */
/* names and sizes                                                                                  */

static void test_name_valid(void **state)
{
	static const char *const good[] = {
		"a", "Z", "0", "9", "_", "_x", "vm1", "vm-1", "vm_1", "vm.1", "a.", "a-", "a..b", "A-b_c.d-0",
		"abcdefghijklmnopqrstuvwxyABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
	};
	static const char *const bad[] = {
		"", ".", "-", ".a", "-a", "..", "a b", " a", "a ", "a/b", "/", "../x", "a\tb", "a\nb", "a:b",
		"a@b", "a\\b", "a*", "a+b", "caf\xc3\xa9", "\xc3\xa9", "\xff", "a\x7f",
		"abcdefghijklmnopqrstuvwxyABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-x",
	};
	(void)state;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!gmem_name_valid(good[i]))
			fail_msg("\"%s\" rejected", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (gmem_name_valid(bad[i]))
			fail_msg("\"%s\" accepted", bad[i]);
	assert_int_equal(strlen(good[sizeof(good) / sizeof(good[0]) - 1]), GMEM_NAME_MAX);
	assert_int_equal(strlen(bad[sizeof(bad) / sizeof(bad[0]) - 1]), GMEM_NAME_MAX + 1);
	char *n256 = repeat("a", 256);
	assert_false(gmem_name_valid(n256));
	free(n256);
}

/* The daemon relies on a full list page fitting in one datagram, whatever the guests look like. */
static void test_msg_size_limit(void **state)
{
	static const uint64_t bigs[] = { I64MAX, UINT64_MAX };
	struct gmem_wire_guest *g = xcalloc(1000 * sizeof(*g));
	char *buf;
	size_t len;
	(void)state;

	for (size_t b = 0; b < sizeof(bigs) / sizeof(bigs[0]); b++) {
		for (size_t i = 0; i < 1000; i++)
			g[i] = worst_guest(bigs[b]);
		struct gmem_list_reply page = { .guests = g, .n_guests = GMEM_LIST_PAGE, .next = bigs[b] };
		buf = NULL;
		int r = gmem_build_reply(bigs[b], GMEM_OP_LIST, &page, &buf, &len);
		if (r != 0)
			fail_msg("worst-case page (integers %ju): %d", (uintmax_t)bigs[b], r);
		check_datagram(buf, len);
		print_message("worst-case list page, integers %ju: %zu bytes, %zu under GMEM_MSG_MAX\n",
			      (uintmax_t)bigs[b], len, (size_t)GMEM_MSG_MAX - len);
		assert_true(len < GMEM_MSG_MAX);
		if (bigs[b] == I64MAX) { /* what the daemon can send decodes back */
			struct json_object *root = parse_ok(buf, len);
			struct gmem_envelope env;
			struct gmem_codec_error e = { 0 };
			struct gmem_list_reply got;
			memset(&got, 0, sizeof(got));
			assert_int_equal(gmem_envelope_parse_incoming(root, &env, &e), 0);
			assert_int_equal(gmem_decode(gmem_list_reply_fields, env.body, &got, 0, &e), 0);
			assert_int_equal(got.n_guests, GMEM_LIST_PAGE);
			assert_int_equal(got.next, I64MAX);
			for (size_t i = 0; i < GMEM_LIST_PAGE; i++)
				assert_memory_equal(&got.guests[i], &g[i], sizeof(g[i]));
			gmem_fields_release(gmem_list_reply_fields, &got);
			json_object_put(root);
		}
		free(buf);

		/* More than a datagram holds: -EMSGSIZE, nothing returned. */
		page.n_guests = 1000;
		buf = NULL;
		len = 12345;
		assert_int_equal(gmem_build_reply(1, GMEM_OP_LIST, &page, &buf, &len), -EMSGSIZE);
		assert_null(buf);
		assert_int_equal(len, 12345);
	}

	/* The limit is on the datagram: find the page size where it is crossed and check both sides. */
	for (size_t i = 0; i < 1000; i++)
		g[i] = worst_guest(I64MAX);
	size_t lo = GMEM_LIST_PAGE, hi = 1000; /* lo fits, hi does not */
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		struct gmem_list_reply page = { .guests = g, .n_guests = mid };
		int r = gmem_build_reply(1, GMEM_OP_LIST, &page, &buf, &len);
		if (r == 0) {
			assert_true(len <= GMEM_MSG_MAX);
			free(buf);
			lo = mid;
		} else {
			assert_int_equal(r, -EMSGSIZE);
			hi = mid;
		}
	}
	print_message("worst-case guests per datagram: %zu (page is %d)\n", lo, GMEM_LIST_PAGE);
	free(g);
}

/* Decodes the body of a built datagram (a request's args, a reply's result or an event's data) with
 * fields into out (zeroed by the caller); returns gmem_decode's result, e filled. */
static int decode_datagram(const char *buf, size_t len, const struct gmem_field *fields, void *out, unsigned flags,
			   struct gmem_codec_error *e)
{
	struct json_object *root = parse_ok(buf, len);
	struct gmem_envelope env;

	memset(e, 0, sizeof(*e));
	int r = json_object_object_get_ex(root, "op", NULL) ? gmem_envelope_parse_request(root, &env, e)
							     : gmem_envelope_parse_incoming(root, &env, e);
	if (r != 0)
		fail_msg("envelope: %d (%s)", r, e->msg);
	r = gmem_decode(fields, env.body, out, flags, e);
	json_object_put(root);
	return r;
}

/* The most elements of which a datagram still holds, by bisection; build sets the count and builds. */
static size_t most_that_fit(size_t lo, size_t hi, int (*build)(size_t n, void *arg, char **buf, size_t *len),
			    void *arg)
{
	/* lo fits, hi does not */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		char *buf = NULL;
		size_t len;
		int r = build(mid, arg, &buf, &len);
		if (r == 0) {
			check_datagram(buf, len);
			free(buf);
			lo = mid;
		} else {
			assert_int_equal(r, -EMSGSIZE);
			assert_null(buf);
			hi = mid;
		}
	}
	return lo;
}

static void worst_convert_args(struct gmem_convert_args *a, struct gmem_wire_range *rg, size_t n)
{
	memset(a, 0, sizeof(*a));
	memcpy(a->name, name64, GMEM_NAME_MAX);
	a->ranges = rg;
	a->n_ranges = n;
	a->target = GMEM_PRIVATE; /* the longer name */
	a->content = 1;           /* "zero" */
	a->force = true;
}

static int build_convert_request(size_t n, void *arg, char **buf, size_t *len)
{
	struct gmem_convert_args a;
	worst_convert_args(&a, arg, n);
	return gmem_build_request(I64MAX, GMEM_OP_CONVERT, &a, buf, len);
}

/* A convert request of GMEM_RANGES_MAX ranges fits in a datagram whatever the ranges (the daemon relies on
 * it, and it passes the same ranges on in prepare events); one more range is E2BIG. */
static void test_convert_ranges_size_limit(void **state)
{
	static const uint64_t bigs[] = { WIRE_SIZE_MAX, UINT64_MAX };
	const size_t nmax = GMEM_RANGES_MAX + 200;
	struct gmem_wire_range *rg = xcalloc(nmax * sizeof(*rg));
	struct gmem_codec_error e;
	struct gmem_convert_args a, got;
	char *buf;
	size_t len;
	(void)state;

	for (size_t b = 0; b < sizeof(bigs) / sizeof(bigs[0]); b++) {
		for (size_t i = 0; i < nmax; i++)
			rg[i] = (struct gmem_wire_range){ .offset = bigs[b], .length = bigs[b] };
		worst_convert_args(&a, rg, GMEM_RANGES_MAX);
		buf = NULL;
		int r = gmem_build_request(I64MAX, GMEM_OP_CONVERT, &a, &buf, &len);
		if (r != 0)
			fail_msg("convert request, %d ranges of %ju: %d", GMEM_RANGES_MAX, (uintmax_t)bigs[b], r);
		check_datagram(buf, len);
		print_message("worst-case convert request, %d ranges, integers %ju: %zu bytes, %zu under GMEM_MSG_MAX\n",
			      GMEM_RANGES_MAX, (uintmax_t)bigs[b], len, (size_t)GMEM_MSG_MAX - len);
		assert_true(len < GMEM_MSG_MAX);
		if (bigs[b] == WIRE_SIZE_MAX) { /* the largest valid request: the daemon decodes it whole */
			memset(&got, 0, sizeof(got));
			r = decode_datagram(buf, len, gmem_convert_args_fields, &got, GMEM_DECODE_STRICT, &e);
			if (r != 0)
				fail_msg("decoding the worst-case convert request: %d (%s)", r, e.msg);
			assert_int_equal(got.n_ranges, GMEM_RANGES_MAX);
			assert_memory_equal(got.ranges, rg, GMEM_RANGES_MAX * sizeof(*rg));
			assert_string_equal(got.name, name64);
			gmem_fields_release(gmem_convert_args_fields, &got);
		}
		free(buf);
		size_t most = most_that_fit(GMEM_RANGES_MAX, nmax, build_convert_request, rg);
		print_message("worst-case ranges per datagram, integers %ju: %zu (limit is %d)\n", (uintmax_t)bigs[b],
			      most, GMEM_RANGES_MAX);
	}

	/* GMEM_RANGES_MAX + 1 valid ranges: still a datagram a client can send, which the daemon refuses
	 * with E2BIG naming 'ranges', freeing what it decoded. */
	for (size_t i = 0; i < nmax; i++)
		rg[i] = (struct gmem_wire_range){ .offset = WIRE_SIZE_MAX, .length = WIRE_SIZE_MAX };
	worst_convert_args(&a, rg, GMEM_RANGES_MAX + 1);
	assert_int_equal(gmem_build_request(7, GMEM_OP_CONVERT, &a, &buf, &len), 0);
	check_datagram(buf, len);
	print_message("convert request with %d ranges: %zu bytes\n", GMEM_RANGES_MAX + 1, len);
	memset(&got, 0, sizeof(got));
	int r = decode_datagram(buf, len, gmem_convert_args_fields, &got, GMEM_DECODE_STRICT, &e);
	if (r != -E2BIG)
		fail_msg("%d ranges: decode returned %d (%s), want -E2BIG", GMEM_RANGES_MAX + 1, r, r ? e.msg : "ok");
	assert_int_equal(e.err, -E2BIG);
	assert_true(has_substr(e.msg, "'ranges'"));
	assert_released(gmem_convert_args_fields, &got, "1025 ranges");
	free(buf);

	/* The prepare event carrying GMEM_RANGES_MAX ranges to each participant fits too, and decodes back. */
	struct gmem_prepare_event p, pgot;
	memset(&p, 0, sizeof(p));
	p.epoch = p.seq = I64MAX;
	memcpy(p.guest, name64, GMEM_NAME_MAX);
	p.target = GMEM_PRIVATE;
	p.content = 0; /* "preserve", the longer name */
	p.role = GMEM_ROLE_DEVICE;
	p.ranges = rg;
	p.n_ranges = GMEM_RANGES_MAX;
	assert_int_equal(gmem_build_event(GMEM_WIRE_EVENT_PREPARE, &p, &buf, &len), 0);
	check_datagram(buf, len);
	print_message("worst-case prepare event, %d ranges: %zu bytes, %zu under GMEM_MSG_MAX\n", GMEM_RANGES_MAX, len,
		      (size_t)GMEM_MSG_MAX - len);
	assert_true(len < GMEM_MSG_MAX);
	memset(&pgot, 0, sizeof(pgot));
	assert_int_equal(decode_datagram(buf, len, gmem_prepare_event_fields, &pgot, GMEM_DECODE_STRICT, &e), 0);
	assert_int_equal(pgot.n_ranges, GMEM_RANGES_MAX);
	assert_memory_equal(pgot.ranges, rg, GMEM_RANGES_MAX * sizeof(*rg));
	gmem_fields_release(gmem_prepare_event_fields, &pgot);
	free(buf);
	free(rg);
}

struct worst_reply {
	struct gmem_wire_refusal ref[GMEM_REFUSALS_MAX + 64];
	struct gmem_wire_party unv[GMEM_REFUSALS_MAX + 64];
	size_t n_unverified;
};

/* 64-byte client names, 31-byte errno names, every integer at its maximum; reason is unit repeated to
 * GMEM_TEXT_MAX - 1 bytes. */
static void worst_reply_init(struct worst_reply *w, char reason_unit)
{
	memset(w, 0, sizeof(*w));
	for (size_t i = 0; i < GMEM_REFUSALS_MAX + 64; i++) {
		struct gmem_wire_refusal *f = &w->ref[i];
		f->client_id = f->pid = I64MAX;
		memcpy(f->client_name, name64, GMEM_NAME_MAX);
		memset(f->err, 'E', sizeof(f->err) - 1);
		memset(f->reason, reason_unit, sizeof(f->reason) - 1);
		f->timed_out = f->gone = true;
		struct gmem_wire_party *u = &w->unv[i];
		u->client_id = u->pid = I64MAX;
		memcpy(u->client_name, name64, GMEM_NAME_MAX);
	}
}

static void worst_reply_fill(struct gmem_convert_reply *r, struct worst_reply *w, size_t n_refusals)
{
	memset(r, 0, sizeof(*r));
	r->epoch = r->seq = r->changed = r->participants = r->latency_us = I64MAX;
	r->outcome = GMEM_COMMITTED_UNVERIFIED; /* the longest name */
	r->refusals = w->ref;
	r->n_refusals = n_refusals;
	r->unverified = w->unv;
	r->n_unverified = w->n_unverified;
}

static int build_convert_reply(size_t n, void *arg, char **buf, size_t *len)
{
	struct gmem_convert_reply r;
	worst_reply_fill(&r, arg, n);
	return gmem_build_reply(I64MAX, GMEM_OP_CONVERT, &r, buf, len);
}

/*
 * A convert reply listing GMEM_REFUSALS_MAX refusers, each with a 64-byte client name and a 255-byte
 * reason, fits in a datagram: the daemon sends it in one piece. Also with GMEM_REFUSALS_MAX unverified
 * parties on top (the daemon never sends both, the table allows it), and with reasons whose every byte
 * JSON escapes in two. Reasons are votes' text copied verbatim, and control characters grow six-fold
 * (\u0001): that case is measured, and the codec must refuse it whole (-EMSGSIZE) rather than send more
 * than a datagram.
 */
static void test_convert_reply_size_limit(void **state)
{
	static const struct {
		const char *what;
		char unit;
		bool must_fit;
	} reasons[] = {
		{ "255-byte plain reasons", 'r', true },
		{ "255 '\"' reasons (2-byte escapes)", '"', true },
		{ "255 '\\x01' reasons (6-byte escapes)", '\x01', false },
	};
	struct worst_reply *w = xcalloc(sizeof(*w));
	struct gmem_convert_reply r, got;
	struct gmem_codec_error e;
	char *buf;
	size_t len;
	(void)state;

	for (size_t k = 0; k < sizeof(reasons) / sizeof(reasons[0]); k++) {
		worst_reply_init(w, reasons[k].unit);
		for (int with_unv = 0; with_unv <= 1; with_unv++) {
			w->n_unverified = with_unv ? GMEM_REFUSALS_MAX : 0;
			worst_reply_fill(&r, w, GMEM_REFUSALS_MAX);
			buf = NULL;
			len = 12345;
			int rc = gmem_build_reply(I64MAX, GMEM_OP_CONVERT, &r, &buf, &len);
			size_t most = most_that_fit(0, GMEM_REFUSALS_MAX + 64, build_convert_reply, w);
			if (rc == 0) {
				check_datagram(buf, len);
				print_message("worst-case convert reply, %d refusals, %s%s: %zu bytes, %zu under "
					      "GMEM_MSG_MAX; %zu refusals fit\n", GMEM_REFUSALS_MAX, reasons[k].what,
					      with_unv ? " + 64 unverified" : "", len, (size_t)GMEM_MSG_MAX - len, most);
				assert_true(len < GMEM_MSG_MAX);
				/* It decodes back, strictly, as sent. */
				memset(&got, 0, sizeof(got));
				int dr = decode_datagram(buf, len, gmem_convert_reply_fields, &got, GMEM_DECODE_STRICT, &e);
				if (dr != 0)
					fail_msg("%s: decode: %d (%s)", reasons[k].what, dr, e.msg);
				assert_fields_equal(gmem_convert_reply_fields, &r, &got, "convert.result");
				gmem_fields_release(gmem_convert_reply_fields, &got);
				free(buf);
			} else {
				/* Too big: refused whole, nothing returned. */
				assert_int_equal(rc, -EMSGSIZE);
				assert_null(buf);
				assert_int_equal(len, 12345);
				print_message("worst-case convert reply, %d refusals, %s%s: does not fit (-EMSGSIZE); "
					      "%zu refusals fit\n", GMEM_REFUSALS_MAX, reasons[k].what,
					      with_unv ? " + 64 unverified" : "", most);
				if (reasons[k].must_fit)
					fail_msg("%s: a convert reply with %d refusals does not fit in a datagram",
						 reasons[k].what, GMEM_REFUSALS_MAX);
			}
		}
	}
	free(w);
}

static void worst_map_reply(struct gmem_map_reply *r, struct gmem_wire_run *runs, size_t n, uint64_t big)
{
	memset(r, 0, sizeof(*r));
	r->size = r->granule = r->shared_bytes = r->private_bytes = r->next = big;
	r->runs = runs;
	r->n_runs = n;
}

static int build_map_reply(size_t n, void *arg, char **buf, size_t *len)
{
	struct gmem_map_reply r;
	worst_map_reply(&r, arg, n, I64MAX);
	return gmem_build_reply(I64MAX, GMEM_OP_MAP, &r, buf, len);
}

/* A map page of GMEM_MAP_PAGE runs fits in a datagram whatever the offsets; one more run is E2BIG. */
static void test_map_reply_size_limit(void **state)
{
	static const uint64_t bigs[] = { I64MAX, UINT64_MAX };
	const size_t nmax = GMEM_MAP_PAGE + 200;
	struct gmem_wire_run *runs = xcalloc(nmax * sizeof(*runs));
	struct gmem_map_reply r, got;
	struct gmem_codec_error e;
	char *buf;
	size_t len;
	(void)state;

	for (size_t b = 0; b < sizeof(bigs) / sizeof(bigs[0]); b++) {
		for (size_t i = 0; i < nmax; i++)
			runs[i] = (struct gmem_wire_run){ .offset = bigs[b], .length = bigs[b], .state = GMEM_PRIVATE };
		worst_map_reply(&r, runs, GMEM_MAP_PAGE, bigs[b]);
		buf = NULL;
		int rc = gmem_build_reply(I64MAX, GMEM_OP_MAP, &r, &buf, &len);
		if (rc != 0)
			fail_msg("map page, %d runs of %ju: %d", GMEM_MAP_PAGE, (uintmax_t)bigs[b], rc);
		check_datagram(buf, len);
		print_message("worst-case map page, %d runs, integers %ju: %zu bytes, %zu under GMEM_MSG_MAX\n",
			      GMEM_MAP_PAGE, (uintmax_t)bigs[b], len, (size_t)GMEM_MSG_MAX - len);
		assert_true(len < GMEM_MSG_MAX);
		if (bigs[b] == I64MAX) { /* what the daemon can send decodes back */
			memset(&got, 0, sizeof(got));
			assert_int_equal(decode_datagram(buf, len, gmem_map_reply_fields, &got, GMEM_DECODE_STRICT, &e), 0);
			assert_int_equal(got.n_runs, GMEM_MAP_PAGE);
			assert_int_equal(got.next, I64MAX);
			assert_memory_equal(got.runs, runs, GMEM_MAP_PAGE * sizeof(*runs));
			gmem_fields_release(gmem_map_reply_fields, &got);
		}
		free(buf);
	}
	for (size_t i = 0; i < nmax; i++)
		runs[i] = (struct gmem_wire_run){ .offset = I64MAX, .length = I64MAX, .state = GMEM_PRIVATE };
	size_t most = most_that_fit(GMEM_MAP_PAGE, nmax, build_map_reply, runs);
	print_message("worst-case runs per datagram: %zu (page is %d)\n", most, GMEM_MAP_PAGE);

	/* One run more than a page: a client refuses it. */
	worst_map_reply(&r, runs, GMEM_MAP_PAGE + 1, I64MAX);
	assert_int_equal(gmem_build_reply(1, GMEM_OP_MAP, &r, &buf, &len), 0);
	memset(&got, 0, sizeof(got));
	assert_int_equal(decode_datagram(buf, len, gmem_map_reply_fields, &got, 0, &e), -E2BIG);
	assert_true(has_substr(e.msg, "'runs'"));
	assert_released(gmem_map_reply_fields, &got, "801 runs");
	free(buf);
	free(runs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tables),
		cmocka_unit_test(test_roundtrip_requests),
		cmocka_unit_test(test_roundtrip_replies),
		cmocka_unit_test(test_roundtrip_list_pages),
		cmocka_unit_test(test_roundtrip_open_reply),
		cmocka_unit_test(test_roundtrip_events),
		cmocka_unit_test(test_omit_empty),
		cmocka_unit_test(test_wire_format),
		cmocka_unit_test(test_error_roundtrip),
		cmocka_unit_test(test_error_all_errnos),
		cmocka_unit_test(test_error_message_cut_utf8),
		cmocka_unit_test(test_utf8_copy),
		cmocka_unit_test(test_decode_every_field),
		cmocka_unit_test(test_decode_u64),
		cmocka_unit_test(test_decode_strings),
		cmocka_unit_test(test_decode_enum),
		cmocka_unit_test(test_decode_flags),
		cmocka_unit_test(test_decode_array),
		cmocka_unit_test(test_decode_array_null_element),
		cmocka_unit_test(test_decode_object),
		cmocka_unit_test(test_decode_misc),
		cmocka_unit_test(test_unknown_key_message_utf8),
		cmocka_unit_test(test_nul_in_key),
		cmocka_unit_test(test_nul_in_enum),
		cmocka_unit_test(test_nul_in_flags),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_parse_rejects_invalid_utf8_sequences),
		cmocka_unit_test(test_parse_accepts),
		cmocka_unit_test(test_parse_depth),
		cmocka_unit_test(test_parse_depth_max_with_values),
		cmocka_unit_test(test_parse_truncated),
		cmocka_unit_test(test_request_envelope),
		cmocka_unit_test(test_request_unknown_key_named),
		cmocka_unit_test(test_request_op_with_nul),
		cmocka_unit_test(test_incoming_envelope),
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_msg_size_limit),
		cmocka_unit_test(test_convert_ranges_size_limit),
		cmocka_unit_test(test_convert_reply_size_limit),
		cmocka_unit_test(test_map_reply_size_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
