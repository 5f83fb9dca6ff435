/* SPDX-License-Identifier: MIT */
/*
 * gmemctl export and import: a guest with data in a few places and private runs goes to a file and
 * comes back as a new guest with the same map and the same bytes; the file is sparse (an untouched
 * 256 MiB guest exports to a few KiB). An existing name, a foreign file and a truncated export are
 * refused, and a refused import leaves no guest behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <gmem/gmem.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define MiB (1ULL << 20)
#define SIZE (256 * MiB)

static struct gmemd d;

static int ctl(const char *a1, const char *a2, const char *a3)
{
	char *out, *err;
	const char *argv[] = { binary("GMEMCTL"), "--socket", d.socket, a1, a2, a3, NULL };
	int st = run_capture(argv, &out, &err);
	printf("  gmemctl %s %s%s%s: exit %d: %s%s", a1, a2, a3 ? " " : "", a3 ? a3 : "", st, out, err);
	free(out);
	free(err);
	return st;
}

static unsigned char pattern(uint64_t i)
{
	return (unsigned char)(i * 31 + (i >> 12) + 7);
}

/* Where the test writes: a page at the start, 3 MiB across the private run's edge, one page at the end. */
static const struct gmem_range written[] = { { 0, 4096 }, { 7 * MiB, 3 * MiB }, { SIZE - 4096, 4096 } };
static const struct gmem_range private_runs[] = { { 8 * MiB, 8 * MiB }, { 100 * MiB, 4096 } };

static void fill(unsigned char *p)
{
	for (size_t k = 0; k < sizeof(written) / sizeof(written[0]); k++)
		for (uint64_t i = written[k].offset; i < written[k].offset + written[k].length; i++)
			p[i] = pattern(i);
}

static bool expected_byte(uint64_t i, unsigned char v)
{
	for (size_t k = 0; k < sizeof(written) / sizeof(written[0]); k++)
		if (i >= written[k].offset && i < written[k].offset + written[k].length)
			return v == pattern(i);
	return v == 0;
}

static void check_guest(struct gmem_client *c, const char *name)
{
	int fd;
	struct gmem_run *runs;
	size_t n;
	CHECK_EQ(gmem_guest_open(c, name, &fd, NULL), 0);
	unsigned char *p = mmap(NULL, SIZE, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED);
	for (uint64_t i = 0; i < SIZE; i += (i >= 6 * MiB && i < 11 * MiB) ? 1 : 509)
		if (!expected_byte(i, p[i])) {
			fprintf(stderr, "byte %llu of %s is %u\n", (unsigned long long)i, name, p[i]);
			exit(1);
		}
	munmap(p, SIZE);
	close(fd);
	CHECK_EQ(gmem_map(c, name, &runs, &n, NULL, NULL), 0);
	CHECK_EQ(n, 5);
	CHECK(runs[1].offset == 8 * MiB && runs[1].length == 8 * MiB && runs[1].state == GMEM_PRIVATE);
	CHECK(runs[3].offset == 100 * MiB && runs[3].length == 4096 && runs[3].state == GMEM_PRIVATE);
	CHECK(runs[4].state == GMEM_SHARED && runs[4].offset + runs[4].length == SIZE);
	free(runs);
}

static bool exists(struct gmem_client *c, const char *name)
{
	struct gmem_guest_info *gs;
	size_t n;
	bool found = false;
	CHECK_EQ(gmem_guest_list(c, &gs, &n), 0);
	for (size_t i = 0; i < n; i++)
		found |= strcmp(gs[i].name, name) == 0;
	free(gs);
	return found;
}

int main(void)
{
	struct gmem_client *c;
	struct gmem_convert_result res;
	struct stat st;
	char file[400], bad[400], empty[400];
	int fd;

	gmemd_start(&d, (const char *[]){ "--pool-size", "1G", NULL });
	snprintf(file, sizeof(file), "%s/vm.gmem", d.dir);
	snprintf(bad, sizeof(bad), "%s/truncated.gmem", d.dir);
	snprintf(empty, sizeof(empty), "%s/empty.gmem", d.dir);
	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_VMM, &c), 0);

	/* An untouched guest: the export is its header and holes. */
	CHECK_EQ(gmem_guest_create(c, "blank", SIZE, 0, NULL), 0);
	CHECK_EQ(ctl("export", "blank", empty), 0);
	CHECK_EQ(stat(empty, &st), 0);
	printf("  export of an untouched %llu MiB guest: %lld bytes long, %lld allocated\n",
	       (unsigned long long)(SIZE / MiB), (long long)st.st_size, (long long)st.st_blocks * 512);
	CHECK(st.st_blocks * 512 <= 8192);
	{
		char *out, *err, again[420];
		snprintf(again, sizeof(again), "%s.json", empty);
		const char *argv[] = { binary("GMEMCTL"), "--socket", d.socket, "--json", "export", "blank", again, NULL };
		CHECK_EQ(run_capture(argv, &out, &err), 0);
		CHECK(strstr(out, "\"contents_bytes\": 0") && strstr(out, "\"runs\": 1"));
		free(out);
		free(err);
	}

	CHECK_EQ(gmem_guest_create(c, "vm", SIZE, 0, NULL), 0);
	CHECK_EQ(gmem_guest_open(c, "vm", &fd, NULL), 0);
	unsigned char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED);
	fill(p);
	munmap(p, SIZE);
	close(fd);
	CHECK_EQ(gmem_convert(c, "vm", private_runs, 2, GMEM_PRIVATE, 0, &res), 0);
	CHECK_EQ(res.outcome, GMEM_COMMITTED);
	gmem_convert_result_free(&res);
	check_guest(c, "vm");

	CHECK_EQ(ctl("export", "vm", file), 0);
	CHECK_EQ(stat(file, &st), 0);
	printf("  export of vm: %lld bytes long, %lld allocated\n", (long long)st.st_size, (long long)st.st_blocks * 512);
	CHECK((uint64_t)st.st_blocks * 512 <= 3 * MiB + 4 * 4096 + 8192);
	CHECK_EQ(ctl("export", "vm", file), 1); /* never overwrites */

	CHECK_EQ(ctl("import", file, NULL), 1); /* vm exists */
	CHECK_EQ(ctl("import", file, "copy"), 0);
	check_guest(c, "copy");
	CHECK_EQ(gmem_guest_destroy(c, "vm"), 0);
	CHECK_EQ(ctl("import", file, NULL), 0);
	check_guest(c, "vm");

	/* A truncated export and a file that is not one: refused, nothing left behind. */
	int in = open(file, O_RDONLY), out = open(bad, O_WRONLY | O_CREAT | O_EXCL, 0600);
	char buf[8192];
	CHECK(in >= 0 && out >= 0);
	CHECK_EQ(read(in, buf, sizeof(buf)), sizeof(buf));
	CHECK_EQ(write(out, buf, sizeof(buf)), sizeof(buf));
	close(in);
	close(out);
	CHECK_EQ(ctl("import", bad, "t"), 1);
	CHECK(!exists(c, "t"));
	CHECK_EQ(ctl("import", "/proc/self/status", "t"), 1);
	CHECK(!exists(c, "t"));
	CHECK_EQ(ctl("import", file, "bad/name"), 1);

	gmem_disconnect(c);
	CHECK_EQ(gmemd_stop(&d), 0);
	printf("ok export and import: same map, same bytes, sparse file; refusals leave nothing behind\n");
	return 0;
}
