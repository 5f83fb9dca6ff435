/* SPDX-License-Identifier: MIT */
/*
 * harness: what every integration test needs — a real gmemd started in a private temp dir (through
 * $GMEM_TEST_WRAPPER, e.g. valgrind), ready when it says READY=1 on our notify socket; deadlines scaled
 * by $GMEM_TEST_TIMEOUT_SCALE; child processes that report through pipes; and measurements of a
 * process (fds, RSS). Tests never sleep to wait: they poll a condition against a deadline.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#define CHECK(cond)                                                                                      \
	do {                                                                                             \
		if (!(cond)) {                                                                           \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);         \
			exit(1);                                                                         \
		}                                                                                        \
	} while (0)

#define CHECK_EQ(a, b)                                                                                   \
	do {                                                                                             \
		long long _a = (long long)(a), _b = (long long)(b);                                      \
		if (_a != _b) {                                                                          \
			fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__,      \
				__LINE__, #a, #b, _a, _b);                                               \
			exit(1);                                                                         \
		}                                                                                        \
	} while (0)

struct gmemd {
	pid_t pid;
	char dir[256];    /* temp dir holding everything below; removed by gmemd_stop */
	char socket[300];
	char state[300];
	char log[300];    /* gmemd's stderr */
	int64_t started_ms;
	int64_t ready_ms; /* exec to READY=1 */
};

/* The timeout scale (>= 1) from $GMEM_TEST_TIMEOUT_SCALE. */
double harness_scale(void);
int64_t harness_now_ms(void);
/* now + ms * scale */
int64_t harness_deadline(int64_t ms);

/* Starts gmemd with --backend memfd --socket --state-dir in a new temp dir plus extra args (NULL-terminated,
 * may be NULL) and waits for READY=1. Exits the test on failure, printing gmemd's log. */
void gmemd_start(struct gmemd *d, const char *const *extra);
/* SIGTERM, then waits for exit. Returns the exit status (or 128+signal). Removes the temp dir. */
int gmemd_stop(struct gmemd *d);
/* Kills with SIGKILL and reaps, leaving the temp dir. */
void gmemd_kill(struct gmemd *d);
void gmemd_print_log(const struct gmemd *d);

/* Open fds of a process (from /proc/PID/fd), and its resident set in KiB. */
int proc_fd_count(pid_t pid);
long proc_rss_kib(pid_t pid);

/* Polls cond(arg) every millisecond until it is true or the (scaled) timeout passes. */
bool wait_until(bool (*cond)(void *arg), void *arg, int64_t timeout_ms);

/* A child process: fn runs in it and its return value is the exit status. The pipes let the parent
 * and child wait on each other (line-based messages). */
struct child {
	pid_t pid;
	int to_child;   /* parent writes */
	int from_child; /* parent reads */
};
struct child_io {
	int in, out;
};
void child_start(struct child *c, int (*fn)(struct child_io *io, void *arg), void *arg);
/* Waits for the child and returns its exit status (128+sig if killed). */
int child_wait(struct child *c);
/* Sends a line / reads a line (deadline-bounded; exits the test on timeout). */
void msg_send(int fd, const char *line);
void msg_expect(int fd, const char *line, int64_t timeout_ms);
/* Reads one line into buf; returns false on EOF or timeout. */
bool msg_recv(int fd, char *buf, size_t size, int64_t timeout_ms);

/* Runs a program with args, capturing stdout and stderr (malloc'd, NUL-terminated); returns exit status. */
int run_capture(const char *const *argv, char **out, char **err);

/* The path of a built binary, from the environment meson sets ($GMEMD, $GMEMCTL, ...). */
const char *binary(const char *env);
