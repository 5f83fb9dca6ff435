/* SPDX-License-Identifier: MIT */
/*
 * fuzz-codec: one datagram through everything a peer's bytes meet before a handler sees them —
 * gmem_json_parse, both envelope parsers, then the payload decoded with the table that applies: a
 * request's args strictly with its op's table, an event's data leniently with its event's table, a
 * reply's result leniently with every op's reply table (the reader of a reply knows which op it asked;
 * the fuzzer does not).
 *
 * Every payload that decodes is re-encoded, serialised, parsed and decoded again, and must come back
 * equal field by field; the whole message is also rebuilt with gmem_build_request/_reply/_event/_error
 * and read back through the envelope. A mismatch is a codec bug and aborts. Decode failures must leave
 * nothing allocated (LeakSanitizer sees it) and must say why in a NUL-terminated message.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "envelope.h"
#include "errname.h"
#include "fuzz.h"
#include "gmem-proto.h"

#define STRUCT_MAX 1024 /* bytes: every args, reply and event struct fits (checked at first use) */

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz-codec: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	abort();
}

/* What the last input decoded, for the seed checks. */
static struct {
	int request_op;   /* GMEM_OP_INVALID unless a request's args decoded */
	int event;        /* GMEM_WIRE_EVENT_INVALID unless an event's data decoded */
	uint64_t replies; /* bit per op whose reply table decoded the result */
} seen;

static void check_error_message(const struct gmem_codec_error *e, int r)
{
	if (e->err != r)
		die("a decode failure returned one errno and recorded another", e->msg);
	if (!memchr(e->msg, '\0', sizeof(e->msg)) || !e->msg[0])
		die("a decode failure left no message", NULL);
}

/* ---- comparing two decoded structs, field by field ---- */

static bool fields_equal(const struct gmem_field *fields, const void *a, const void *b, char *where, size_t wlen)
{
	for (const struct gmem_field *f = fields; f->name; f++) {
		const char *pa = (const char *)a + f->offset, *pb = (const char *)b + f->offset;
		bool eq = true;
		switch (f->type) {
		case GMEM_FT_U64:
			eq = *(const uint64_t *)pa == *(const uint64_t *)pb;
			break;
		case GMEM_FT_BOOL:
			eq = *(const bool *)pa == *(const bool *)pb;
			break;
		case GMEM_FT_STRING:
			eq = memchr(pa, '\0', f->size) && memchr(pb, '\0', f->size) && strcmp(pa, pb) == 0;
			break;
		case GMEM_FT_ENUM:
			eq = *(const int *)pa == *(const int *)pb;
			break;
		case GMEM_FT_FLAGS:
			eq = *(const uint32_t *)pa == *(const uint32_t *)pb;
			break;
		case GMEM_FT_ARRAY: {
			size_t na = *(const size_t *)((const char *)a + f->count_offset);
			size_t nb = *(const size_t *)((const char *)b + f->count_offset);
			const char *ea = *(char *const *)pa, *eb = *(char *const *)pb;
			eq = na == nb && (na == 0 || (ea && eb));
			for (size_t i = 0; eq && i < na; i++)
				eq = fields_equal(f->sub, ea + i * f->size, eb + i * f->size, where, wlen);
			break;
		}
		case GMEM_FT_OBJECT:
			eq = fields_equal(f->sub, pa, pb, where, wlen);
			break;
		}
		if (!eq) {
			if (!where[0])
				snprintf(where, wlen, "field '%s'", f->name);
			return false;
		}
	}
	return true;
}

/* ---- round trips ---- */

