/* SPDX-License-Identifier: MIT */
/*
 * A hostile client, with real processes, while a well-behaved one works.
 *
 * A good client (a child process, libgmem, the vmm lease holder of its own guest and a participant of its
 * own conversions) writes a pattern into its mapped guest, converts the range to private and back to
 * shared, and checks the pattern after each step, over and over, until the hostile part is done. Every
 * one of its conversions must commit and no byte may change.
 *
 * Meanwhile, from raw sockets (no libgmem in the way):
 *   - a table of malformed requests (wrong JSON types, huge and negative numbers, overflowing and
 *     unaligned ranges, ranges past the end, unknown ops and keys, deep nesting, 64 KiB strings, ...),
 *     each answered with the errno PROTOCOL.md gives it, on a connection that keeps working; the inputs
 *     test-bad-input.c already sends are not repeated here;
 *   - descriptors attached to a request that would succeed: refused, and the request not carried out;
 *   - 1,000 connections at once, each saying hello;
 *   - a participant that never reads its socket: conversions it takes part in abort, a burst of
 *     converts past the per-connection limit is EAGAIN, and once its unread replies pass 4 MiB gmemd
 *     drops it;
 *   - a request flood on one connection, every reply matched to its id;
 *   - a refusal whose reason is full of terminal escapes: what gmemd logs and what gmemctl prints has no
 *     control character left in it, and gmemctl --json gives the reason back intact.
 *
 * "test-hostile escape" runs only the last; "test-hostile escape-control" runs it against gmemd-rawtext
 * and gmemctl-rawtext (built with -DGMEM_TEST_RAW_TEXT, which turns the escaping off) and passes only if
 * the check catches them.
 */
#include <errno.h>
#include <fcntl.h>
#include <gmem/gmem.h>
#include <json-c/json.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"

#define KiB 1024ULL
#define MiB (1024ULL * KiB)
#define GOOD_SIZE (4 * MiB)
#define GOOD_CHUNK (256 * KiB)
#define N_CONNS 1000
#define N_FLOOD 5000
#define N_CONVERTS 16 /* GMEM_CONVERTS_MAX */
#define RUNS_SIZE (8 * MiB)

static struct gmemd d;

/* ---- raw sockets ---- */

static int raw_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	memcpy(sa.sun_path, d.socket, strlen(d.socket) + 1);
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	return fd;
}

static void raw_send(int fd, const char *s)
{
	size_t len = strlen(s);
	CHECK(send(fd, s, len, MSG_NOSIGNAL) == (ssize_t)len);
}

/* One datagram, parsed; NULL on EOF. */
static struct json_object *raw_recv(int fd, int64_t timeout_ms)
{
	static char buf[70000];
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int64_t deadline = harness_deadline(timeout_ms);
	int r;
	do
		r = poll(&p, 1, (int)(deadline - harness_now_ms() > 0 ? deadline - harness_now_ms() : 0));
	while (r < 0 && errno == EINTR);
	if (r != 1) {
		fprintf(stderr, "hostile: no datagram within %lld ms\n", (long long)timeout_ms);
		exit(1);
	}
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	struct json_object *o = json_tokener_parse(buf);
	CHECK(o);
	return o;
}

static const char *errno_of(struct json_object *o)
{
	struct json_object *e, *n;
	if (!json_object_object_get_ex(o, "error", &e) || !json_object_object_get_ex(e, "errno", &n))
		return NULL;
	return json_object_get_string(n);
}

/* The reply's id: >= 0, -1 for JSON null, -2 when absent. */
static long long id_of(struct json_object *o)
{
	struct json_object *i;
	if (!json_object_object_get_ex(o, "id", &i))
		return -2;
	return i ? json_object_get_int64(i) : -1;
}

static struct json_object *expect_result(int fd, long long id)
{
	struct json_object *o = raw_recv(fd, 10000), *r;
	CHECK(o);
	if (!json_object_object_get_ex(o, "result", &r) || id_of(o) != id) {
		fprintf(stderr, "hostile: expected the result of %lld, got %s\n", id, json_object_to_json_string(o));
		exit(1);
	}
	return o;
}

static void request_ok(int fd, long long id, const char *json)
{
	raw_send(fd, json);
	json_object_put(expect_result(fd, id));
}

static void hello(int fd, const char *role)
{
	char buf[128];
	snprintf(buf, sizeof(buf), "{\"id\":1,\"op\":\"hello\",\"args\":{\"version\":1,\"role\":\"%s\"}}", role);
	request_ok(fd, 1, buf);
}

/* ---- the good client ---- */

static int good_prepared, good_committed;

static void good_prepare(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	(void)ud;
	good_prepared++;
	if (gmem_vote(c, cv->epoch, cv->seq, true, 0, NULL) < 0)
		fprintf(stderr, "good: vote failed: %s\n", gmem_last_error(c));
}

static void good_commit(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	(void)ud;
	good_committed++;
	if (gmem_ack(c, cv->epoch, cv->seq) < 0)
		fprintf(stderr, "good: ack failed: %s\n", gmem_last_error(c));
}

