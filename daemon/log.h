/* SPDX-License-Identifier: MIT */
/*
 * log: gmemd's one way to say something. Under systemd (stderr is the journal stream named by
 * $JOURNAL_STREAM) each line carries a "<N>" syslog priority prefix, which journald turns into the
 * record's priority; otherwise lines go to stderr as "gmemd: level: text".
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>
#include <syslog.h>

#include "util.h"

void log_init(const char *ident);
/* "err", "warning", "notice", "info", "debug" (or 3..7). Return: the priority or -EINVAL. */
int log_parse_level(const char *s);
void log_set_level(int prio);
int log_get_level(void);

_printf_(2, 3) void log_msg(int prio, const char *fmt, ...);
/* Logs with ": strerror(err)" appended and returns err (negative), for `return log_errno(...)`. */
_printf_(3, 4) int log_errno(int prio, int err, const char *fmt, ...);

/*
 * What an operator did, with structured fields: under systemd a journal record (sd_journal_send) with
 * GUEST=, CONVERSION_ID=, CLIENT_PID= (each only when set: guest non-NULL, conversion_id or client_pid
 * non-zero) besides MESSAGE=; otherwise the plain line with the same fields appended as KEY=value.
 */
struct log_fields {
	const char *guest;
	uint64_t conversion_id;
	pid_t client_pid;
};
_printf_(3, 4) void log_struct(int prio, const struct log_fields *f, const char *fmt, ...);

#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
