/* SPDX-License-Identifier: MIT */
/*
 * client: a connection's lifecycle and I/O — identity at connect, reading datagrams (rejecting fds and
 * oversized ones before anything parses them), the output queue, and teardown. What a request means is
 * requests.c's business.
 */
#include "client.h"
#include "conversion.h"

#include <errno.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "delegation.h"
#include "envelope.h"
#include "guest.h"
#include "log.h"
#include "manager.h"
#include "util.h"
#include "wire.h"

#define CLIENT_READ_BATCH 32 /* datagrams per wake-up, so one busy client cannot starve the others */

struct outmsg {
	struct list_node node;
	char *buf; /* owned */
	size_t len;
	int fd; /* owned */
};

static void outmsg_free(struct outmsg *o)
{
	free(o->buf);
	safe_close(o->fd);
	free(o);
}

static int read_groups(int fd, gid_t **ret, size_t *ret_n)
{
	socklen_t len = 64 * sizeof(gid_t);
	for (;;) {
		gid_t *g = malloc(len ? len : sizeof(gid_t));
		if (!g)
			return -ENOMEM;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) == 0) {
			*ret = g;
			*ret_n = len / sizeof(gid_t);
			return 0;
		}
		free(g);
		/* ERANGE: len now says how much is needed. */
		if (errno != ERANGE)
			return negative_errno();
	}
}

static void on_read(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);

int client_new(struct manager *m, int fd, struct client **ret)
{
	struct client *c = calloc(1, sizeof(*c));
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	int r;

	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->m = m;
	c->fd = fd;
	c->pidfd = -EBADF;
	list_init(&c->node);
	list_init(&c->attachments);
	list_init(&c->holders);
	list_init(&c->outq);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
		r = negative_errno();
		goto out_free;
	}
	c->uid = cred.uid;
	c->gid = cred.gid;
	c->pid = cred.pid;
	r = read_groups(fd, &c->groups, &c->n_groups);
	if (r < 0)
		goto out_free;
	/* A pidfd, not the socket, tells when the process is gone: the socket may have been passed on. */
	c->pidfd = (int)syscall(SYS_pidfd_open, c->pid, 0);
	if (c->pidfd < 0)
		c->pidfd = -EBADF;

	c->read_ev = event_new(m->base, fd, EV_READ | EV_PERSIST, on_read, c);
	c->write_ev = event_new(m->base, fd, EV_WRITE | EV_PERSIST, on_write, c);
	if (!c->read_ev || !c->write_ev || event_add(c->read_ev, NULL) < 0) {
		r = -ENOMEM;
		goto out_free;
	}
	c->id = ++m->next_client_id;
	list_add_tail(&m->clients, &c->node);
	m->n_clients++;
	log_debug("client %llu connected: pid %d uid %u", (unsigned long long)c->id, c->pid, c->uid);
	*ret = c;
	return 0;

out_free:
	client_free(c);
	return r;
}

void client_forget_guest(struct client *c, struct guest *g)
{
	if (!g)
		delegation_client_gone(c->m, c);
	list_for_each_safe(pos, &c->attachments) {
		struct attachment *a = list_entry(pos, struct attachment, client_node);
		if (!g || a->guest == g)
			attachment_free(a);
	}
	list_for_each_safe(pos, &c->holders) {
		struct holder *h = list_entry(pos, struct holder, client_node);
		if (g && h->guest != g)
			continue;
		list_del(&h->client_node);
		list_del(&h->guest_node);
		h->guest->n_files -= h->files;
		free(h->file_ids);
		free(h);
	}
	/* Leases are found from the guest side; a client holds at most a handful. */
	struct guest_table *t = &c->m->guests;
	list_for_each(pos, &t->order) {
		struct guest *x = list_entry(pos, struct guest, order);
		if (x->lease == c && (!g || x == g))
			x->lease = NULL;
	}
}

void client_free(struct client *c)
{
	if (!c)
		return;
	if (c->m && !c->dead) {
		client_forget_guest(c, NULL);
		if (!list_empty(&c->node)) {
			list_del(&c->node);
			c->m->n_clients--;
		}
	} else {
		list_del(&c->node); /* off the dead list */
	}
	list_for_each_safe(pos, &c->outq)
		outmsg_free(list_entry(pos, struct outmsg, node));
	if (c->read_ev)
		event_free(c->read_ev);
	if (c->write_ev)
		event_free(c->write_ev);
	safe_close(c->fd);
	safe_close(c->pidfd);
	free(c->groups);
	free(c);
}