static const struct gmem_participant_ops good_ops = { .prepare = good_prepare, .commit = good_commit };

static unsigned char pattern(unsigned cycle, uint64_t i)
{
	return (unsigned char)(cycle * 131u + (unsigned)(i * 7u) + (unsigned)(i >> 12));
}

static int convert_one(struct gmem_client *c, uint64_t off, enum gmem_target t)
{
	struct gmem_range r = { off, GOOD_CHUNK };
	struct gmem_convert_result res;
	int e = gmem_convert(c, "good", &r, 1, t, 0, &res);
	if (e < 0) {
		fprintf(stderr, "good: convert refused: %s (%s)\n", strerror(-e), gmem_last_error(c));
		return -1;
	}
	int ok = res.outcome == GMEM_COMMITTED && res.changed == GOOD_CHUNK;
	if (!ok)
		fprintf(stderr, "good: conversion ended %d, %llu bytes changed\n", res.outcome,
			(unsigned long long)res.changed);
	gmem_convert_result_free(&res);
	return ok ? 0 : -1;
}

/* Converts one chunk after another until the parent says stop (and at least 3 cycles ran); reports
 * "ok CYCLES" on success. Any refused or aborted conversion, or a changed byte, is a failure. */
static int good_child(struct child_io *io, void *arg)
{
	struct gmem_client *c;
	int fd;
	(void)arg;

	if (gmem_connect(d.socket, GMEM_ROLE_VMM, &c) < 0 || gmem_guest_create(c, "good", GOOD_SIZE, 0, NULL) < 0 ||
	    gmem_guest_open(c, "good", &fd, NULL) < 0 || gmem_lease(c, "good") < 0 ||
	    gmem_attach(c, "good", 0, GOOD_SIZE, GMEM_ATTACH_KVM, NULL) < 0)
		return 10;
	gmem_set_participant(c, &good_ops, NULL);
	unsigned char *mem = mmap(NULL, GOOD_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED)
		return 11;
	unsigned cycle = 0;
	for (;;) {
		uint64_t off = (cycle % (GOOD_SIZE / GOOD_CHUNK)) * GOOD_CHUNK;
		for (uint64_t i = 0; i < GOOD_CHUNK; i++)
			mem[off + i] = pattern(cycle, off + i);
		if (convert_one(c, off, GMEM_PRIVATE) < 0 || convert_one(c, off, GMEM_SHARED) < 0)
			return 12;
		for (uint64_t i = 0; i < GOOD_CHUNK; i++)
			if (mem[off + i] != pattern(cycle, off + i)) {
				fprintf(stderr, "good: byte %llu changed in cycle %u\n", (unsigned long long)(off + i), cycle);
				return 13;
			}
		if (++cycle == 1)
			msg_send(io->out, "running");
		struct pollfd p = { .fd = io->in, .events = POLLIN };
		if (cycle >= 3 && poll(&p, 1, 0) == 1)
			break;
	}
	/* Every chunk that was written is where it was written. */
	for (unsigned k = cycle > GOOD_SIZE / GOOD_CHUNK ? cycle - GOOD_SIZE / GOOD_CHUNK : 0; k < cycle; k++) {
		uint64_t off = (k % (GOOD_SIZE / GOOD_CHUNK)) * GOOD_CHUNK;
		for (uint64_t i = 0; i < GOOD_CHUNK; i += 4093)
			if (mem[off + i] != pattern(k, off + i))
				return 14;
	}
	struct gmem_run *runs;
	size_t n;
	uint64_t priv;
	if (gmem_map(c, "good", &runs, &n, NULL, &priv) < 0 || priv != 0)
		return 15;
	free(runs);
	if (good_prepared != 2 * (int)cycle || good_committed != 2 * (int)cycle)
		return 16;
	char line[64];
	snprintf(line, sizeof(line), "ok %u", cycle);
	msg_send(io->out, line);
	munmap(mem, GOOD_SIZE);
	close(fd);
	gmem_disconnect(c);
	return 0;
}

/* ---- the table of malformed requests ---- */

struct bad {
	const char *what;
	const char *json; /* NULL: build() makes it */
	void (*build)(char *buf, size_t size);
	const char *err;
	long long id; /* the id the error must carry; -1: null */
};

static void big_name(char *buf, size_t size)
{
	/* A name of ~65,000 bytes: the datagram just fits, the field does not. */
	int n = snprintf(buf, size, "{\"id\":200,\"op\":\"create\",\"args\":{\"size\":4096,\"name\":\"");
	size_t len = (size_t)n;
	while (len < 65000)
		buf[len++] = 'n';
	snprintf(buf + len, size - len, "\"}}");
}

static void big_op(char *buf, size_t size)
{
	int n = snprintf(buf, size, "{\"id\":201,\"op\":\"");
	size_t len = (size_t)n;
	while (len < 65000)
		buf[len++] = 'o';
	snprintf(buf + len, size - len, "\"}");
}