/* Encodes in, serialises, parses and decodes the text again (with flags), and compares. */
static void payload_round_trip(const struct gmem_field *fields, const void *in, unsigned flags, const char *what)
{
	alignas(max_align_t) char again[STRUCT_MAX];
	struct gmem_codec_error e = { 0 };
	struct json_object *enc = NULL, *root = NULL;
	char where[128] = "";
	size_t len;

	if (gmem_encode(fields, in, &enc) < 0)
		die("encoding a decoded payload failed", what);
	const char *text = json_object_to_json_string_length(enc, JSON_C_TO_STRING_PLAIN, &len);
	if (!text)
		die("serialising failed", what);
	int r = gmem_json_parse(text, len, &root, &e);
	if (r < 0) {
		fprintf(stderr, "fuzz-codec: %s: re-encoded as %s\n", what, text);
		die("a re-encoded payload does not parse", e.msg);
	}
	memset(again, 0, sizeof(again));
	r = gmem_decode(fields, root, again, flags, &e);
	if (r < 0) {
		fprintf(stderr, "fuzz-codec: %s: re-encoded as %s\n", what, text);
		die("a re-encoded payload does not decode", e.msg);
	}
	if (!fields_equal(fields, in, again, where, sizeof(where))) {
		fprintf(stderr, "fuzz-codec: %s: re-encoded as %s\n", what, text);
		die("a re-encoded payload decodes to something else", where);
	}
	gmem_fields_release(fields, again);
	json_object_put(root);
	json_object_put(enc);
}

/* Parses a message built by gmem_build_*: it must parse, its envelope must read back as kind with the
 * given id (or none), and its body must decode with fields to something equal to in. */
static void message_round_trip(char *buf, size_t len, bool request, enum gmem_msg_kind kind, bool has_id,
			       uint64_t id, const char *name, const struct gmem_field *fields, const void *in,
			       unsigned flags, const char *what)
{
	alignas(max_align_t) char again[STRUCT_MAX];
	struct gmem_codec_error e = { 0 };
	struct json_object *root = NULL;
	struct gmem_envelope env;
	char where[128] = "";

	if (len > GMEM_MSG_MAX || strlen(buf) != len)
		die("a built message has the wrong length", what);
	if (gmem_json_parse(buf, len, &root, &e) < 0) {
		fprintf(stderr, "fuzz-codec: %s: built %s\n", what, buf);
		die("a built message does not parse", e.msg);
	}
	int r = request ? gmem_envelope_parse_request(root, &env, &e) : gmem_envelope_parse_incoming(root, &env, &e);
	if (r < 0) {
		fprintf(stderr, "fuzz-codec: %s: built %s\n", what, buf);
		die("a built message's envelope does not parse", e.msg);
	}
	if (env.kind != kind || env.has_id != has_id || (has_id && env.id != id) ||
	    (name && (!env.name || strcmp(env.name, name) != 0))) {
		fprintf(stderr, "fuzz-codec: %s: built %s\n", what, buf);
		die("a built message's envelope reads back different", NULL);
	}
	if (fields) {
		memset(again, 0, sizeof(again));
		r = gmem_decode(fields, env.body, again, flags, &e);
		if (r < 0) {
			fprintf(stderr, "fuzz-codec: %s: built %s\n", what, buf);
			die("a built message's payload does not decode", e.msg);
		}
		if (!fields_equal(fields, in, again, where, sizeof(where))) {
			fprintf(stderr, "fuzz-codec: %s: built %s\n", what, buf);
			die("a built message's payload decodes to something else", where);
		}
		gmem_fields_release(fields, again);
	}
	json_object_put(root);
	free(buf);
}

/* ---- the three kinds of payload ---- */

static void fuzz_request(const struct gmem_envelope *env)
{
	alignas(max_align_t) char args[STRUCT_MAX];
	struct gmem_codec_error e = { 0 };
	enum gmem_op op = gmem_op_from_name(env->name);
	char *buf;
	size_t len;

	if (op == GMEM_OP_INVALID)
		return;
	memset(args, 0, sizeof(args));
	int r = gmem_decode(gmem_ops[op].args, env->body, args, GMEM_DECODE_STRICT, &e);
	if (r < 0) {
		check_error_message(&e, r);
		return;
	}
	seen.request_op = op;
	payload_round_trip(gmem_ops[op].args, args, GMEM_DECODE_STRICT, gmem_ops[op].name);
	r = gmem_build_request(env->id, op, args, &buf, &len);
	if (r == 0)
		message_round_trip(buf, len, true, GMEM_MSG_REQUEST, true, env->id, gmem_ops[op].name,
				   gmem_ops[op].args, args, GMEM_DECODE_STRICT, gmem_ops[op].name);
	else if (r != -EMSGSIZE)
		die("gmem_build_request failed", gmem_ops[op].name);
	gmem_fields_release(gmem_ops[op].args, args);
}

