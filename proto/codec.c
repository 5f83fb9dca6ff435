/* SPDX-License-Identifier: MIT */
/*
 * codec: the table-driven JSON decoder/encoder. Everything a peer sends passes through gmem_decode,
 * so every bound (integer range, string length, element count, UTF-8, nesting) is enforced here once
 * rather than in each request handler.
 */
#include "codec.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gmem-proto.h"
#include "util.h"

_printf_(3, 4) static int fail(struct gmem_codec_error *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
		err->err = code;
	}
	return code;
}

static void *at(void *base, size_t off)
{
	return (char *)base + off;
}

static const void *cat(const void *base, size_t off)
{
	return (const char *)base + off;
}

static const struct gmem_field *find_field(const struct gmem_field *fields, const char *key)
{
	for (const struct gmem_field *f = fields; f->name; f++)
		if (strcmp(f->name, key) == 0)
			return f;
	return NULL;
}

/*
 * json-c clamps integers outside int64 to INT64_MAX (and stores values up to UINT64_MAX as unsigned),
 * so "in range" means: an integer whose signed and unsigned readings agree and are non-negative.
 */
static int get_u64(struct json_object *v, uint64_t *ret)
{
	if (!json_object_is_type(v, json_type_int))
		return -EINVAL;
	int64_t s = json_object_get_int64(v);
	uint64_t u = json_object_get_uint64(v);
	if (s < 0 || (uint64_t)s != u)
		return -ERANGE;
	*ret = u;
	return 0;
}

static int decode_string(const struct gmem_field *f, struct json_object *v, char *dst,
			 struct gmem_codec_error *err)
{
	if (!json_object_is_type(v, json_type_string))
		return fail(err, -EINVAL, "field '%s': expected a string", f->name);
	const char *s = json_object_get_string(v);
	size_t len = (size_t)json_object_get_string_len(v);
	if (strlen(s) != len)
		return fail(err, -EINVAL, "field '%s': contains a NUL character", f->name);
	if (len >= f->size)
		return fail(err, -ENAMETOOLONG, "field '%s': longer than %zu bytes", f->name, f->size - 1);
	if (len < f->min)
		return fail(err, -EINVAL, "field '%s': shorter than %llu bytes", f->name,
			    (unsigned long long)f->min);
	memcpy(dst, s, len + 1);
	return 0;
}

static int decode_value(const struct gmem_field *f, struct json_object *v, void *out, unsigned flags,
			struct gmem_codec_error *err)
{
	void *dst = at(out, f->offset);
	int r;

	switch (f->type) {
	case GMEM_FT_U64: {
		uint64_t u;
		r = get_u64(v, &u);
		if (r == -EINVAL)
			return fail(err, r, "field '%s': expected an integer", f->name);
		if (r < 0 || u < f->min || u > f->max)
			return fail(err, -ERANGE, "field '%s': out of range [%llu, %llu]", f->name,
				    (unsigned long long)f->min, (unsigned long long)f->max);
		*(uint64_t *)dst = u;
		return 0;
	}
	case GMEM_FT_BOOL:
		if (!json_object_is_type(v, json_type_boolean))
			return fail(err, -EINVAL, "field '%s': expected true or false", f->name);
		*(bool *)dst = json_object_get_boolean(v);
		return 0;
	case GMEM_FT_STRING:
		return decode_string(f, v, dst, err);
	case GMEM_FT_ENUM: {
		if (!json_object_is_type(v, json_type_string))
			return fail(err, -EINVAL, "field '%s': expected a string", f->name);
		const char *s = json_object_get_string(v);
		for (int i = 0; f->names[i]; i++)
			if (strcmp(f->names[i], s) == 0) {
				*(int *)dst = i;
				return 0;
			}
		return fail(err, -EINVAL, "field '%s': unknown value", f->name);
	}
	case GMEM_FT_FLAGS: {
		if (!json_object_is_type(v, json_type_array))
			return fail(err, -EINVAL, "field '%s': expected an array of strings", f->name);
		size_t n = json_object_array_length(v);
		if (n > GMEM_FLAGS_MAX)
			return fail(err, -E2BIG, "field '%s': more than %d entries", f->name, GMEM_FLAGS_MAX);
		uint32_t bits = 0;
		for (size_t i = 0; i < n; i++) {
			struct json_object *e = json_object_array_get_idx(v, i);
			if (!json_object_is_type(e, json_type_string))
				return fail(err, -EINVAL, "field '%s': expected an array of strings", f->name);
			/* Unknown names are how a newer peer offers what we do not know: skip them. */
			for (int b = 0; f->names[b] && b < 32; b++)
				if (strcmp(f->names[b], json_object_get_string(e)) == 0)
					bits |= UINT32_C(1) << b;
		}
		*(uint32_t *)dst = bits;
		return 0;
	}
	case GMEM_FT_ARRAY: {
		if (!json_object_is_type(v, json_type_array))
			return fail(err, -EINVAL, "field '%s': expected an array", f->name);
		size_t n = json_object_array_length(v);
		if (n > f->max)
			return fail(err, -E2BIG, "field '%s': more than %llu elements", f->name,
				    (unsigned long long)f->max);
		char *elems = n ? calloc(n, f->size) : NULL;
		if (n && !elems)
			return fail(err, -ENOMEM, "out of memory");
		for (size_t i = 0; i < n; i++) {
			struct json_object *e = json_object_array_get_idx(v, i);
			/* gmem_decode reads NULL as {}: an element that is null must not slip through that way. */
			r = json_object_is_type(e, json_type_object)
				    ? gmem_decode(f->sub, e, elems + i * f->size, flags, err)
				    : fail(err, -EINVAL, "field '%s': element %zu is not an object", f->name, i);
			if (r < 0) {
				for (size_t j = 0; j < i; j++)
					gmem_fields_release(f->sub, elems + j * f->size);
				free(elems);
				return r;
			}
		}
		*(void **)dst = elems;
		*(size_t *)at(out, f->count_offset) = n;
		return 0;
	}
	case GMEM_FT_OBJECT:
		if (!json_object_is_type(v, json_type_object))
			return fail(err, -EINVAL, "field '%s': expected an object", f->name);
		return gmem_decode(f->sub, v, dst, flags, err);
	}
	return fail(err, -EINVAL, "field '%s': bad table", f->name);
}

