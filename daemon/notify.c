/* SPDX-License-Identifier: MIT */
/*
 * notify: READY, rate-limited STATUS and watchdog pings to the service manager (see notify.h).
 */
#include "notify.h"

#include <errno.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "list.h"
#include "log.h"
#include "manager.h"

struct notify {
	struct manager *m;
	struct event *status_ev;   /* the end of the current STATUS interval, when a change waits for it */
	struct event *watchdog_ev; /* persistent, every half of $WATCHDOG_USEC; NULL without a watchdog */
	bool ready;
	int64_t last_us;           /* when the last STATUS= went out */
	char last[128];            /* what it said */
};

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void send_status(struct notify *n)
{
	struct manager *m = n->m;
	size_t in_flight = 0;
	char buf[sizeof(n->last)];

	list_for_each(pos, &m->active)
		in_flight++;
	snprintf(buf, sizeof(buf), "STATUS=%zu guests, %zu clients, %zu conversions in flight", m->guests.count,
		 m->n_clients, in_flight);
	/* Counts that went up and back down within the interval: nothing to say. */
	if (strcmp(buf, n->last) == 0)
		return;
	(void)sd_notify(0, buf);
	memcpy(n->last, buf, sizeof(buf));
	n->last_us = now_us();
}

static void on_status(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	send_status(arg);
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	(void)sd_notify(0, "WATCHDOG=1");
}

int notify_new(struct manager *m, struct notify **ret)
{
	struct notify *n = calloc(1, sizeof(*n));
	uint64_t usec = 0;

	if (!n)
		return -ENOMEM;
	n->m = m;
	n->status_ev = evtimer_new(m->base, on_status, n);
	if (!n->status_ev)
		goto fail;
	/* Keeps $WATCHDOG_USEC: gmemd starts no other program that could take it for its own. */
	int r = sd_watchdog_enabled(false, &usec);
	if (r < 0)
		log_errno(LOG_WARNING, r, "ignoring $WATCHDOG_USEC");
	if (r > 0) {
		uint64_t half = usec / 2 ? usec / 2 : 1;
		struct timeval tv = { .tv_sec = (time_t)(half / 1000000), .tv_usec = (suseconds_t)(half % 1000000) };
		n->watchdog_ev = event_new(m->base, -1, EV_PERSIST, on_watchdog, n);
		if (!n->watchdog_ev || event_add(n->watchdog_ev, &tv) < 0)
			goto fail;
		log_info("watchdog: pinging every %llu ms", (unsigned long long)(half / 1000));
	}
	*ret = n;
	return 0;

fail:
	notify_free(n);
	return -ENOMEM;
}

struct notify *notify_free(struct notify *n)
{
	if (!n)
		return NULL;
	if (n->status_ev)
		event_free(n->status_ev);
	if (n->watchdog_ev)
		event_free(n->watchdog_ev);
	free(n);
	return NULL;
}

void notify_ready(struct notify *n)
{
	(void)sd_notify(0, "READY=1");
	n->ready = true;
	send_status(n);
}

void notify_changed(struct notify *n)
{
	if (!n || !n->ready || evtimer_pending(n->status_ev, NULL))
		return;
	int64_t wait = n->last_us + NOTIFY_STATUS_INTERVAL_US - now_us();
	if (wait <= 0) {
		send_status(n);
		return;
	}
	struct timeval tv = { .tv_sec = (time_t)(wait / 1000000), .tv_usec = (suseconds_t)(wait % 1000000) };
	evtimer_add(n->status_ev, &tv);
}
