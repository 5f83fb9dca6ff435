/* SPDX-License-Identifier: MIT */
/*
 * notify: what gmemd tells its service manager (sd_notify; nothing at all when $NOTIFY_SOCKET is unset).
 *   READY=1   once the socket accepts (notify_ready);
 *   STATUS=   "N guests, N clients, N conversions in flight", sent when one of the counts changes but at
 *             most once per NOTIFY_STATUS_INTERVAL_US: a change inside the interval is sent when it ends,
 *             with the counts of that moment, so a burst costs two messages and the last word is right;
 *   WATCHDOG=1 every half of $WATCHDOG_USEC when the manager asked for pings (sd_watchdog_enabled), from
 *             a timer on the manager's loop, so a loop that is stuck stops the pings and gets restarted.
 */
#pragma once

#include <stdint.h>

struct manager;
struct notify;

#define NOTIFY_STATUS_INTERVAL_US 1000000

/* Sets up the timers on m's loop. Return: 0 or -ENOMEM. */
int notify_new(struct manager *m, struct notify **ret);
/* Accepts NULL. */
struct notify *notify_free(struct notify *n);
/* READY=1 and the first STATUS=. */
void notify_ready(struct notify *n);
/* A count of STATUS= may have changed (a guest, a client, a conversion came or went). n may be NULL. */
void notify_changed(struct notify *n);
