/* SPDX-License-Identifier: MIT */
/*
 * lifetime: one pidfd (a duplicate of the lease holder's, captured at connect) and one event per bound
 * ephemeral guest. A pidfd becomes readable when its process exits; the callback destroys the guest
 * like a destroy request would, so holders hear guest-destroyed and the memory goes back to the pool.
 */
#include "lifetime.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdlib.h>

#include "client.h"
#include "guest.h"
#include "log.h"
#include "manager.h"
#include "util.h"

struct lifetime {
	struct manager *m;
	struct guest *g;
	int pidfd; /* owned */
	pid_t pid;
	struct event *ev;
};

static void on_exit_of_holder(evutil_socket_t fd, short what, void *arg)
{
	struct lifetime *l = arg;
	(void)fd;
	(void)what;
	log_notice("guest '%s': process %d, its vmm lease holder, exited; destroying the ephemeral guest",
		   l->g->name, l->pid);
	manager_guest_destroy(l->m, l->g); /* frees l: nothing of it is touched after this */
}

int lifetime_bind(struct manager *m, struct guest *g, const struct client *c)
{
	if (c->pidfd < 0)
		return -ESRCH;
	struct lifetime *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->m = m;
	l->g = g;
	l->pid = c->pid;
	l->pidfd = fcntl(c->pidfd, F_DUPFD_CLOEXEC, 3);
	if (l->pidfd < 0) {
		int r = negative_errno();
		free(l);
		return r;
	}
	l->ev = event_new(m->base, l->pidfd, EV_READ, on_exit_of_holder, l);
	if (!l->ev || event_add(l->ev, NULL) < 0) {
		lifetime_free(l);
		return -ENOMEM;
	}
	lifetime_free(g->life);
	g->life = l;
	log_info("guest '%s': ephemeral, bound to process %d", g->name, l->pid);
	return 0;
}

struct lifetime *lifetime_free(struct lifetime *l)
{
	if (!l)
		return NULL;
	if (l->ev)
		event_free(l->ev);
	safe_close(l->pidfd);
	free(l);
	return NULL;
}
