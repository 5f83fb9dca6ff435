/* SPDX-License-Identifier: MIT */
/*
 * dbus: gmemd's read-only D-Bus interface, org.gmem.Manager1 at /org/gmem/Manager1 (bus name
 * org.gmem.Manager1), on the system or session bus, driven by the manager's libevent loop.
 *
 * The bus is an observer, never a dependency: no bus, a bus that goes away, or a name that cannot be
 * had is a notice (or a warning) and gmemd goes on serving its socket; it reconnects with a backoff of
 * 1 s doubling to 30 s. Nothing on the data path waits for the bus: messages are queued on a
 * non-blocking socket and the loop writes them when it can.
 */
#pragma once

#include <stdint.h>

struct manager;
struct guest;
struct twopc;

enum dbus_kind {
	DBUS_KIND_SYSTEM,
	DBUS_KIND_SESSION,
	DBUS_KIND_NONE,
};

struct dbus;

/* "system", "session", "none" -> the kind; -EINVAL for anything else. */
int dbus_kind_from_string(const char *s);

/*
 * Sets up the interface on the manager's loop and starts connecting (never waits for the bus). With
 * DBUS_KIND_NONE, or in a build without D-Bus, *ret is NULL. Return: 0 (also when no bus is reachable),
 * or -ENOMEM.
 */
int dbus_new(struct manager *m, enum dbus_kind kind, struct dbus **ret);
/* Closes the connection without flushing (gmemd's exit never waits on the bus). Accepts NULL. */
struct dbus *dbus_free(struct dbus *b);

/*
 * A conversion of g ended with outcome (enum gmem_outcome); bytes changed state if it committed; t holds
 * the engine's results (who refused, timeouts), for the reason of an abort. Emits ConversionFailed at
 * once for an abort and folds the conversion into g's next ConversionSummary (at most one per guest per
 * second). b may be NULL.
 */
void dbus_conversion_done(struct dbus *b, const struct guest *g, uint64_t seq, int outcome, uint64_t bytes,
			  const struct twopc *t);
