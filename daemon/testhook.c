/* SPDX-License-Identifier: MIT */
/*
 * testhook: the crash points of the test build (testhook.h). Never linked into the installed gmemd.
 */
#include "testhook.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void test_hook(const char *point)
{
	static unsigned long count;
	const char *want = getenv("GMEM_TEST_CRASH_AT");
	size_t len = strlen(point);

	if (!want || strncmp(want, point, len) != 0 || (want[len] != '\0' && want[len] != ':'))
		return;
	unsigned long n = want[len] == ':' ? strtoul(want + len + 1, NULL, 10) : 1;
	if (++count < n)
		return;
	fprintf(stderr, "gmemd: test hook: killed at %s\n", want);
	raise(SIGKILL);
}

bool test_broken(const char *what)
{
	const char *b = getenv("GMEM_TEST_BREAK");
	return b && strcmp(b, what) == 0;
}
