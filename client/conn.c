/* SPDX-License-Identifier: MIT */
/*
 * conn: the connection under a libgmem handle — connect and hello, the synchronous call, the event
 * queue and dispatch. One stable pollable fd (an epoll set holding the socket and an eventfd) lets a
 * caller's loop wait on us even when the events it must see were already read by a synchronous call.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "envelope.h"
#include "internal.h"
#include "util.h"
#include "wire.h"

#define GMEM_EXPORT __attribute__((visibility("default")))

static int set_err(struct gmem_client *c, int err, const char *msg)
{
	gmem_utf8_copy(c->err, sizeof(c->err), msg ? msg : "");
	return err;
}

int64_t gmem_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on the socket; deadline < 0 means none. Return: 0 when ready, -ETIMEDOUT, -errno. */
static int wait_sock(struct gmem_client *c, short events, int64_t deadline)
{
	struct pollfd p = { .fd = c->sock, .events = events };
	for (;;) {
		int t = -1;
		if (deadline >= 0) {
			int64_t left = deadline - gmem_now_ms();
			if (left <= 0)
				return -ETIMEDOUT;
			t = left > INT32_MAX ? INT32_MAX : (int)left;
		}
		int n = poll(&p, 1, t);
		if (n > 0)
			return 0;
		if (n == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return negative_errno();
	}
}

int gmem_wait_readable(struct gmem_client *c, int64_t deadline_ms)
{
	return wait_sock(c, POLLIN, deadline_ms);
}

static struct queued_event *queue_item(struct gmem_client *c, int type, struct json_object *data,
				       struct pending_call *call)
{
	struct queued_event *q = calloc(1, sizeof(*q));
	if (!q) {
		free(call);
		return NULL; /* lost to OOM; the caller learns of it from the next call's failure */
	}
	q->type = type;
	q->call = call;
	q->data = data ? json_object_get(data) : NULL;
	if (c->evq_tail)
		c->evq_tail->next = q;
	else
		c->evq_head = q;
	c->evq_tail = q;
	uint64_t one = 1;
	(void)!write(c->evfd, &one, sizeof(one));
	return q;
}

void gmem_queue(struct gmem_client *c, int type, struct json_object *data, struct pending_call *call)
{
	(void)queue_item(c, type, data, call);
}

void gmem_queue_doubt(struct gmem_client *c, const struct rc_doubt *d, int outcome)
{
	struct queued_event *q = queue_item(c, GMEM_QEV_DOUBT, NULL, NULL);
	if (q) {
		q->doubt = *d;
		q->doubt.next = NULL;
		q->outcome = outcome;
	}
}

/*
 * Reads one datagram. Events are queued; a reply or error is returned in ret_root and env (the caller
 * owns root) with its fd. Return: 1 reply/error, 2 event queued, -EAGAIN nothing there, -errno.
 */
static int read_one(struct gmem_client *c, struct json_object **ret_root, struct gmem_envelope *env, int *ret_fd)
{
	struct gmem_wire_in in;
	struct json_object *root = NULL;
	int fd = -EBADF;

	int r = gmem_wire_recv(c->sock, c->buf, GMEM_MSG_MAX, &fd, 1, MSG_DONTWAIT, &in);
	if (r == -ECONNRESET) {
		/* The kernel reports a reset (gmemd closed with our requests unread) ahead of the datagrams
		 * still queued for us, and clears it: read on, gmemd's last word may be why it closed. */
		c->closed = true;
		r = gmem_wire_recv(c->sock, c->buf, GMEM_MSG_MAX, &fd, 1, MSG_DONTWAIT, &in);
		if (r == -EAGAIN || r == 0 || r == -ECONNRESET)
			return set_err(c, -ECONNRESET, "gmemd closed the connection");
	}
	if (r == -EAGAIN)
		return r;
	if (r == 0) {
		c->closed = true;
		return set_err(c, -ECONNRESET, "gmemd closed the connection");
	}
	if (r < 0)
		return r;
	if (in.truncated || in.ctrunc || in.nfds > 1) {
		if (in.nfds == 1)
			safe_close(fd);
		return set_err(c, -EBADMSG, "gmemd sent a malformed datagram");
	}
	if (gmem_json_parse(c->buf, in.len, &root, NULL) < 0 || gmem_envelope_parse_incoming(root, env, NULL) < 0) {
		if (in.nfds)
			safe_close(fd);
		if (root)
			json_object_put(root);
		return set_err(c, -EBADMSG, "gmemd sent a message this libgmem cannot read");
	}
	if (env->kind == GMEM_MSG_EVENT) {
		enum gmem_wire_event ev = gmem_wire_event_from_name(env->name);
		/* Events newer than this library are not ours to understand: skip them. */
		if (ev != GMEM_WIRE_EVENT_INVALID)
			gmem_queue(c, ev, env->body, NULL);
		if (in.nfds)
			safe_close(fd);
		json_object_put(root);
		return 2;
	}
	/* A deferred answer (convert): it waits in the queue, in order with the events around it. */
	for (struct pending_call **p = &c->pending; env->has_id && *p; p = &(*p)->next) {
		if ((*p)->id != env->id)
			continue;
		struct pending_call *call = *p;
		*p = call->next;
		call->next = NULL;
		gmem_queue(c, GMEM_WIRE_EVENT_INVALID, root, call);
		if (in.nfds)
			safe_close(fd);
		json_object_put(root);
		return 2;
	}
	*ret_root = root;
	*ret_fd = in.nfds ? fd : -EBADF;
	return 1;
}

int gmem_call(struct gmem_client *c, enum gmem_op op, const void *args, void *reply, int *ret_fd)
{
	int64_t deadline = c->timeout_ms < 0 ? -1 : gmem_now_ms() + c->timeout_ms;
	uint64_t id = ++c->next_id;
	char *buf;
	size_t len;
	int r;

	c->err[0] = '\0';
	if (c->reconnecting)
		return set_err(c, -ENOTCONN, "gmemd went away; reconnecting");
	if (c->closed)
		return set_err(c, -ECONNRESET, "gmemd closed the connection");
	r = gmem_build_request(id, op, args, &buf, &len);
	if (r < 0)
		return r;
	for (;;) {
		r = gmem_wire_send(c->sock, buf, len, NULL, 0, MSG_DONTWAIT);
		if (r != -EAGAIN)
			break;
		r = wait_sock(c, POLLOUT, deadline);
		if (r < 0)
			break;
	}
	free(buf);
	if (r == -EPIPE || r == -ECONNRESET) {
		/* gmemd may have said why before it closed (a connection limit): that error is still queued. */
		for (;;) {
			struct json_object *root = NULL;
			struct gmem_envelope env;
			int fd = -EBADF;
			int k = read_one(c, &root, &env, &fd);
			if (k == 1) {
				safe_close(fd);
				bool why = env.kind == GMEM_MSG_ERROR && !env.has_id;
				int e = why ? set_err(c, -env.err, env.message) : 0;
				json_object_put(root);
				if (why)
					return e;
			} else if (k != 2) {
				break;
			}
		}
		return set_err(c, -ECONNRESET, "gmemd closed the connection");
	}
	if (r < 0)
		return r;

	for (;;) {
		struct json_object *root = NULL;
		struct gmem_envelope env;
		struct gmem_codec_error cerr;
		int fd = -EBADF;

		r = read_one(c, &root, &env, &fd);
		if (r == -EAGAIN) {
			r = wait_sock(c, POLLIN, deadline);
			if (r < 0)
				return r;
			continue;
		}
		if (r < 0)
			return r;
		if (r == 2)
			continue;
		if (!env.has_id || env.id != id) {
			/* An answer to a request we gave up on (timeout): not ours any more. An error without an id
			 * is about the connection itself (a limit): copy it before root, which owns it, goes. */
			bool about_us = !env.has_id && env.kind == GMEM_MSG_ERROR;
			int e = about_us ? set_err(c, -env.err, env.message) : 0;
			safe_close(fd);
			json_object_put(root);
			if (about_us)
				return e;
			continue;
		}
		if (env.kind == GMEM_MSG_ERROR) {
			r = set_err(c, -env.err, env.message);
		} else if ((r = gmem_decode(gmem_ops[op].reply, env.body, reply, 0, &cerr)) < 0) {
			r = set_err(c, -EBADMSG, cerr.msg);
		} else if (gmem_ops[op].flags & GMEM_OP_FD_REPLY) {
			if (fd < 0)
				r = set_err(c, -EBADMSG, "gmemd's reply carried no fd");
			else
				*ret_fd = TAKE_FD(fd);
		}
		safe_close(fd);
		json_object_put(root);
		return r;
	}
}

int gmem_call_async(struct gmem_client *c, enum gmem_op op, const void *args, gmem_convert_fn fn,
		    void *userdata, struct pending_call **ret)
{
	struct pending_call *call = calloc(1, sizeof(*call));
	char *buf;
	size_t len;
	int r;

	if (!call)
		return -ENOMEM;
	c->err[0] = '\0';
	if (c->reconnecting) {
		free(call);
		return set_err(c, -ENOTCONN, "gmemd went away; reconnecting");
	}
	if (c->closed) {
		free(call);
		return set_err(c, -ECONNRESET, "gmemd closed the connection");
	}
	call->id = ++c->next_id;
	call->op = op;
	call->fn = fn;
	call->userdata = userdata;
	r = gmem_build_request(call->id, op, args, &buf, &len);
	if (r < 0) {
		free(call);
		return r;
	}
	int64_t deadline = c->timeout_ms < 0 ? -1 : gmem_now_ms() + c->timeout_ms;
	while ((r = gmem_wire_send(c->sock, buf, len, NULL, 0, MSG_DONTWAIT)) == -EAGAIN)
		if ((r = wait_sock(c, POLLOUT, deadline)) < 0)
			break;
	free(buf);
	if (r < 0) {
		free(call);
		return r == -EPIPE ? set_err(c, -ECONNRESET, "gmemd closed the connection") : r;
	}
	call->next = c->pending;
	c->pending = call;
	if (ret)
		*ret = call;
	return 0;
}

GMEM_EXPORT int gmem_dispatch(struct gmem_client *c)
{
	int n = 0, r;
	uint64_t v;

	rc_tick(c);
	/* Drain the socket into the queue first, so events come out in arrival order. */
	for (;;) {
		if (c->reconnecting) {
			r = -EAGAIN;
			break;
		}
		struct json_object *root = NULL;
		struct gmem_envelope env;
		int fd = -EBADF;
		r = read_one(c, &root, &env, &fd);
		if (r < 0 && r != -EAGAIN && c->reconnect_max_ms) {
			rc_lost(c);
			r = -EAGAIN;
		}
		if (r == -EAGAIN || r < 0)
			break;
		if (r == 1) { /* a late answer to a call that timed out */
			safe_close(fd);
			json_object_put(root);
		}
	}
	while (c->evq_head) {
		struct queued_event *q = c->evq_head;
		c->evq_head = q->next;
		if (!c->evq_head)
			c->evq_tail = NULL;
		n++;
		gmem_deliver(c, q);
	}
	/* Cleared only now: events queued by calls made inside the callbacks were delivered by the loop
	 * above, so a readable eventfd would only wake the caller again for nothing. */
	(void)!read(c->evfd, &v, sizeof(v));
	if (r < 0 && r != -EAGAIN)
		return r;
	return n;
}

int gmem_hello(struct gmem_client *c, enum gmem_role role)
{
	/* Test-only: act as an older libgmem that knows none of these features (test-skew). */
	uint32_t off = gmem_features_parse(getenv("GMEM_TEST_FEATURES_OFF"));
	struct gmem_hello_args a = { .version = GMEM_PROTOCOL_VERSION, .role = (int)role,
				     .features = GMEM_FEATURES_ALL & ~off };
	struct gmem_hello_reply rep = { 0 };
	int r;

	const char *comm = program_invocation_short_name;
	if (comm && gmem_name_valid(comm))
		snprintf(a.client_name, sizeof(a.client_name), "%s", comm);
	r = gmem_call(c, GMEM_OP_HELLO, &a, &rep, NULL);
	if (r < 0)
		return r;
	c->features = rep.features & ~off;
	memcpy(c->server, rep.server, sizeof(c->server));
	memcpy(c->backend, rep.backend, sizeof(c->backend));
	c->enforcing = rep.enforcing;
	c->client_id = rep.client_id;
	return 0;
}

GMEM_EXPORT int gmem_connect(const char *path, enum gmem_role role, struct gmem_client **ret)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct gmem_client *c;
	int r;

	if (!ret || (unsigned)role > GMEM_ROLE_ADMIN)
		return -EINVAL;
	if (!path)
		path = getenv("GMEM_SOCKET");
	if (!path || !*path)
		path = GMEM_DEFAULT_SOCKET;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->sock = c->epfd = c->evfd = c->tfd = -EBADF;
	c->timeout_ms = -1;
	c->role = role;
	memcpy(c->path, sa.sun_path, sizeof(c->path));
	c->buf = malloc(GMEM_MSG_MAX);
	if (!c->buf) {
		r = -ENOMEM;
		goto fail;
	}
	c->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c->sock < 0 || connect(c->sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = negative_errno();
		goto fail;
	}
	/* Non-blocking after connect: connect itself should wait for a busy listen queue. */
	if (fcntl(c->sock, F_SETFL, O_NONBLOCK) < 0) {
		r = negative_errno();
		goto fail;
	}
	c->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (c->evfd < 0 || c->epfd < 0) {
		r = negative_errno();
		goto fail;
	}
	struct epoll_event e1 = { .events = EPOLLIN, .data.fd = c->sock };
	struct epoll_event e2 = { .events = EPOLLIN, .data.fd = c->evfd };
	if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->sock, &e1) < 0 || epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->evfd, &e2) < 0) {
		r = negative_errno();
		goto fail;
	}
	r = gmem_hello(c, role);
	if (r < 0)
		goto fail;
	*ret = c;
	return 0;

