/* SPDX-License-Identifier: MIT */
/*
 * The control for the valgrind run: gmemd-leaky leaks 4 KiB at start-up. Run under memcheck (the valgrind
 * test setup, which starts gmemd through $GMEM_TEST_WRAPPER), its exit status must be memcheck's error
 * code. If this test passes without a wrapper that checks leaks, it proves nothing: it refuses to.
 */
#include <gmem/gmem.h>
#include <string.h>

#include "harness.h"

int main(void)
{
	const char *w = getenv("GMEM_TEST_WRAPPER");
	if (!w || !strstr(w, "--leak-check=full")) {
		fprintf(stderr, "leak-control: run me under the valgrind test setup (meson test --setup valgrind)\n");
		return 1;
	}
	struct gmemd d;
	struct gmem_client *c;
	gmemd_start(&d, NULL);
	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_VMM, &c), 0);
	gmem_disconnect(c);
	int st = gmemd_stop(&d);
	printf("gmemd-leaky exited %d under memcheck\n", st);
	CHECK_EQ(st, 99); /* --error-exitcode=99: the leak was caught */
	return 0;
}