int gmem_decode(const struct gmem_field *fields, struct json_object *obj, void *out, unsigned flags,
		struct gmem_codec_error *err)
{
	int r;

	if (!obj)
		obj = NULL;
	else if (!json_object_is_type(obj, json_type_object))
		return fail(err, -EINVAL, "expected an object");

	if (obj && (flags & GMEM_DECODE_STRICT)) {
		json_object_object_foreach(obj, key, val) {
			(void)val;
			if (!find_field(fields, key)) {
				char quoted[65]; /* cut on a character boundary: the error goes back as JSON */
				gmem_utf8_copy(quoted, sizeof(quoted), key);
				return fail(err, -EINVAL, "unknown field '%s'", quoted);
			}
		}
	}

	for (const struct gmem_field *f = fields; f->name; f++) {
		struct json_object *v = NULL;
		if (!obj || !json_object_object_get_ex(obj, f->name, &v)) {
			if (f->flags & GMEM_F_REQUIRED) {
				r = fail(err, -EINVAL, "missing field '%s'", f->name);
				goto out_release;
			}
			continue;
		}
		r = decode_value(f, v, out, flags, err);
		if (r < 0)
			goto out_release;
	}
	return 0;

out_release:
	gmem_fields_release(fields, out);
	return r;
}

void gmem_fields_release(const struct gmem_field *fields, void *obj)
{
	for (const struct gmem_field *f = fields; f->name; f++) {
		if (f->type == GMEM_FT_OBJECT)
			gmem_fields_release(f->sub, at(obj, f->offset));
		if (f->type != GMEM_FT_ARRAY)
			continue;
		char *elems = *(char **)at(obj, f->offset);
		size_t n = *(size_t *)at(obj, f->count_offset);
		for (size_t i = 0; elems && i < n; i++)
			gmem_fields_release(f->sub, elems + i * f->size);
		free(elems);
		*(void **)at(obj, f->offset) = NULL;
		*(size_t *)at(obj, f->count_offset) = 0;
	}
}

static bool is_empty(const struct gmem_field *f, const void *in)
{
	const void *src = cat(in, f->offset);
	switch (f->type) {
	case GMEM_FT_U64:
		return *(const uint64_t *)src == 0;
	case GMEM_FT_BOOL:
		return !*(const bool *)src;
	case GMEM_FT_STRING:
		return !*(const char *)src;
	case GMEM_FT_ENUM:
		return *(const int *)src == 0;
	case GMEM_FT_FLAGS:
		return *(const uint32_t *)src == 0;
	case GMEM_FT_ARRAY:
		return *(const size_t *)cat(in, f->count_offset) == 0;
	case GMEM_FT_OBJECT:
		return false;
	}
	return false;
}

static struct json_object *encode_value(const struct gmem_field *f, const void *in)
{
	const void *src = cat(in, f->offset);
	struct json_object *v = NULL;

