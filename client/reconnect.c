/* SPDX-License-Identifier: MIT */
/*
 * reconnect: what a handle needs to come back after gmemd restarts (gmem_set_reconnect). It remembers
 * what the connection announced — attachments, leases, watch — and the conversions it is in doubt
 * about (a prepare heard, no abort or done yet). When the connection drops it fails the requests in
 * flight, tells the application, and retries with a bounded backoff on a timerfd inside the handle's
 * epoll set, so gmem_get_fd() stays the one fd to poll. Once back it says hello, announces everything
 * again, and asks the restarted gmemd how each in-doubt conversion ended (resolve): the participant
 * hears commit and done, or abort and done, exactly as if gmemd had told it — and never before. An
 * in-doubt participant does not resume on its own: without an answer it stays in doubt.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"
#include "util.h"

#define GMEM_EXPORT __attribute__((visibility("default")))
#define BACKOFF_FIRST_MS 10

/* ---- what the connection announced ---- */

uint64_t rc_attach_added(struct gmem_client *c, const char *name, uint64_t offset, uint64_t length, int kind,
			 uint64_t server_id)
{
	struct rc_attach *a = calloc(1, sizeof(*a));
	uint64_t app = server_id;
	if (!a)
		return server_id; /* not remembered: it will not come back after a restart */
	/* The id the application holds stays valid across restarts: unique among ours. */
	for (struct rc_attach *x = c->attaches; x; x = x->next)
		if (x->app_id >= app)
			app = x->app_id + 1;
	a->app_id = app;
	a->server_id = server_id;
	snprintf(a->name, sizeof(a->name), "%s", name);
	a->offset = offset;
	a->length = length;
	a->kind = kind;
	a->next = c->attaches;
	c->attaches = a;
	return app;
}

uint64_t rc_attach_server_id(struct gmem_client *c, uint64_t app_id)
{
	for (struct rc_attach *a = c->attaches; a; a = a->next)
		if (a->app_id == app_id)
			return a->server_id;
	return app_id;
}

void rc_attach_removed(struct gmem_client *c, uint64_t app_id)
{
	for (struct rc_attach **p = &c->attaches; *p; p = &(*p)->next)
		if ((*p)->app_id == app_id) {
			struct rc_attach *a = *p;
			*p = a->next;
			free(a);
			return;
		}
}

void rc_lease_changed(struct gmem_client *c, const char *name, bool held)
{
	for (struct rc_lease **p = &c->leases; *p; p = &(*p)->next)
		if (strcmp((*p)->name, name) == 0) {
			if (!held) {
				struct rc_lease *l = *p;
				*p = l->next;
				free(l);
				/* release also ends the kvm attachments on it (PROTOCOL.md, "lease, release") */
				for (struct rc_attach **q = &c->attaches; *q;) {
					if (strcmp((*q)->name, name) == 0 && (*q)->kind == GMEM_ATTACH_KVM) {
						struct rc_attach *a = *q;
						*q = a->next;
						free(a);
					} else {
						q = &(*q)->next;
					}
				}
			}
			return;
		}
	if (!held)
		return;
	struct rc_lease *l = calloc(1, sizeof(*l));
	if (!l)
		return;
	snprintf(l->name, sizeof(l->name), "%s", name);
	l->next = c->leases;
	c->leases = l;
}

void rc_guest_gone(struct gmem_client *c, const char *name)
{
	rc_lease_changed(c, name, false);
	for (struct rc_attach **q = &c->attaches; *q;) {
		if (strcmp((*q)->name, name) == 0) {
			struct rc_attach *a = *q;
			*q = a->next;
			free(a);
		} else {
			q = &(*q)->next;
		}
	}
}

struct rc_doubt *rc_doubt_find(struct gmem_client *c, uint64_t epoch, uint64_t seq)
{
	for (struct rc_doubt *d = c->doubts; d; d = d->next)
		if (d->epoch == epoch && d->seq == seq)
			return d;
	return NULL;
}

static void doubt_free(struct rc_doubt *d)
{
	free(d->ranges);
	free(d);
}

void rc_prepared(struct gmem_client *c, uint64_t epoch, uint64_t seq, const char *guest, int role, int target,
		 bool zero, const struct gmem_range *ranges, size_t n_ranges)
{
	if (rc_doubt_find(c, epoch, seq))
		return;
	struct rc_doubt *d = calloc(1, sizeof(*d));
	if (!d)
		return;
	if (n_ranges) {
		d->ranges = malloc(n_ranges * sizeof(*ranges));
		if (d->ranges) {
			memcpy(d->ranges, ranges, n_ranges * sizeof(*ranges));
			d->n_ranges = n_ranges;
		}
	}
	d->zero = zero;
	d->epoch = epoch;
	d->seq = seq;
	snprintf(d->guest, sizeof(d->guest), "%s", guest);
	d->role = role;
	d->target = target;
	d->next = c->doubts;
	c->doubts = d;
}

void rc_ended(struct gmem_client *c, uint64_t epoch, uint64_t seq)
{
	for (struct rc_doubt **p = &c->doubts; *p; p = &(*p)->next)
		if ((*p)->epoch == epoch && (*p)->seq == seq) {
			struct rc_doubt *d = *p;
			*p = d->next;
			doubt_free(d);
			return;
		}
}

void rc_free_all(struct gmem_client *c)
{
	while (c->attaches) {
		struct rc_attach *a = c->attaches;
		c->attaches = a->next;
		free(a);
	}
	while (c->leases) {
		struct rc_lease *l = c->leases;
		c->leases = l->next;
		free(l);
	}
	while (c->doubts) {
		struct rc_doubt *d = c->doubts;
		c->doubts = d->next;
		doubt_free(d);
	}
	safe_close(c->tfd);
	c->tfd = -EBADF;
}

