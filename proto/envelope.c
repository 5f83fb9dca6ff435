/* SPDX-License-Identifier: MIT */
/*
 * envelope: reading and writing the outer object of a datagram. The payload inside goes through the
 * op's field table (codec.c); here only the envelope's own keys are checked.
 */
#include "envelope.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errname.h"
#include "util.h"

static int env_fail(struct gmem_codec_error *err, int code, const char *msg)
{
	if (err) {
		err->err = code;
		snprintf(err->msg, sizeof(err->msg), "%s", msg);
	}
	return code;
}

static int read_id(struct json_object *v, uint64_t *ret)
{
	if (!json_object_is_type(v, json_type_int))
		return -EINVAL;
	int64_t s = json_object_get_int64(v);
	if (s < 0 || (uint64_t)s != json_object_get_uint64(v))
		return -ERANGE;
	*ret = (uint64_t)s;
	return 0;
}

int gmem_envelope_parse_request(struct json_object *root, struct gmem_envelope *env,
				struct gmem_codec_error *err)
{
	struct json_object *id = NULL, *op = NULL, *args = NULL;

	memset(env, 0, sizeof(*env));
	env->kind = GMEM_MSG_REQUEST;
	if (json_object_object_get_ex(root, "id", &id) && read_id(id, &env->id) == 0)
		env->has_id = true;

	json_object_object_foreach(root, key, val) {
		(void)val;
		if (strcmp(key, "id") && strcmp(key, "op") && strcmp(key, "args")) {
			char quoted[65], msg[128];
			gmem_utf8_copy(quoted, sizeof(quoted), key);
			snprintf(msg, sizeof(msg), "unknown top-level key '%s' in request", quoted);
			return env_fail(err, -EINVAL, msg);
		}
	}
	if (!env->has_id)
		return env_fail(err, -EINVAL, id ? "'id' must be an integer in [0, 2^63-1]" : "missing 'id'");
	if (!json_object_object_get_ex(root, "op", &op) || !json_object_is_type(op, json_type_string))
		return env_fail(err, -EINVAL, "missing or non-string 'op'");
	if (json_object_object_get_ex(root, "args", &args) && !json_object_is_type(args, json_type_object))
		return env_fail(err, -EINVAL, "'args' must be an object");
	env->name = json_object_get_string(op);
	env->body = args;
	return 0;
}

int gmem_envelope_parse_incoming(struct json_object *root, struct gmem_envelope *env,
				 struct gmem_codec_error *err)
{
	struct json_object *v = NULL, *e = NULL;

	memset(env, 0, sizeof(*env));
	if (json_object_object_get_ex(root, "event", &v)) {
		if (!json_object_is_type(v, json_type_string))
			return env_fail(err, -EBADMSG, "'event' must be a string");
		env->kind = GMEM_MSG_EVENT;
		env->name = json_object_get_string(v);
		if (json_object_object_get_ex(root, "data", &env->body) &&
		    !json_object_is_type(env->body, json_type_object))
			return env_fail(err, -EBADMSG, "'data' must be an object");
		return 0;
	}

	if (json_object_object_get_ex(root, "id", &v) && read_id(v, &env->id) == 0)
		env->has_id = true;

	if (json_object_object_get_ex(root, "error", &e)) {
		struct json_object *n = NULL, *m = NULL;
		if (!json_object_is_type(e, json_type_object) || !json_object_object_get_ex(e, "errno", &n) ||
		    !json_object_is_type(n, json_type_string))
			return env_fail(err, -EBADMSG, "malformed error");
		env->kind = GMEM_MSG_ERROR;
		env->err_name = json_object_get_string(n);
		env->err = gmem_errno_from_name(env->err_name);
		if (env->err == 0)
			env->err = EIO;
		env->message = "";
		if (json_object_object_get_ex(e, "message", &m) && json_object_is_type(m, json_type_string))
			env->message = json_object_get_string(m);
		return 0;
	}
	if (json_object_object_get_ex(root, "result", &env->body)) {
		if (!env->has_id || !json_object_is_type(env->body, json_type_object))
			return env_fail(err, -EBADMSG, "malformed reply");
		env->kind = GMEM_MSG_REPLY;
		return 0;
	}
	return env_fail(err, -EBADMSG, "neither a reply, an error nor an event");
}

/* Serialises and consumes root. */
static int finish(struct json_object *root, char **ret, size_t *ret_len)
{
	size_t len;
	const char *s = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN, &len);
	int r = 0;

	if (!s)
		r = -ENOMEM;
	else if (len > GMEM_MSG_MAX)
		r = -EMSGSIZE;
	else if (!(*ret = strndup(s, len)))
		r = -ENOMEM;
	else
		*ret_len = len;
	json_object_put(root);
	return r;
}

/* Wraps payload (consumed) under key in a new object that also carries an id (when with_id; a NULL id
 * is JSON null) and extra (consumed). */
static int wrap(struct json_object *payload, const char *key, bool with_id, struct json_object *id,
		const char *extra_key, struct json_object *extra, char **ret, size_t *ret_len)
{
	struct json_object *root = json_object_new_object();
	if (!root) {
		json_object_put(payload);
		json_object_put(id);
		json_object_put(extra);
		return -ENOMEM;
	}
	if (with_id)
		json_object_object_add(root, "id", id);
	if (extra_key)
		json_object_object_add(root, extra_key, extra);
	json_object_object_add(root, key, payload);
	return finish(root, ret, ret_len);
}

int gmem_build_request(uint64_t id, enum gmem_op op, const void *args, char **ret, size_t *ret_len)
{
	struct json_object *a;
	int r = gmem_encode(gmem_ops[op].args, args, &a);
	if (r < 0)
		return r;
	return wrap(a, "args", true, json_object_new_uint64(id), "op", json_object_new_string(gmem_ops[op].name), ret,
		    ret_len);
}

int gmem_build_reply(uint64_t id, enum gmem_op op, const void *reply, char **ret, size_t *ret_len)
{
	struct json_object *a;
	int r = gmem_encode(gmem_ops[op].reply, reply, &a);
	if (r < 0)
		return r;
	return wrap(a, "result", true, json_object_new_uint64(id), NULL, NULL, ret, ret_len);
}

int gmem_build_error(bool has_id, uint64_t id, int err, const char *message, char **ret, size_t *ret_len)
{
	const char *name = gmem_errno_name(err);
	struct json_object *e = json_object_new_object();
	char text[GMEM_TEXT_MAX];

	if (!e)
		return -ENOMEM;
	/* Messages may quote what a client sent: cap them so an error always fits in a datagram. */
	gmem_utf8_copy(text, sizeof(text), message ? message : "");
	json_object_object_add(e, "errno", json_object_new_string(name ? name : "EIO"));
	json_object_object_add(e, "message", json_object_new_string(text));
	return wrap(e, "error", true, has_id ? json_object_new_uint64(id) : NULL, NULL, NULL, ret,
		    ret_len);
}

int gmem_build_event(enum gmem_wire_event ev, const void *data, char **ret, size_t *ret_len)
{
	struct json_object *d;
	int r = gmem_encode(gmem_events[ev].fields, data, &d);
	if (r < 0)
		return r;
	return wrap(d, "data", false, NULL, "event", json_object_new_string(gmem_events[ev].name), ret, ret_len);
}