	switch (f->type) {
	case GMEM_FT_U64:
		return json_object_new_uint64(*(const uint64_t *)src);
	case GMEM_FT_BOOL:
		return json_object_new_boolean(*(const bool *)src);
	case GMEM_FT_STRING:
		return json_object_new_string(src);
	case GMEM_FT_ENUM:
		return json_object_new_string(f->names[*(const int *)src]);
	case GMEM_FT_FLAGS: {
		uint32_t bits = *(const uint32_t *)src;
		v = json_object_new_array();
		for (int b = 0; v && f->names[b] && b < 32; b++)
			if (bits & (UINT32_C(1) << b))
				json_object_array_add(v, json_object_new_string(f->names[b]));
		return v;
	}
	case GMEM_FT_ARRAY: {
		const char *elems = *(char *const *)src;
		size_t n = *(const size_t *)cat(in, f->count_offset);
		v = json_object_new_array_ext((int)n);
		for (size_t i = 0; v && i < n; i++) {
			struct json_object *e;
			if (gmem_encode(f->sub, elems + i * f->size, &e) < 0) {
				json_object_put(v);
				return NULL;
			}
			json_object_array_add(v, e);
		}
		return v;
	}
	case GMEM_FT_OBJECT:
		return gmem_encode(f->sub, src, &v) < 0 ? NULL : v;
	}
	return NULL;
}

int gmem_encode(const struct gmem_field *fields, const void *in, struct json_object **ret)
{
	struct json_object *obj = json_object_new_object();
	if (!obj)
		return -ENOMEM;
	for (const struct gmem_field *f = fields; f->name; f++) {
		if ((f->flags & GMEM_F_OMIT_EMPTY) && is_empty(f, in))
			continue;
		struct json_object *v = encode_value(f, in);
		if (!v || json_object_object_add(obj, f->name, v) < 0) {
			json_object_put(v);
			json_object_put(obj);
			return -ENOMEM;
		}
	}
	*ret = obj;
	return 0;
}

void gmem_utf8_copy(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);
	if (n >= size) {
		n = size - 1;
		/* Back off over continuation bytes (10xxxxxx) and the lead byte they belong to. */
		while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/*
 * Strict UTF-8 (RFC 3629): json-c's own check accepts overlong forms, surrogates and code points past
 * U+10FFFF. Returns the offset of the first bad byte, or len.
 */
static size_t utf8_invalid_at(const unsigned char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp, min;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return i;
		}
		if (len - i <= n)
			return i;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += n + 1;
	}
	return len;
}

/* The \u0000 escape puts a NUL inside a key or string, which C strings would silently cut short. */
static bool has_nul_escape(const char *s, size_t len)
{
	bool in_string = false;
	for (size_t i = 0; i < len; i++) {
		if (!in_string) {
			in_string = s[i] == '"';
		} else if (s[i] == '"') {
			in_string = false;
		} else if (s[i] == '\\') {
			if (i + 5 < len && s[i + 1] == 'u' && memcmp(s + i + 2, "0000", 4) == 0)
				return true;
			i++; /* skip the escaped character */
		}
	}
	return false;
}

/* json-c counts the innermost value as a level too, so the tokener is allowed one more and the real
 * nesting of containers is measured here. */
static int depth_of(struct json_object *o)
{
	int d = 0;
	if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, k, v) {
			(void)k;
			d = MAX(d, depth_of(v));
		}
		return d + 1;
	}
	if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++)
			d = MAX(d, depth_of(json_object_array_get_idx(o, i)));
		return d + 1;
	}
	return 0;
}

int gmem_json_parse(const char *buf, size_t len, struct json_object **ret, struct gmem_codec_error *err)
{
	if (len == 0)
		return fail(err, -EBADMSG, "empty message");
	if (memchr(buf, '\0', len))
		return fail(err, -EBADMSG, "message contains a NUL byte");
	size_t bad = utf8_invalid_at((const unsigned char *)buf, len);
	if (bad < len)
		return fail(err, -EBADMSG, "invalid UTF-8 at byte %zu", bad);
	if (has_nul_escape(buf, len))
		return fail(err, -EBADMSG, "message contains an escaped NUL (\\u0000)");

	struct json_tokener *tok = json_tokener_new_ex(GMEM_JSON_DEPTH + 1);
	if (!tok)
		return fail(err, -ENOMEM, "out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);

	int r = 0;
	struct json_object *obj = json_tokener_parse_ex(tok, buf, (int)len);
	enum json_tokener_error e = json_tokener_get_error(tok);
	if (!obj) {
		/* json_tokener_continue: the datagram ended inside a value, i.e. a truncated message. */
		r = fail(err, -EBADMSG, "not JSON: %s at byte %zu",
			 e == json_tokener_continue ? "message ends early" : json_tokener_error_desc(e),
			 json_tokener_get_parse_end(tok));
	} else if (json_tokener_get_parse_end(tok) != len) {
		r = fail(err, -EBADMSG, "trailing data after the JSON value at byte %zu",
			 json_tokener_get_parse_end(tok));
	} else if (!json_object_is_type(obj, json_type_object)) {
		r = fail(err, -EBADMSG, "message is not a JSON object");
	} else if (depth_of(obj) > GMEM_JSON_DEPTH) {
		r = fail(err, -EBADMSG, "nesting too deep (more than %d levels)", GMEM_JSON_DEPTH);
	}
	json_tokener_free(tok);
	if (r < 0) {
		json_object_put(obj);
		return r;
	}
	*ret = obj;
	return 0;
}
