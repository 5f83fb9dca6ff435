/* SPDX-License-Identifier: MIT */
/* spawn: `gmemctl exec` as a child of the test, talking through pipes (both qemu tests use it). */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

struct spawned {
	pid_t pid;      /* gmemctl's */
	int to, from;   /* its stdin (write end), its stdout (read end); -1 when not piped */
};

/* Runs `gmemctl --socket SOCKET exec GUEST -- CMD...` (cmd NULL-terminated). With merge_stderr its
 * stderr goes into the same pipe as its stdout; else it is the test's. Exits the test on failure. */
void spawn_exec(struct spawned *s, const char *socket, const char *guest, const char *const *cmd,
		bool merge_stderr);
/* Waits for gmemctl; returns its exit status (128+N when killed by signal N). */
int spawn_wait(struct spawned *s);
