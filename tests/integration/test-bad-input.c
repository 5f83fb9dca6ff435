/* SPDX-License-Identifier: MIT */
/*
 * Bad input from raw sockets (no libgmem in the way): garbage, truncated JSON, oversized datagrams,
 * unknown ops and fields, requests before hello, fds sent by a client (50 datagrams of 253 fds each),
 * a zero-length datagram, and clients that vanish mid-request. Each is answered or dropped as
 * PROTOCOL.md says; meanwhile a well-behaved libgmem client keeps working, and at the end gmemd holds
 * exactly the fds it held before.
 */
#include <errno.h>
#include <fcntl.h>
#include <gmem/gmem.h>
#include <json-c/json.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"

static struct gmemd d;

static int raw_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	memcpy(sa.sun_path, d.socket, strlen(d.socket) + 1);
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	return fd;
}

static void raw_send(int fd, const void *buf, size_t len)
{
	CHECK(send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len);
}

static void raw_sends(int fd, const char *s)
{
	raw_send(fd, s, strlen(s));
}

/* Receives one datagram and parses it; NULL on EOF. */
static struct json_object *raw_recv(int fd)
{
	static char buf[70000];
	struct pollfd p = { .fd = fd, .events = POLLIN };
	CHECK(poll(&p, 1, (int)(10000 * harness_scale())) == 1);
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
	CHECK(n >= 0);
	if (n == 0)
		return NULL;
	buf[n] = '\0';
	struct json_object *o = json_tokener_parse(buf);
	CHECK(o);
	return o;
}

/* Expects an error reply with errno name err and, if id >= 0, that id (id -1: JSON null). */
static void expect_error(int fd, const char *err, long long id)
{
	struct json_object *o = raw_recv(fd), *e, *n, *i;
	CHECK(o);
	if (!json_object_object_get_ex(o, "error", &e) || !json_object_object_get_ex(e, "errno", &n)) {
		fprintf(stderr, "expected an error %s, got %s\n", err, json_object_to_json_string(o));
		exit(1);
	}
	if (strcmp(json_object_get_string(n), err) != 0) {
		fprintf(stderr, "expected %s, got %s\n", err, json_object_to_json_string(o));
		exit(1);
	}
	CHECK(json_object_object_get_ex(o, "id", &i));
	if (id < 0)
		CHECK(i == NULL); /* JSON null */
	else
		CHECK_EQ(json_object_get_int64(i), id);
	json_object_put(o);
}

static void expect_result(int fd, long long id)
{
	struct json_object *o = raw_recv(fd), *r, *i;
	CHECK(o);
	if (!json_object_object_get_ex(o, "result", &r)) {
		fprintf(stderr, "expected a result, got %s\n", json_object_to_json_string(o));
		exit(1);
	}
	CHECK(json_object_object_get_ex(o, "id", &i));
	CHECK_EQ(json_object_get_int64(i), id);
	json_object_put(o);
}

static void expect_eof(int fd)
{
	CHECK(raw_recv(fd) == NULL);
}

static void hello(int fd)
{
	raw_sends(fd, "{\"id\":1,\"op\":\"hello\",\"args\":{\"version\":1,\"role\":\"vmm\"}}");
	expect_result(fd, 1);
}

static void test_malformed(void)
{
	int fd = raw_connect();
	char big[70000]; /* larger than GMEM_MSG_MAX (65536) */

	raw_sends(fd, "garbage \x01\x02");
	expect_error(fd, "EBADMSG", -1);
	raw_sends(fd, "{\"id\":7,\"op\":\"hel"); /* truncated */
	expect_error(fd, "EBADMSG", -1);
	raw_sends(fd, "{\"id\":8,\"op\":\"status\"} trailing");
	expect_error(fd, "EBADMSG", -1);
	raw_sends(fd, "[1,2,3]");
	expect_error(fd, "EBADMSG", -1);
	raw_sends(fd, "{\"id\":9,\"op\":\"\xff\xfe\"}"); /* bad UTF-8 */
	expect_error(fd, "EBADMSG", -1);
	raw_send(fd, "{\"id\":9,\0\"op\":1}", 17); /* NUL byte */
	expect_error(fd, "EBADMSG", -1);
	raw_sends(fd, "{\"id\":10,\"op\":\"status\",\"args\":{\"a\":[[[[[[[[[[[[1]]]]]]]]]]]]}}");
	expect_error(fd, "EBADMSG", -1);

	/* Oversized: the datagram is larger than the protocol allows. */
	memset(big, ' ', sizeof(big));
	memcpy(big, "{\"id\":11,\"op\":\"status\"}", 23);
	raw_send(fd, big, sizeof(big));
	expect_error(fd, "EMSGSIZE", -1);

	/* Envelope and op errors carry the request's id. */
	raw_sends(fd, "{\"id\":12,\"op\":\"status\"}");
	expect_error(fd, "EPROTO", 12); /* before hello */
	raw_sends(fd, "{\"id\":13,\"op\":\"hello\",\"args\":{\"version\":2,\"role\":\"vmm\"}}");
	expect_error(fd, "EPROTONOSUPPORT", 13);
	raw_sends(fd, "{\"id\":14,\"op\":\"hello\",\"args\":{\"version\":1,\"role\":\"king\"}}");
	expect_error(fd, "EINVAL", 14);
	hello(fd);
	raw_sends(fd, "{\"id\":15,\"op\":\"hello\",\"args\":{\"version\":1,\"role\":\"vmm\"}}");
	expect_error(fd, "EALREADY", 15);
	raw_sends(fd, "{\"id\":16,\"op\":\"fly\"}");
	expect_error(fd, "ENOSYS", 16);
	raw_sends(fd, "{\"id\":17,\"op\":\"create\",\"args\":{\"name\":\"x\",\"size\":4096,\"colour\":\"red\"}}");
	expect_error(fd, "EINVAL", 17);
	raw_sends(fd, "{\"id\":18,\"op\":\"create\",\"args\":{\"name\":\"x\",\"size\":\"4096\"}}");
	expect_error(fd, "EINVAL", 18);
	raw_sends(fd, "{\"id\":19,\"op\":\"create\",\"args\":{\"name\":\"x\",\"size\":-4096}}");
	expect_error(fd, "ERANGE", 19);
	raw_sends(fd, "{\"id\":20,\"op\":\"create\",\"args\":{\"name\":\"x\",\"size\":18446744073709551616}}");
	expect_error(fd, "ERANGE", 20);
	raw_sends(fd, "{\"id\":21,\"op\":\"create\",\"args\":{\"size\":4096}}");
	expect_error(fd, "EINVAL", 21);
	raw_sends(fd, "{\"id\":22,\"op\":\"attach\",\"args\":{\"name\":\"x\",\"offset\":0,\"length\":4096,"
		      "\"kind\":\"mmap\"}}");
	expect_error(fd, "ENOENT", 22);
	raw_sends(fd, "{\"op\":\"status\"}");
	expect_error(fd, "EINVAL", -1);
	raw_sends(fd, "{\"id\":-5,\"op\":\"status\"}");
	expect_error(fd, "EINVAL", -1);
	raw_sends(fd, "{\"id\":23,\"op\":\"status\",\"extra\":1}");
	expect_error(fd, "EINVAL", 23);

	/* After all that, the same connection still works. */
	raw_sends(fd, "{\"id\":24,\"op\":\"status\"}");
	expect_result(fd, 24);

	/* A zero-length datagram reads as end of stream: the connection ends (PROTOCOL.md). */
	raw_send(fd, "", 0);
	expect_eof(fd);
	close(fd);
}

