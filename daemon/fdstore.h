/* SPDX-License-Identifier: MIT */
/*
 * fdstore: guest memory that must outlive gmemd (the memfd backend) parked in the service manager's
 * fd store. Each guest's memfd is pushed with FDSTORE=1 and FDNAME=guest-<id> when it is created and
 * removed (FDSTOREREMOVE=1) when it is destroyed; at start the stored fds come back in LISTEN_FDS with
 * their names in LISTEN_FDNAMES, and replay claims them by guest id (checking st_dev/st_ino against the
 * journal). Fds with other names (a socket passed by socket activation) are left to the listener.
 * Without $NOTIFY_SOCKET every push is a no-op: nothing then carries memory over a restart.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fdstore {
	int *fds;      /* owned: kept open until fdstore_release, so the LISTEN_FDS range stays whole for the
			* listener, which reads it after replay */
	uint64_t *ids; /* guest ids, parallel to fds */
	bool *taken;
	size_t n;
};

/* Collects the guest-<id> fds passed at start. Return: the number found, or -errno. */
int fdstore_collect(struct fdstore *s);
/* A copy of the fd stored for guest id (the caller owns it), or -ENOENT / -errno. */
int fdstore_take(struct fdstore *s, uint64_t id);
/* Closes the fds. With drop_unknown, those nobody took the service manager is asked to drop: no journal
 * names them. Never on a failed start: what the store holds must wait for a gmemd that can read it. */
void fdstore_release(struct fdstore *s, bool drop_unknown);

/* Parks fd (borrowed) as guest id's; 0 or -errno (logged: that guest would not survive a restart). */
int fdstore_push(uint64_t id, int fd);
void fdstore_remove(uint64_t id);