fail:
	gmem_disconnect(c);
	return r;
}

GMEM_EXPORT void gmem_disconnect(struct gmem_client *c)
{
	if (!c)
		return;
	while (c->evq_head) {
		struct queued_event *q = c->evq_head;
		c->evq_head = q->next;
		json_object_put(q->data);
		free(q->call);
		free(q);
	}
	while (c->pending) {
		struct pending_call *p = c->pending;
		c->pending = p->next;
		free(p);
	}
	rc_free_all(c);
	safe_close(c->sock);
	safe_close(c->epfd);
	safe_close(c->evfd);
	free(c->buf);
	free(c);
}

GMEM_EXPORT int gmem_get_fd(const struct gmem_client *c)
{
	return c->epfd;
}

GMEM_EXPORT void gmem_set_timeout(struct gmem_client *c, int timeout_ms)
{
	c->timeout_ms = timeout_ms < 0 ? -1 : timeout_ms;
}

GMEM_EXPORT const char *gmem_last_error(const struct gmem_client *c)
{
	return c->err;
}

GMEM_EXPORT void gmem_set_event_handler(struct gmem_client *c, gmem_event_fn fn, void *userdata)
{
	c->event_fn = fn;
	c->event_data = userdata;
}

GMEM_EXPORT const char *gmem_server_version(const struct gmem_client *c)
{
	return c->server;
}

GMEM_EXPORT const char *gmem_backend_name(const struct gmem_client *c)
{
	return c->backend;
}

GMEM_EXPORT bool gmem_backend_enforcing(const struct gmem_client *c)
{
	return c->enforcing;
}

GMEM_EXPORT uint64_t gmem_client_id(const struct gmem_client *c)
{
	return c->client_id;
}
