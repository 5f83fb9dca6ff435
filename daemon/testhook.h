/* SPDX-License-Identifier: MIT */
/*
 * testhook: named points where a test build of gmemd (gmemd-hooks, -DGMEM_TEST_HOOKS) kills itself, so
 * the crash-recovery tests stop it at an exact step of a conversion. $GMEM_TEST_CRASH_AT is
 * "POINT" or "POINT:N" (the Nth time POINT is reached). In every other build the hooks are nothing.
 * Points: "begin" (begin written, prepares sent), "vote" (a vote recorded), "decided" (the commit
 * decision written, no commit sent yet), "ack" (an ack recorded).
 */
#pragma once

#ifdef GMEM_TEST_HOOKS
void test_hook(const char *point);
#else
static inline void test_hook(const char *point)
{
	(void)point;
}
#endif