static void fuzz_event(const struct gmem_envelope *env)
{
	alignas(max_align_t) char data[STRUCT_MAX];
	struct gmem_codec_error e = { 0 };
	enum gmem_wire_event ev = gmem_wire_event_from_name(env->name);
	char *buf;
	size_t len;

	if (ev == GMEM_WIRE_EVENT_INVALID)
		return;
	memset(data, 0, sizeof(data));
	int r = gmem_decode(gmem_events[ev].fields, env->body, data, 0, &e);
	if (r < 0) {
		check_error_message(&e, r);
		return;
	}
	seen.event = ev;
	payload_round_trip(gmem_events[ev].fields, data, 0, gmem_events[ev].name);
	r = gmem_build_event(ev, data, &buf, &len);
	if (r == 0)
		message_round_trip(buf, len, false, GMEM_MSG_EVENT, false, 0, gmem_events[ev].name,
				   gmem_events[ev].fields, data, 0, gmem_events[ev].name);
	else if (r != -EMSGSIZE)
		die("gmem_build_event failed", gmem_events[ev].name);
	gmem_fields_release(gmem_events[ev].fields, data);
}

static void fuzz_reply(const struct gmem_envelope *env)
{
	alignas(max_align_t) char reply[STRUCT_MAX];

	for (int op = 0; op < _GMEM_OP_MAX; op++) {
		struct gmem_codec_error e = { 0 };
		char *buf;
		size_t len;

		memset(reply, 0, sizeof(reply));
		int r = gmem_decode(gmem_ops[op].reply, env->body, reply, 0, &e);
		if (r < 0) {
			check_error_message(&e, r);
			continue;
		}
		seen.replies |= UINT64_C(1) << op;
		payload_round_trip(gmem_ops[op].reply, reply, 0, gmem_ops[op].name);
		r = gmem_build_reply(env->id, op, reply, &buf, &len);
		if (r == 0)
			message_round_trip(buf, len, false, GMEM_MSG_REPLY, true, env->id, NULL, gmem_ops[op].reply,
					   reply, 0, gmem_ops[op].name);
		else if (r != -EMSGSIZE)
			die("gmem_build_reply failed", gmem_ops[op].name);
		gmem_fields_release(gmem_ops[op].reply, reply);
	}
}

static void fuzz_error(const struct gmem_envelope *env)
{
	struct gmem_codec_error e = { 0 };
	struct json_object *root = NULL;
	struct gmem_envelope back;
	char *buf, capped[GMEM_TEXT_MAX];
	size_t len;

	if (env->err <= 0)
		die("an error envelope without a positive errno", env->err_name);
	/* What gmemd sends when it relays this error: the same errno, the message cut to 255 bytes. */
	int r = gmem_build_error(env->has_id, env->id, env->err, env->message, &buf, &len);
	if (r < 0)
		die("gmem_build_error failed", NULL);
	if (gmem_json_parse(buf, len, &root, &e) < 0 || gmem_envelope_parse_incoming(root, &back, &e) < 0) {
		fprintf(stderr, "fuzz-codec: built %s\n", buf);
		die("a built error does not read back", e.msg);
	}
	gmem_utf8_copy(capped, sizeof(capped), env->message);
	if (back.kind != GMEM_MSG_ERROR || back.has_id != env->has_id || (env->has_id && back.id != env->id) ||
	    back.err != env->err || strcmp(back.message, capped) != 0) {
		fprintf(stderr, "fuzz-codec: built %s\n", buf);
		die("a built error reads back different", NULL);
	}
	json_object_put(root);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool checked;
	struct gmem_codec_error e = { 0 };
	struct json_object *root = (struct json_object *)&e; /* must not be written on failure */
	struct gmem_envelope env;

	if (!checked) {
		for (int i = 0; i < _GMEM_OP_MAX; i++)
			if (gmem_ops[i].args_size > STRUCT_MAX || gmem_ops[i].reply_size > STRUCT_MAX)
				die("an op struct outgrew STRUCT_MAX", gmem_ops[i].name);
		for (int i = 0; i < _GMEM_WIRE_EVENT_MAX; i++)
			if (gmem_events[i].size > STRUCT_MAX)
				die("an event struct outgrew STRUCT_MAX", gmem_events[i].name);
		if (_GMEM_OP_MAX > 64 || _GMEM_WIRE_EVENT_MAX > 64)
			die("more ops than seen.replies has bits", NULL);
		checked = true;
	}
	seen.request_op = GMEM_OP_INVALID;
	seen.event = GMEM_WIRE_EVENT_INVALID;
	seen.replies = 0;

	int r = gmem_json_parse((const char *)data, size, &root, &e);
	if (r < 0) {
		if (root != (struct json_object *)&e)
			die("gmem_json_parse wrote *ret on failure", NULL);
		check_error_message(&e, r);
		return 0;
	}

	memset(&e, 0, sizeof(e));
	r = gmem_envelope_parse_request(root, &env, &e);
	if (r == 0)
		fuzz_request(&env);
	else
		check_error_message(&e, r);

	memset(&e, 0, sizeof(e));
	r = gmem_envelope_parse_incoming(root, &env, &e);
	if (r == 0) {
		switch (env.kind) {
		case GMEM_MSG_EVENT:
			fuzz_event(&env);
			break;
		case GMEM_MSG_REPLY:
			fuzz_reply(&env);
			break;
		case GMEM_MSG_ERROR:
			fuzz_error(&env);
			break;
		case GMEM_MSG_REQUEST:
			die("parse_incoming returned a request", NULL);
		}
	} else {
		check_error_message(&e, r);
	}
	json_object_put(root);
	return 0;
}