/* ---- losing and regaining gmemd ---- */

static void arm(struct gmem_client *c, int ms)
{
	struct itimerspec its = { .it_value = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 } };
	(void)timerfd_settime(c->tfd, 0, &its, NULL);
}

void rc_lost(struct gmem_client *c)
{
	if (!c->reconnect_max_ms || c->reconnecting)
		return;
	c->reconnecting = true;
	c->closed = true;
	(void)epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->sock, NULL);
	c->sock = safe_close(c->sock);
	/* Requests in flight died with the connection: gmemd may or may not have carried them out. */
	while (c->pending) {
		struct pending_call *p = c->pending;
		c->pending = p->next;
		p->next = NULL;
		gmem_queue(c, GMEM_QEV_ANSWER_LOST, NULL, p);
	}
	gmem_queue(c, GMEM_QEV_DISCONNECTED, NULL, NULL);
	if (c->tfd < 0) {
		c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		struct epoll_event e = { .events = EPOLLIN, .data.fd = c->tfd };
		if (c->tfd < 0 || epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->tfd, &e) < 0)
			return; /* cannot wait: gmem_dispatch reports the connection closed */
	}
	c->backoff_ms = BACKOFF_FIRST_MS;
	arm(c, c->backoff_ms);
}

static int open_socket(struct gmem_client *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	memcpy(sa.sun_path, c->path, sizeof(c->path));
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0)
		return negative_errno();
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || fcntl(s, F_SETFL, O_NONBLOCK) < 0) {
		int r = negative_errno();
		close(s);
		return r;
	}
	return s;
}

/* Everything the old connection had announced, announced again; what no longer holds is forgotten. */
static void reannounce(struct gmem_client *c, unsigned *failed)
{
	for (struct rc_lease **p = &c->leases; *p;) {
		struct gmem_guest_args a;
		struct gmem_empty_reply r;
		snprintf(a.name, sizeof(a.name), "%s", (*p)->name);
		if (gmem_call(c, GMEM_OP_LEASE, &a, &r, NULL) < 0) {
			struct rc_lease *l = *p;
			*p = l->next;
			free(l);
			(*failed)++;
		} else {
			p = &(*p)->next;
		}
	}
	for (struct rc_attach **p = &c->attaches; *p;) {
		struct gmem_attach_args a = { .offset = (*p)->offset, .length = (*p)->length, .kind = (*p)->kind };
		struct gmem_attach_reply r = { 0 };
		snprintf(a.name, sizeof(a.name), "%s", (*p)->name);
		if (gmem_call(c, GMEM_OP_ATTACH, &a, &r, NULL) < 0) {
			struct rc_attach *x = *p;
			*p = x->next;
			free(x);
			(*failed)++;
		} else {
			(*p)->server_id = r.id;
			p = &(*p)->next;
		}
	}
	if (c->watching) {
		struct gmem_status_args a = { 0 };
		struct gmem_empty_reply r;
		if (gmem_call(c, GMEM_OP_WATCH, &a, &r, NULL) < 0)
			(*failed)++;
	}
}

/* Asks how each in-doubt conversion ended; the answers are delivered as the missing events. */
static void resolve_doubts(struct gmem_client *c)
{
	for (struct rc_doubt *d = c->doubts; d; d = d->next) {
		if (d->resolving)
			continue;
		struct gmem_ack_args a = { .epoch = d->epoch, .seq = d->seq };
		struct gmem_resolve_reply r = { 0 };
		if (gmem_call(c, GMEM_OP_RESOLVE, &a, &r, NULL) < 0) {
#ifdef GMEM_TEST_PRESUME_ABORT
			/* The control (tests/integration/meson.build): a libgmem that guesses. The reconnect
			 * test must catch it. */
			d->resolving = true;
			gmem_queue_doubt(c, d, GMEM_ABORTED);
			continue;
#endif
			/* Unknown to this gmemd: still in doubt, and the application hears that it is. */
			gmem_queue_doubt(c, d, -1);
			continue;
		}
		d->resolving = true;
		gmem_queue_doubt(c, d, r.outcome);
	}
}

static void attempt(struct gmem_client *c)
{
	int s = open_socket(c);
	if (s < 0)
		goto retry;
	c->sock = s;
	c->closed = false;
	c->reconnecting = false; /* calls go through again: hello first */
	struct epoll_event e = { .events = EPOLLIN, .data.fd = c->sock };
	if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->sock, &e) < 0 || gmem_hello(c, c->role) < 0) {
		(void)epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->sock, NULL);
		c->sock = safe_close(c->sock);
		c->closed = true;
		c->reconnecting = true;
		goto retry;
	}
	unsigned failed = 0;
	reannounce(c, &failed);
	c->reannounce_failed = failed;
	gmem_queue(c, GMEM_QEV_RECONNECTED, NULL, NULL);
	resolve_doubts(c);
	return;
retry:
	/* Bounded: a restart takes a second or so; polling faster only burns the host. */
	c->backoff_ms = c->backoff_ms * 2 > c->reconnect_max_ms ? c->reconnect_max_ms : c->backoff_ms * 2;
	arm(c, c->backoff_ms);
}

void rc_tick(struct gmem_client *c)
{
	uint64_t n;
	if (!c->reconnecting || c->tfd < 0 || read(c->tfd, &n, sizeof(n)) != sizeof(n))
		return;
	attempt(c);
}

GMEM_EXPORT void gmem_set_reconnect(struct gmem_client *c, int max_backoff_ms)
{
	c->reconnect_max_ms = max_backoff_ms <= 0 ? 0 : max_backoff_ms < BACKOFF_FIRST_MS ? BACKOFF_FIRST_MS
												 : max_backoff_ms;
}