static void big_reason(char *buf, size_t size)
{
	int n = snprintf(buf, size, "{\"id\":202,\"op\":\"vote\",\"args\":{\"epoch\":1,\"seq\":1,\"vote\":\"no\",\"reason\":\"");
	size_t len = (size_t)n;
	while (len < 65000)
		buf[len++] = 'r';
	snprintf(buf + len, size - len, "\"}}");
}

static void deep_array(char *buf, size_t size)
{
	size_t len = (size_t)snprintf(buf, size, "{\"id\":203,\"op\":\"status\",\"args\":{\"a\":");
	for (int i = 0; i < 20000; i++)
		buf[len++] = '[';
	for (int i = 0; i < 20000; i++)
		buf[len++] = ']';
	snprintf(buf + len, size - len, "}}");
}

static void deep_objects(char *buf, size_t size)
{
	/* Nine levels of objects: one past GMEM_JSON_DEPTH, each level a valid-looking key. */
	size_t len = (size_t)snprintf(buf, size, "{\"id\":204,\"op\":\"status\",\"args\":");
	for (int i = 0; i < 8; i++)
		len += (size_t)snprintf(buf + len, size - len, "{\"k\":");
	len += (size_t)snprintf(buf + len, size - len, "1");
	for (int i = 0; i < 8; i++)
		buf[len++] = '}';
	snprintf(buf + len, size - len, "}");
}