static void test_fds_from_client(void)
{
	int fd = raw_connect();
	int fds[253];
	char buf[CMSG_SPACE(sizeof(fds))];
	memset(buf, 0, sizeof(buf)); /* cmsg padding goes to the kernel: no uninitialised bytes */

	for (int i = 0; i < 253; i++)
		CHECK((fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0);
	hello(fd);
	for (int k = 0; k < 50; k++) {
		char body[64];
		snprintf(body, sizeof(body), "{\"id\":%d,\"op\":\"status\"}", 100 + k);
		struct iovec iov = { .iov_base = body, .iov_len = strlen(body) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf,
				     .msg_controllen = sizeof(buf) };
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(fds));
		memcpy(CMSG_DATA(c), fds, sizeof(fds));
		CHECK(sendmsg(fd, &mh, MSG_NOSIGNAL) == (ssize_t)iov.iov_len);
		expect_error(fd, "EPROTO", 100 + k);
	}
	for (int i = 0; i < 253; i++)
		close(fds[i]);
	raw_sends(fd, "{\"id\":200,\"op\":\"status\"}");
	expect_result(fd, 200);
	close(fd);
}

static bool fds_back(void *arg)
{
	return proc_fd_count(d.pid) == *(int *)arg;
}

static void test_vanishing_clients(void)
{
	/* Requests sent, then the client goes without reading the replies. */
	for (int k = 0; k < 20; k++) {
		int fd = raw_connect();
		char body[128];
		raw_sends(fd, "{\"id\":1,\"op\":\"hello\",\"args\":{\"version\":1,\"role\":\"vmm\"}}");
		snprintf(body, sizeof(body), "{\"id\":2,\"op\":\"create\",\"args\":{\"name\":\"gone-%d\",\"size\":4096}}", k);
		raw_sends(fd, body);
		raw_sends(fd, "{\"id\":3,\"op\":\"open\",\"args\":{\"name\":\"gone-0\"}}");
		close(fd);
	}
	/* And one that connects and closes without a word. */
	close(raw_connect());
}

int main(void)
{
	gmemd_start(&d, NULL);
	struct gmem_client *good;
	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_VMM, &good), 0);
	CHECK_EQ(gmem_guest_create(good, "good", 1 << 20, 0, NULL), 0);
	int baseline = proc_fd_count(d.pid);
	CHECK(baseline > 0);

	test_malformed();
	printf("ok malformed datagrams answered, connection kept\n");
	test_fds_from_client();
	printf("ok 50 x 253 fds from a client refused and closed\n");
	test_vanishing_clients();
	printf("ok clients vanishing mid-request\n");

	/* The well-behaved client never noticed. */
	struct gmem_status s;
	CHECK_EQ(gmem_status(good, &s), 0);
	struct gmem_guest_info *gs;
	size_t n;
	CHECK_EQ(gmem_guest_list(good, &gs, &n), 0);
	CHECK(n >= 1 && strcmp(gs[0].name, "good") == 0);
	free(gs);
	/* A vanished client's requests may or may not have run (PROTOCOL.md, "Connections"): the daemon
	 * stops reading at the first reply it cannot deliver. Whatever ran is cleaned up here. */
	for (int k = 0; k < 20; k++) {
		char name[32];
		snprintf(name, sizeof(name), "gone-%d", k);
		int r = gmem_guest_destroy(good, name);
		CHECK(r == 0 || r == -ENOENT);
	}
	CHECK(wait_until(fds_back, &baseline, 5000));
	printf("ok gmemd holds %d fds, as before\n", proc_fd_count(d.pid));
	gmem_disconnect(good);
	CHECK_EQ(gmemd_stop(&d), 0);
	return 0;
}
