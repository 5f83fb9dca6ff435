/* SPDX-License-Identifier: MIT */
/*
 * sdharness: plays systemd's part for gmemd without PID 1. It binds the NOTIFY_SOCKET gmemd talks to,
 * keeps what gmemd parks in the fd store (FDSTORE=1 with FDNAME=, dropped again on FDSTOREREMOVE=1), and
 * at the next start passes the stored fds back as systemd does: at fd 3 onwards, with LISTEN_FDS,
 * LISTEN_FDNAMES and LISTEN_PID. The state dir survives restarts (crash-recovery tests need it).
 * While gmemd is dead, the harness is the only process holding the guests' memfds.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"

#define SDH_FDS_MAX 512

struct sdh {
	struct gmemd d;        /* paths (dir, socket, state, log) and the pid of the running gmemd */
	char notify_path[320];
	int notify_fd;
	int fds[SDH_FDS_MAX];  /* the fd store */
	char names[SDH_FDS_MAX][64];
	size_t n_fds;
	bool ready;
	char status[256];      /* the last STATUS= */
	int64_t exec_ms, ready_ms; /* when the last start was exec'd, and when READY=1 came */
	/* A thread reads the notify socket all along, as systemd does: gmemd's sd_notify blocks once the
	 * socket's queue is full, so a test busy with requests must not leave it unread. */
	pthread_t pump;
	pthread_mutex_t lock; /* everything above */
	bool stop;
};

/* A temp dir and the notify socket; nothing started yet. */
void sdh_init(struct sdh *h);
/* Starts gmemd (binary from $env: "GMEMD" or "GMEMD_HOOKS") with --backend memfd --socket --state-dir
 * --bus none plus extra (NULL-terminated), the stored fds passed back, and envs ("K=V", NULL-terminated)
 * set in its environment. Does not wait. */
void sdh_spawn(struct sdh *h, const char *env, const char *const *extra, const char *const *envs);
/* Reads notify messages until READY=1 (true) or gmemd exits or the timeout passes (false). */
bool sdh_wait_ready(struct sdh *h, int64_t timeout_ms);
/* sdh_spawn + sdh_wait_ready, exiting the test (with gmemd's log) on failure. */
void sdh_start(struct sdh *h, const char *env, const char *const *extra, const char *const *envs);
/* Reads whatever notify messages are queued, without waiting (the pump thread does it anyway). */
void sdh_pump(struct sdh *h);
/* Waits for gmemd to exit by itself (a crash hook); returns its status (128+sig if killed). */
int sdh_wait_exit(struct sdh *h, int64_t timeout_ms);
/* SIGKILL and reap. */
void sdh_kill(struct sdh *h);
/* SIGTERM and reap; returns the exit status. */
int sdh_stop(struct sdh *h);
/* The stored fd named name (borrowed), or -1. */
int sdh_stored(struct sdh *h, const char *name);
/* What systemd 252 does at a full stop: empties the store. */
void sdh_clear_store(struct sdh *h);
/* In a child forked from the test (child_start): closes its copies of the stored fds and the notify
 * socket, so only the harness holds the guests' memory. Takes no lock (the pump thread is not there). */
void sdh_close_inherited(struct sdh *h);
/* Closes everything, removes the temp dir. */
void sdh_cleanup(struct sdh *h);