/* ---- seed checks (replay --check-seeds) ---- */

static uint64_t passed_ops, passed_events, passed_replies;

int fuzz_seed_check(const char *name, const uint8_t *data, size_t size, char *why, size_t whylen)
{
	int op = fuzz_match_name(name, "op-", _GMEM_OP_MAX, fuzz_op_name);
	int ev = fuzz_match_name(name, "event-", _GMEM_WIRE_EVENT_MAX, fuzz_event_name);
	int rop = fuzz_match_name(name, "reply-", _GMEM_OP_MAX, fuzz_op_name);

	LLVMFuzzerTestOneInput(data, size);
	if (op >= 0) {
		if (seen.request_op != op) {
			snprintf(why, whylen, "not a request whose args decode strictly as op '%s'", gmem_ops[op].name);
			return -1;
		}
		passed_ops |= UINT64_C(1) << op;
		return 0;
	}
	if (ev >= 0) {
		if (seen.event != ev) {
			snprintf(why, whylen, "not an event whose data decodes as '%s'", gmem_events[ev].name);
			return -1;
		}
		passed_events |= UINT64_C(1) << ev;
		return 0;
	}
	if (rop >= 0) {
		if (!(seen.replies & (UINT64_C(1) << rop))) {
			snprintf(why, whylen, "not a reply whose result decodes as the reply of '%s'", gmem_ops[rop].name);
			return -1;
		}
		passed_replies |= UINT64_C(1) << rop;
		return 0;
	}
	snprintf(why, whylen, "names no op, event or reply this codec knows");
	return -1;
}

int fuzz_seed_check_done(void)
{
	int r = 0;
	for (int i = 0; i < _GMEM_OP_MAX; i++) {
		if (!(passed_ops & (UINT64_C(1) << i))) {
			fprintf(stderr, "fuzz-codec: no passing seed op-%s.json\n", gmem_ops[i].name);
			r = -1;
		}
		if (!(passed_replies & (UINT64_C(1) << i))) {
			fprintf(stderr, "fuzz-codec: no passing seed reply-%s.json\n", gmem_ops[i].name);
			r = -1;
		}
	}
	for (int i = 0; i < _GMEM_WIRE_EVENT_MAX; i++)
		if (!(passed_events & (UINT64_C(1) << i))) {
			fprintf(stderr, "fuzz-codec: no passing seed event-%s.json\n", gmem_events[i].name);
			r = -1;
		}
	return r;
}
