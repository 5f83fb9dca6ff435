/* SPDX-License-Identifier: MIT */
/*
 * testhook: named points where a test build of gmemd (gmemd-hooks, -DGMEM_TEST_HOOKS) kills itself, so
 * the crash-recovery tests stop it at an exact step of a conversion. $GMEM_TEST_CRASH_AT is
 * "POINT" or "POINT:N" (the Nth time POINT is reached). In every other build the hooks are nothing.
 * Points: "begin" (begin written, prepares sent), "vote" (a vote recorded), "decided" (the commit
 * decision written, no commit sent yet), "ack" (an ack recorded).
 *
 * test_broken(): the controls. $GMEM_TEST_BREAK names one safety property to break on purpose, so a test
 * can show it catches the breakage: "replay-outcome" makes replay end every conversion the other way.
 */
#pragma once

#include <stdbool.h>

#ifdef GMEM_TEST_HOOKS
void test_hook(const char *point);
bool test_broken(const char *what);
#else
static inline void test_hook(const char *point)
{
	(void)point;
}
static inline bool test_broken(const char *what)
{
	(void)what;
	return false;
}
#endif