static void too_many_ranges(char *buf, size_t size)
{
	size_t len = (size_t)snprintf(buf, size, "{\"id\":205,\"op\":\"convert\",\"args\":{\"name\":\"h\",\"target\":\"private\",\"ranges\":[");
	for (int i = 0; i < 1025; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s{\"offset\":0,\"length\":4096}", i ? "," : "");
	snprintf(buf + len, size - len, "]}}");
}

static void huge_digits(char *buf, size_t size)
{
	size_t len = (size_t)snprintf(buf, size, "{\"id\":206,\"op\":\"create\",\"args\":{\"name\":\"x\",\"size\":");
	for (int i = 0; i < 4000; i++)
		buf[len++] = '9';
	snprintf(buf + len, size - len, "}}");
}

static void many_features(char *buf, size_t size)
{
	size_t len = (size_t)snprintf(buf, size, "{\"id\":207,\"op\":\"hello\",\"args\":{\"version\":1,\"role\":\"vmm\",\"features\":[");
	for (int i = 0; i < 33; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s\"f%d\"", i ? "," : "", i);
	snprintf(buf + len, size - len, "]}}");
}

#define ATTACH(id, off, len, kind)                                                                       \
	"{\"id\":" #id ",\"op\":\"attach\",\"args\":{\"name\":\"h\",\"offset\":" off ",\"length\":" len     \
	",\"kind\":\"" kind "\"}}"
#define CONVERT(id, ranges, extra)                                                                       \
	"{\"id\":" #id ",\"op\":\"convert\",\"args\":{\"name\":\"h\",\"ranges\":" ranges ",\"target\":\"private\"" extra "}}"

/* Guest "h" is 1 MiB with a 4 KiB granule, owned by the hostile connection's uid. */
static const struct bad bad_inputs[] = {
	/* wrong JSON types */
	{ "id is a string", "{\"id\":\"7\",\"op\":\"status\"}", NULL, "EINVAL", -1 },
	{ "op is a number", "{\"id\":101,\"op\":5}", NULL, "EINVAL", 101 },
	{ "op is null", "{\"id\":102,\"op\":null}", NULL, "EINVAL", 102 },
	{ "args is an array", "{\"id\":103,\"op\":\"create\",\"args\":[1]}", NULL, "EINVAL", 103 },
	{ "args is a string", "{\"id\":104,\"op\":\"create\",\"args\":\"x\"}", NULL, "EINVAL", 104 },
	{ "args is null", "{\"id\":105,\"op\":\"status\",\"args\":null}", NULL, "EINVAL", 105 },
	{ "a name that is a number", "{\"id\":106,\"op\":\"create\",\"args\":{\"name\":5,\"size\":4096}}", NULL,
	  "EINVAL", 106 },
	{ "a size that is a boolean", "{\"id\":107,\"op\":\"create\",\"args\":{\"name\":\"x\",\"size\":true}}", NULL,
	  "EINVAL", 107 },
	{ "a size with a fraction", "{\"id\":108,\"op\":\"create\",\"args\":{\"name\":\"x\",\"size\":4096.0}}", NULL,
	  "EINVAL", 108 },
	{ "a size with an exponent", "{\"id\":109,\"op\":\"create\",\"args\":{\"name\":\"x\",\"size\":4e3}}", NULL,
	  "EINVAL", 109 },
	{ "ranges is an object", CONVERT(110, "{\"offset\":0}", ""), NULL, "EINVAL", 110 },
	{ "a range that is a number", CONVERT(111, "[1]", ""), NULL, "EINVAL", 111 },
	{ "a vote that is neither yes nor no",
	  "{\"id\":112,\"op\":\"vote\",\"args\":{\"epoch\":1,\"seq\":1,\"vote\":\"maybe\"}}", NULL, "EINVAL", 112 },
	/* huge numbers */
	{ "id 2^63", "{\"id\":9223372036854775808,\"op\":\"status\"}", NULL, "EINVAL", -1 },
	{ "size 2^63", "{\"id\":113,\"op\":\"create\",\"args\":{\"name\":\"x\",\"size\":9223372036854775808}}", NULL,
	  "ERANGE", 113 },
	{ "size just past 2^62", "{\"id\":114,\"op\":\"create\",\"args\":{\"name\":\"x\",\"size\":4611686018427392000}}",
	  NULL, "ERANGE", 114 },
	{ "a size of 4,000 digits", NULL, huge_digits, "ERANGE", 206 },
	{ "size 2^62: larger than the pool", "{\"id\":115,\"op\":\"create\",\"args\":{\"name\":\"x\",\"size\":4611686018427387904}}",
	  NULL, "ENOSPC", 115 },
	{ "offset 2^64-1", ATTACH(116, "18446744073709551615", "4096", "mmap"), NULL, "ERANGE", 116 },
	/* negative and overflowing offsets and lengths */
	{ "a negative offset", ATTACH(117, "-4096", "4096", "mmap"), NULL, "ERANGE", 117 },
	{ "a negative length", ATTACH(118, "0", "-4096", "mmap"), NULL, "ERANGE", 118 },
	{ "a zero length", ATTACH(119, "0", "0", "mmap"), NULL, "ERANGE", 119 },
	{ "offset 2^63-1", ATTACH(120, "9223372036854775807", "4096", "mmap"), NULL, "ERANGE", 120 },
	{ "offset + length = 2^63", ATTACH(121, "4611686018427387904", "4611686018427387904", "mmap"), NULL,
	  "ERANGE", 121 },
	{ "a list cursor of -1", "{\"id\":122,\"op\":\"list\",\"args\":{\"after\":-1}}", NULL, "ERANGE", 122 },
	{ "detach id 0", "{\"id\":123,\"op\":\"detach\",\"args\":{\"id\":0}}", NULL, "ERANGE", 123 },
	/* ranges past the end, unaligned ranges */
	{ "an attach past the end", ATTACH(124, "1044480", "8192", "mmap"), NULL, "ERANGE", 124 },
	{ "an attach at the end", ATTACH(125, "1048576", "4096", "mmap"), NULL, "ERANGE", 125 },
	{ "an unaligned offset", ATTACH(126, "100", "4096", "mmap"), NULL, "EINVAL", 126 },
	{ "an unaligned length", ATTACH(127, "0", "4097", "mmap"), NULL, "EINVAL", 127 },
	{ "a convert past the end", CONVERT(128, "[{\"offset\":1044480,\"length\":8192}]", ""), NULL, "ERANGE", 128 },
	{ "an unaligned convert", CONVERT(129, "[{\"offset\":512,\"length\":4096}]", ""), NULL, "EINVAL", 129 },
	{ "a convert with no ranges", CONVERT(130, "[]", ""), NULL, "EINVAL", 130 },
	{ "1,025 ranges", NULL, too_many_ranges, "E2BIG", 205 },
	{ "a map cursor inside a granule", "{\"id\":131,\"op\":\"map\",\"args\":{\"name\":\"h\",\"offset\":100}}", NULL,
	  "EINVAL", 131 },
	{ "granule 8192", "{\"id\":132,\"op\":\"create\",\"args\":{\"name\":\"x\",\"size\":8192,\"granule\":8192}}", NULL,
	  "EINVAL", 132 },
	/* unknown ops, keys and values */
	{ "an unknown op of 65,000 bytes", NULL, big_op, "ENOSYS", 201 },
	{ "an unknown key inside a range", CONVERT(133, "[{\"offset\":0,\"length\":4096,\"colour\":1}]", ""), NULL,
	  "EINVAL", 133 },
	{ "an unknown attach kind", ATTACH(134, "0", "4096", "gpu"), NULL, "EINVAL", 134 },
	{ "an unknown target", "{\"id\":135,\"op\":\"convert\",\"args\":{\"name\":\"h\",\"ranges\":[{\"offset\":0,"
	  "\"length\":4096}],\"target\":\"purple\"}}", NULL, "EINVAL", 135 },
	{ "force on memfd", CONVERT(136, "[{\"offset\":0,\"length\":4096}]", ",\"force\":true"), NULL, "EOPNOTSUPP", 136 },
	{ "a grant to uid 99999999999", "{\"id\":137,\"op\":\"grant\",\"args\":{\"name\":\"h\",\"who\":\"uid:99999999999\","
	  "\"role\":\"device\"}}", NULL, "EINVAL", 137 },
	{ "a guest name with a path", "{\"id\":138,\"op\":\"create\",\"args\":{\"name\":\"../etc\",\"size\":4096}}", NULL,
	  "EINVAL", 138 },
	{ "33 feature names", NULL, many_features, "E2BIG", 207 },
	{ "a vote on a conversion that never was",
	  "{\"id\":139,\"op\":\"vote\",\"args\":{\"epoch\":1,\"seq\":1,\"vote\":\"yes\"}}", NULL, "ESTALE", 139 },
	{ "an ack of another epoch", "{\"id\":140,\"op\":\"ack\",\"args\":{\"epoch\":0,\"seq\":99}}", NULL, "ESTALE", 140 },
	{ "a detach of another's attachment", "{\"id\":141,\"op\":\"detach\",\"args\":{\"id\":99999}}", NULL, "ENOENT", 141 },
	/* deep nesting */
	{ "20,000 nested arrays", NULL, deep_array, "EBADMSG", -1 },
	{ "9 nested objects", NULL, deep_objects, "EBADMSG", -1 },
	/* 64 KiB strings */
	{ "a guest name of 65,000 bytes", NULL, big_name, "ENAMETOOLONG", 200 },
	{ "a reason of 65,000 bytes", NULL, big_reason, "ENAMETOOLONG", 202 },
	/* strings the codec must not let through */
	{ "an escaped NUL", "{\"id\":142,\"op\":\"create\",\"args\":{\"name\":\"a\\u0000b\",\"size\":4096}}", NULL,
	  "EBADMSG", -1 },
	{ "an encoded surrogate", "{\"id\":143,\"op\":\"status\",\"args\":{\"x\":\"\xed\xa0\x80\"}}", NULL, "EBADMSG", -1 },
};

static void test_table(int fd)
{
	static char buf[70000];
	size_t n = sizeof(bad_inputs) / sizeof(bad_inputs[0]);

	for (size_t i = 0; i < n; i++) {
		const struct bad *b = &bad_inputs[i];
		if (b->build)
			b->build(buf, sizeof(buf));
		else
			snprintf(buf, sizeof(buf), "%s", b->json);
		raw_send(fd, buf);
		struct json_object *o = raw_recv(fd, 10000);
		if (!o) {
			fprintf(stderr, "hostile: %s: gmemd closed the connection\n", b->what);
			exit(1);
		}
		const char *e = errno_of(o);
		if (!e || strcmp(e, b->err) != 0 || id_of(o) != b->id) {
			fprintf(stderr, "hostile: %s: expected %s with id %lld, got %.300s\n", b->what, b->err, b->id,
				json_object_to_json_string(o));
			exit(1);
		}
		printf("  %-40s -> %s\n", b->what, e);
		json_object_put(o);
	}
	/* The same connection still works. */
	request_ok(fd, 300, "{\"id\":300,\"op\":\"status\"}");
	printf("ok %zu malformed requests, each answered as PROTOCOL.md says\n", n);
}

/* ---- descriptors from a client ---- */

static void test_fds_attached(int fd)
{
	const char *body = "{\"id\":400,\"op\":\"create\",\"args\":{\"name\":\"fdguest\",\"size\":4096}}";
	int mfd = memfd_create("hostile", MFD_CLOEXEC);
	char cbuf[CMSG_SPACE(sizeof(int))];
	CHECK(mfd >= 0);
	memset(cbuf, 0, sizeof(cbuf));
	struct iovec iov = { .iov_base = (void *)body, .iov_len = strlen(body) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &mfd, sizeof(int));
	CHECK(sendmsg(fd, &mh, MSG_NOSIGNAL) == (ssize_t)iov.iov_len);
	close(mfd);
	struct json_object *o = raw_recv(fd, 10000);
	CHECK(o && errno_of(o) && strcmp(errno_of(o), "EPROTO") == 0 && id_of(o) == 400);
	json_object_put(o);
	/* Refused means not carried out: the guest it asked for does not exist. */
	raw_send(fd, "{\"id\":401,\"op\":\"open\",\"args\":{\"name\":\"fdguest\"}}");
	o = raw_recv(fd, 10000);
	CHECK(o && errno_of(o) && strcmp(errno_of(o), "ENOENT") == 0);
	json_object_put(o);
	printf("ok a memfd attached to a create: EPROTO, and nothing created\n");
}

/* ---- 1,000 connections ---- */

static uint64_t clients_now(int fd)
{
	raw_send(fd, "{\"id\":500,\"op\":\"status\"}");
	struct json_object *o = expect_result(fd, 500), *r, *n;
	CHECK(json_object_object_get_ex(o, "result", &r) && json_object_object_get_ex(r, "clients", &n));
	uint64_t v = (uint64_t)json_object_get_int64(n);
	json_object_put(o);
	return v;
}

struct clients_arg {
	int fd;
	uint64_t want;
};

static bool clients_are(void *arg)
{
	struct clients_arg *a = arg;
	return clients_now(a->fd) == a->want;
}

static void test_connections(int h)
{
	static int fds[N_CONNS];
	static struct pollfd p[N_CONNS];
	uint64_t before = clients_now(h);
	int64_t t0 = harness_now_ms();

	for (int i = 0; i < N_CONNS; i++)
		fds[i] = raw_connect();
	for (int i = 0; i < N_CONNS; i++)
		raw_send(fds[i], "{\"id\":1,\"op\":\"hello\",\"args\":{\"version\":1,\"role\":\"device\"}}");
	int answered = 0;
	int64_t deadline = harness_deadline(30000);
	for (int i = 0; i < N_CONNS; i++)
		p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
	while (answered < N_CONNS) {
		CHECK(harness_now_ms() < deadline);
		int r = poll(p, N_CONNS, 100);
		CHECK(r >= 0);
		for (int i = 0; i < N_CONNS && r > 0; i++) {
			if (!p[i].revents)
				continue;
			json_object_put(expect_result(fds[i], 1));
			p[i].fd = -1;
			answered++;
		}
	}
	CHECK_EQ(clients_now(h), before + N_CONNS);
	printf("ok %d connections at once, each answered hello (%lld ms)\n", N_CONNS,
	       (long long)(harness_now_ms() - t0));
	for (int i = 0; i < N_CONNS; i++)
		close(fds[i]);
	struct clients_arg a = { h, before };
	CHECK(wait_until(clients_are, &a, 30000));
}

/* ---- a participant that never reads ---- */

static void test_slow_participant(int h)
{
	static char buf[70000];
	/* A guest whose map is 800 runs a page: each map reply is ~40 KB. */
	request_ok(h, 600, "{\"id\":600,\"op\":\"create\",\"args\":{\"name\":\"runs\",\"size\":8388608}}");
	size_t len = (size_t)snprintf(buf, sizeof(buf),
				      "{\"id\":601,\"op\":\"convert\",\"args\":{\"name\":\"runs\",\"target\":\"private\",\"ranges\":[");
	for (int i = 0; i < 1024; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s{\"offset\":%d,\"length\":4096}", i ? "," : "",
					i * 8192);
	snprintf(buf + len, sizeof(buf) - len, "]}}");
	request_ok(h, 601, buf);
	request_ok(h, 602, "{\"id\":602,\"op\":\"create\",\"args\":{\"name\":\"slow\",\"size\":1048576}}");

	int nr = raw_connect();
	hello(nr, "device");
	request_ok(nr, 2, "{\"id\":2,\"op\":\"attach\",\"args\":{\"name\":\"slow\",\"offset\":0,\"length\":4096,\"kind\":\"mmap\"}}");
	/* From here on nr reads nothing. */

	int rq = raw_connect();
	hello(rq, "vmm");
	for (int i = 1; i <= N_CONVERTS + 1; i++) {
		snprintf(buf, sizeof(buf), "{\"id\":%d,\"op\":\"convert\",\"args\":{\"name\":\"slow\",\"ranges\":"
			 "[{\"offset\":0,\"length\":4096}],\"target\":\"%s\"}}", 100 + i, i % 2 ? "private" : "shared");
		raw_send(rq, buf);
	}
	bool answered[N_CONVERTS + 2] = { false };
	int n_answered = 0, n_aborted = 0;
	bool eagain = false;
	struct json_object *o;

	/* The one past the limit is refused at once; the others wait for the participant. */
	while (!eagain) {
		o = raw_recv(rq, 10000);
		CHECK(o);
		long long id = id_of(o) - 100;
		CHECK(id >= 1 && id <= N_CONVERTS + 1 && !answered[id]);
		answered[id] = true;
		if (id == N_CONVERTS + 1) {
			CHECK(errno_of(o) && strcmp(errno_of(o), "EAGAIN") == 0);
			eagain = true;
		} else {
			n_answered++;
		}
		json_object_put(o);
	}
	printf("ok convert %d of one connection: EAGAIN\n", N_CONVERTS + 1);

	/* The participant asks for ~40 KB replies and never reads them: past 4 MiB gmemd lets it go. */
	int sent = 0;
	for (; sent < 2000; sent++) {
		snprintf(buf, sizeof(buf), "{\"id\":%d,\"op\":\"map\",\"args\":{\"name\":\"runs\"}}", 1000 + sent);
		if (send(nr, buf, strlen(buf), MSG_NOSIGNAL) < 0)
			break;
		struct pollfd p = { .fd = nr, .events = 0 };
		if (poll(&p, 1, 0) == 1 && (p.revents & POLLHUP))
			break;
	}
	struct pollfd p = { .fd = nr, .events = 0 };
	int64_t deadline = harness_deadline(30000);
	while (!(poll(&p, 1, 100) == 1 && (p.revents & POLLHUP)))
		CHECK(harness_now_ms() < deadline);
	printf("ok a client that never reads was dropped after %d unread map replies\n", sent);
	close(nr);

	/* Every accepted convert is answered once: the first aborts (its participant never voted), the
	 * rest commit without it. */
	while (n_answered < N_CONVERTS) {
		o = raw_recv(rq, 30000);
		CHECK(o);
		long long id = id_of(o) - 100;
		CHECK(id >= 1 && id <= N_CONVERTS && !answered[id]);
		answered[id] = true;
		n_answered++;
		struct json_object *r, *oc;
		CHECK(json_object_object_get_ex(o, "result", &r) && json_object_object_get_ex(r, "outcome", &oc));
		if (strcmp(json_object_get_string(oc), "aborted") == 0) {
			struct json_object *refs, *ref, *gone = NULL, *to = NULL;
			CHECK(json_object_object_get_ex(r, "refusals", &refs) && json_object_array_length(refs) == 1);
			ref = json_object_array_get_idx(refs, 0);
			/* false flags are omitted on the wire */
			json_object_object_get_ex(ref, "gone", &gone);
			json_object_object_get_ex(ref, "timed_out", &to);
			CHECK(json_object_get_boolean(gone) || json_object_get_boolean(to));
			n_aborted++;
		} else {
			CHECK(strcmp(json_object_get_string(oc), "committed") == 0);
		}
		json_object_put(o);
	}
	CHECK(n_aborted >= 1);
	printf("ok its %d conversions: %d aborted without its vote, the rest committed without it\n", N_CONVERTS,
	       n_aborted);
	close(rq);
	request_ok(h, 603, "{\"id\":603,\"op\":\"destroy\",\"args\":{\"name\":\"runs\"}}");
	request_ok(h, 604, "{\"id\":604,\"op\":\"destroy\",\"args\":{\"name\":\"slow\"}}");
}

/* ---- a request flood ---- */

static void test_flood(void)
{
	int fd = raw_connect();
	char buf[64];
	int sent = 0, got = 0;
	int64_t t0 = harness_now_ms();

	hello(fd, "vmm");
	/* As fast as the socket takes them, up to 256 ahead of the replies; replies come in order. */
	while (got < N_FLOOD) {
		while (sent < N_FLOOD && sent - got < 256) {
			snprintf(buf, sizeof(buf), "{\"id\":%d,\"op\":\"status\"}", 10 + sent);
			if (send(fd, buf, strlen(buf), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
				CHECK(errno == EAGAIN);
				break;
			}
			sent++;
		}
		json_object_put(expect_result(fd, 10 + got));
		got++;
	}
	printf("ok a flood of %d requests on one connection, every one answered in order (%lld ms)\n", N_FLOOD,
	       (long long)(harness_now_ms() - t0));
	close(fd);
}

/* ---- terminal escapes in a reason ---- */

/* The reason as the participant means it, and as it writes it in JSON. */
#define EVIL "\x1b[2J\x1b]0;owned\x07\r\ngmemd: notice: FAKE\xc2\x9b" "31m\x7f end"
#define EVIL_JSON "\\u001b[2J\\u001b]0;owned\\u0007\\r\\ngmemd: notice: FAKE\\u009b31m\\u007f end"

static bool control_mode;
static int caught;

/* Whether text holds a byte that could drive a terminal (newlines end lines, they are fine). */
static bool dirty(const char *text)
{
	for (const unsigned char *s = (const unsigned char *)text; *s; s++)
		if ((*s < 0x20 && *s != '\n') || *s == 0x7f || (*s == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f))
			return true;
	return false;
}

static void check_clean(const char *what, const char *text)
{
	if (!dirty(text) && !strstr(text, "\ngmemd: notice: FAKE"))
		return;
	if (control_mode) {
		printf("control: caught control characters in %s\n", what);
		caught++;
		return;
	}
	fprintf(stderr, "hostile: %s holds control characters or a forged line:\n%s\n", what, text);
	exit(1);
}

static int refuser(struct child_io *io, void *arg)
{
	int fd = raw_connect();
	char buf[1024];
	(void)arg;
	hello(fd, "device");
	request_ok(fd, 2, "{\"id\":2,\"op\":\"attach\",\"args\":{\"name\":\"esc\",\"offset\":0,\"length\":4096,\"kind\":\"mmap\"}}");
	msg_send(io->out, "attached");
	for (int votes = 0; votes < 2;) {
		struct json_object *o = raw_recv(fd, 60000), *ev, *data, *epoch, *seq;
		if (!o)
			return 20;
		if (json_object_object_get_ex(o, "event", &ev) && strcmp(json_object_get_string(ev), "prepare") == 0) {
			CHECK(json_object_object_get_ex(o, "data", &data) && json_object_object_get_ex(data, "epoch", &epoch) &&
			      json_object_object_get_ex(data, "seq", &seq));
			snprintf(buf, sizeof(buf), "{\"id\":%d,\"op\":\"vote\",\"args\":{\"epoch\":%lld,\"seq\":%lld,"
				 "\"vote\":\"no\",\"errno\":\"EBUSY\",\"reason\":\"%s\"}}", 10 + votes,
				 (long long)json_object_get_int64(epoch), (long long)json_object_get_int64(seq), EVIL_JSON);
			raw_send(fd, buf);
			votes++;
		} else if (!json_object_object_get_ex(o, "event", &ev) && !json_object_object_get_ex(o, "result", &data)) {
			fprintf(stderr, "refuser: %s\n", json_object_to_json_string(o));
			return 21;
		}
		json_object_put(o);
	}
	close(fd);
	return 0;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	CHECK(f);
	static char buf[4 << 20];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void test_escapes(int h)
{
	struct child ch;
	char *out, *err;

	/* A client name must be name-shaped: an escape in it is refused before anything shows it. */
	int fd = raw_connect();
	raw_send(fd, "{\"id\":1,\"op\":\"hello\",\"args\":{\"version\":1,\"role\":\"vmm\",\"client_name\":\"a\\u001b[2J\"}}");
	struct json_object *o = raw_recv(fd, 10000);
	CHECK(o && errno_of(o) && strcmp(errno_of(o), "EINVAL") == 0 && id_of(o) == 1);
	json_object_put(o);
	close(fd);

	request_ok(h, 700, "{\"id\":700,\"op\":\"create\",\"args\":{\"name\":\"esc\",\"size\":65536}}");
	child_start(&ch, refuser, NULL);
	msg_expect(ch.from_child, "attached", 30000);

	const char *text[] = { binary("GMEMCTL"), "--socket", d.socket, "convert", "esc", "0", "4096", "private", NULL };
	int st = run_capture(text, &out, &err);
	if (st != 3 || !strstr(out, "FAKE")) {
		fprintf(stderr, "hostile: gmemctl convert exited %d:\n%s\n%s\n", st, out, err);
		exit(1);
	}
	check_clean("gmemctl's output", out);
	check_clean("gmemctl's errors", err);
	free(out);
	free(err);

	const char *json[] = { binary("GMEMCTL"), "--socket", d.socket, "--json", "convert", "esc", "0", "4096", "private", NULL };
	st = run_capture(json, &out, &err);
	CHECK_EQ(st, 3);
	struct json_object *j = json_tokener_parse(out), *refs, *reason;
	CHECK(j && json_object_object_get_ex(j, "refusals", &refs) && json_object_array_length(refs) == 1);
	CHECK(json_object_object_get_ex(json_object_array_get_idx(refs, 0), "reason", &reason));
	CHECK(strcmp(json_object_get_string(reason), EVIL) == 0); /* JSON carries it intact, escaped */
	check_clean("gmemctl --json", out);
	json_object_put(j);
	free(out);
	free(err);
	CHECK_EQ(child_wait(&ch), 0);

	/* gmemd logged both refusals, reason and all, on lines of their own. */
	char *log = read_file(d.log);
	CHECK(strstr(log, "refused: EBUSY"));
	check_clean("gmemd's log", log);
	request_ok(h, 701, "{\"id\":701,\"op\":\"destroy\",\"args\":{\"name\":\"esc\"}}");
	printf("ok a reason full of terminal escapes: logged and printed escaped, intact in --json\n");
}

static bool fds_back(void *arg)
{
	return proc_fd_count(d.pid) == *(int *)arg;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "all";
	struct rlimit rl;
	struct child good;

	/* 1,000 sockets at once: more than the usual soft limit. */
	CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	rl.rlim_cur = rl.rlim_max;
	CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
	CHECK(rl.rlim_cur > N_CONNS + 64);
	/* A generous prepare timeout: the good client must never lose a vote to a busy machine. */
	gmemd_start(&d, (const char *[]){ "--log-level", "info", "--prepare-timeout", "5000", NULL });

	if (strcmp(mode, "escape") == 0 || strcmp(mode, "escape-control") == 0) {
		control_mode = strcmp(mode, "escape-control") == 0;
		int h = raw_connect();
		hello(h, "vmm");
		test_escapes(h);
		close(h);
		CHECK_EQ(gmemd_stop(&d), 0);
		if (control_mode) {
			/* gmemctl's text and --json output and gmemd's log: each must have been caught. */
			printf("control: %d of 3 unescaped outputs caught\n", caught);
			return caught == 3 ? 0 : 1;
		}
		return 0;
	}
	CHECK(strcmp(mode, "all") == 0);

	child_start(&good, good_child, NULL);
	msg_expect(good.from_child, "running", 60000);
	int baseline = proc_fd_count(d.pid);

	int h = raw_connect();
	hello(h, "vmm");
	request_ok(h, 2, "{\"id\":2,\"op\":\"create\",\"args\":{\"name\":\"h\",\"size\":1048576}}");
	test_table(h);
	test_fds_attached(h);
	test_connections(h);
	test_slow_participant(h);
	test_flood();
	test_escapes(h);
	request_ok(h, 3, "{\"id\":3,\"op\":\"destroy\",\"args\":{\"name\":\"h\"}}");
	close(h);
	/* Everything the hostile clients made is gone again: gmemd holds the fds it held before. */
	CHECK(wait_until(fds_back, &baseline, 10000));

	/* The good client worked through all of it. */
	char line[64];
	msg_send(good.to_child, "stop");
	CHECK(msg_recv(good.from_child, line, sizeof(line), 120000));
	CHECK(strncmp(line, "ok ", 3) == 0);
	CHECK_EQ(child_wait(&good), 0);
	printf("ok the good client converted %s chunk(s) there and back meanwhile, every byte intact\n", line + 3);
	CHECK_EQ(gmemd_stop(&d), 0);
	return 0;
}