void client_kill(struct client *c, const char *why)
{
	if (c->dead)
		return;
	log_debug("client %llu (pid %d) dropped: %s", (unsigned long long)c->id, c->pid, why);
	c->dead = true;
	event_del(c->read_ev);
	event_del(c->write_ev);
	conversion_client_leaving(c->m, c);
	/* Give up what it held now, so other clients see it gone at once; memory is freed by the reaper. */
	client_forget_guest(c, NULL);
	list_del(&c->node);
	c->m->n_clients--;
	list_add_tail(&c->m->dead, &c->node);
	event_active(c->m->reap_ev, EV_TIMEOUT, 0);
}

static int send_one(struct client *c, const char *buf, size_t len, int fd)
{
	return gmem_wire_send(c->fd, buf, len, fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0, MSG_DONTWAIT);
}

int client_send(struct client *c, char *buf, size_t len, int fd)
{
	int r;

	if (c->dead) {
		free(buf);
		safe_close(fd);
		return -ENOTCONN;
	}
	if (list_empty(&c->outq)) {
		r = send_one(c, buf, len, fd);
		if (r != -EAGAIN) {
			free(buf);
			safe_close(fd);
			if (r < 0)
				client_kill(c, "send failed");
			return r;
		}
	}
	if (c->outq_bytes + len > CLIENT_OUTQ_MAX) {
		free(buf);
		safe_close(fd);
		client_kill(c, "output queue full (peer does not read)");
		return -ENOBUFS;
	}
	struct outmsg *o = malloc(sizeof(*o));
	if (!o) {
		free(buf);
		safe_close(fd);
		client_kill(c, "out of memory");
		return -ENOMEM;
	}
	o->buf = buf;
	o->len = len;
	o->fd = fd;
	list_add_tail(&c->outq, &o->node);
	c->outq_bytes += len;
	event_add(c->write_ev, NULL);
	return 0;
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;
	(void)fd;
	(void)what;

	while (!list_empty(&c->outq)) {
		struct outmsg *o = list_entry(c->outq.next, struct outmsg, node);
		int r = send_one(c, o->buf, o->len, o->fd);
		if (r == -EAGAIN)
			return;
		list_del(&o->node);
		c->outq_bytes -= o->len;
		outmsg_free(o);
		if (r < 0) {
			client_kill(c, "send failed");
			return;
		}
	}
	event_del(c->write_ev);
}

int client_send_event(struct client *c, enum gmem_wire_event ev, const void *data)
{
	char *buf;
	size_t len;
	int r = gmem_build_event(ev, data, &buf, &len);
	return r < 0 ? r : client_send(c, buf, len, -EBADF);
}

int client_send_error(struct client *c, bool has_id, uint64_t id, int err, const char *msg)
{
	char *buf;
	size_t len;
	int r = gmem_build_error(has_id, id, err, msg, &buf, &len);
	return r < 0 ? r : client_send(c, buf, len, -EBADF);
}

/* Best effort: the id of a datagram we will not process, so the error can name the request. */
static bool peek_id(const char *buf, size_t len, uint64_t *id)
{
	struct json_object *root;
	struct gmem_envelope env;
	bool ok = false;

	if (gmem_json_parse(buf, len, &root, NULL) == 0) {
		(void)gmem_envelope_parse_request(root, &env, NULL);
		ok = env.has_id;
		*id = env.id;
		json_object_put(root);
	}
	return ok;
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;
	char *buf = c->m->recv_buf;
	char msg[128];
	(void)what;

	for (int i = 0; i < CLIENT_READ_BATCH && !c->dead; i++) {
		struct gmem_wire_in in;
		uint64_t id = 0;
		int r = gmem_wire_recv(fd, buf, GMEM_MSG_MAX, NULL, 0, MSG_DONTWAIT | MSG_TRUNC, &in);
		if (r == -EAGAIN)
			return;
		if (r <= 0) {
			client_kill(c, r == 0 ? "disconnected" : "receive failed");
			return;
		}
		if (in.nfds > 0 || in.ctrunc) {
			/* wire.c closed them all: clients pass memory only through the delegation op. */
			snprintf(msg, sizeof(msg), "clients may not send file descriptors (%zu received and closed)",
				 in.nfds);
			bool has = !in.truncated && peek_id(buf, in.len, &id);
			client_send_error(c, has, id, -EPROTO, msg);
			continue;
		}
		if (in.truncated) {
			snprintf(msg, sizeof(msg), "message larger than %d bytes", GMEM_MSG_MAX);
			client_send_error(c, false, 0, -EMSGSIZE, msg);
			continue;
		}
		client_handle_datagram(c, buf, in.len);
	}
}
