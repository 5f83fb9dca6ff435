/* SPDX-License-Identifier: MIT */
/*
 * test-pubmap: the published shareability map, writer (daemon/sharemap-publish.c) against reader
 * (libgmem's gmem_shared_map_*), single-threaded: after random changes, every query agrees with a
 * plain reference bitmap; a bitmap page's summary bit is clear exactly when the page holds no set bit
 * (so a reader may skip it), and pages never set stay holes in the file. The concurrent half — no torn
 * answer — is test-shared-query's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <gmem/gmem.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conversion.h"
#include "pubmap-layout.h"
#include "sharemap-publish.h"
#include "sharemap.h"

#define PAGE_BITS ((uint64_t)GMEM_PUBMAP_PAGE_BITS)

static uint64_t rnd_state = 0x2545f4914f6cdd1d;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return rnd_state * UINT64_C(0x9e3779b97f4a7c15);
}

struct fixture {
	struct sharemap *sm;
	struct pubmap *p;
	struct gmem_shared_map *m;
	int fd;
	const uint8_t *raw; /* our own view of the file, to check its layout */
	uint64_t bytes, n;
	bool *ref;          /* true = not shared */
};

static void setup(struct fixture *f, uint64_t n, uint64_t granule)
{
	struct stat st;
	memset(f, 0, sizeof(*f));
	f->n = n;
	assert_int_equal(sharemap_new(n, SHARE_SHARED, &f->sm), 0);
	/* Some private runs in the sharemap before publishing, and a busy range (a conversion in flight). */
	assert_int_equal(sharemap_set(f->sm, 3, 5, SHARE_PRIVATE), 0);
	assert_int_equal(sharemap_set(f->sm, n - 1, 1, SHARE_PRIVATE), 0);
	struct conv_range busy = { .offset = (PAGE_BITS - 2) * granule, .length = 4 * granule };
	assert_int_equal(pubmap_new("t", granule, f->sm, &busy, 1, &f->p), 0);
	assert_int_equal(pubmap_open_reader(f->p, &f->fd), 0);
	assert_int_equal(gmem_shared_map_from_fd(f->fd, &f->m), 0);
	assert_int_equal(fstat(f->fd, &st), 0);
	f->bytes = (uint64_t)st.st_size;
	f->raw = mmap(NULL, f->bytes, PROT_READ, MAP_SHARED, f->fd, 0);
	assert_true(f->raw != MAP_FAILED);
	f->ref = calloc(n, sizeof(*f->ref));
	assert_non_null(f->ref);
	for (uint64_t i = 3; i < 8; i++)
		f->ref[i] = true;
	f->ref[n - 1] = true;
	for (uint64_t i = PAGE_BITS - 2; i < PAGE_BITS + 2; i++)
		f->ref[i] = true;
}

static void teardown(struct fixture *f)
{
	munmap((void *)f->raw, f->bytes);
	gmem_shared_map_close(f->m);
	close(f->fd);
	pubmap_free(f->p);
	sharemap_free(f->sm);
	free(f->ref);
}

static uint64_t ref_count(const struct fixture *f, uint64_t start, uint64_t len)
{
	uint64_t k = 0;
	for (uint64_t i = start; i < start + len; i++)
		k += f->ref[i];
	return k;
}

/* The summary bit of every bitmap page is set exactly when the page has a set bit. */
static void check_summary(const struct fixture *f)
{
	const struct gmem_pubmap_header *h = (const void *)f->raw;
	const uint64_t *sum = (const void *)(f->raw + h->summary_offset);
	uint64_t pages = (f->n + PAGE_BITS - 1) / PAGE_BITS;
	for (uint64_t p = 0; p < pages; p++) {
		bool any = ref_count(f, p * PAGE_BITS, (p + 1) * PAGE_BITS <= f->n ? PAGE_BITS : f->n - p * PAGE_BITS) > 0;
		bool bit = (sum[p / 64] >> (p % 64)) & 1;
		if (any != bit)
			fail_msg("page %llu: summary %d, page has set bits %d", (unsigned long long)p, bit, any);
	}
	assert_int_equal(h->seq % 2, 0);
}

static void test_random_changes(void **state)
{
	struct fixture f;
	const uint64_t granule = 4096, n = 5 * PAGE_BITS + 777;
	(void)state;

	setup(&f, n, granule);
	check_summary(&f);
	uint64_t seq0 = ((const struct gmem_pubmap_header *)f.raw)->seq;
	for (int round = 0; round < 400; round++) {
		struct conv_range r[4];
		size_t k = 1 + rnd() % 4;
		bool shared = rnd() % 2;
		for (size_t i = 0; i < k; i++) {
			/* Short ranges mostly, some across pages, some long. */
			uint64_t len = rnd() % 8 == 0 ? 1 + rnd() % (2 * PAGE_BITS) : 1 + rnd() % 200;
			uint64_t start = rnd() % n;
			if (len > n - start)
				len = n - start;
			r[i] = (struct conv_range){ start * granule, len * granule };
			for (uint64_t g = start; g < start + len; g++)
				f.ref[g] = !shared;
		}
		pubmap_set(f.p, r, k, shared);
		for (int q = 0; q < 20; q++) {
			uint64_t start = rnd() % n, len = 1 + rnd() % (n - start), cnt;
			assert_int_equal(gmem_range_count_private(f.m, start * granule, len * granule, &cnt), 0);
			uint64_t want = ref_count(&f, start, len);
			if (cnt != want)
				fail_msg("round %d: [%llu, +%llu): %llu private, the reference says %llu", round,
					 (unsigned long long)start, (unsigned long long)len, (unsigned long long)cnt,
					 (unsigned long long)want);
			assert_int_equal(gmem_range_is_shared(f.m, start * granule, len * granule), want == 0);
		}
		check_summary(&f);
	}
	/* Each change is one sequence window: two steps of seq per pubmap_set. */
	assert_int_equal(((const struct gmem_pubmap_header *)f.raw)->seq, seq0 + 2 * 400);
	teardown(&f);
}

static void test_holes_stay_holes(void **state)
{
	struct fixture f;
	struct stat st;
	const uint64_t granule = 2 << 20, n = 64 * PAGE_BITS; /* 4 TiB of 2 MiB granules: 64 bitmap pages */
	(void)state;

	setup(&f, n, granule);
	/* Pages 0 (runs at 3..7 and the busy range's start), 1 (its end) and 63 (the last granule). */
	assert_int_equal(fstat(f.fd, &st), 0);
	const struct gmem_pubmap_header *h = (const void *)f.raw;
	assert_int_equal((uint64_t)st.st_blocks * 512, h->bitmap_offset + 3 * GMEM_PUBMAP_PAGE);
	/* Making them shared again does not fill anything in, and clears their summary bits. */
	struct conv_range all = { 0, n * granule };
	pubmap_set(f.p, &all, 1, true);
	memset(f.ref, 0, n * sizeof(*f.ref));
	check_summary(&f);
	assert_int_equal(gmem_range_is_shared(f.m, 0, n * granule), 1);
	assert_int_equal(fstat(f.fd, &st), 0);
	assert_int_equal((uint64_t)st.st_blocks * 512, h->bitmap_offset + 3 * GMEM_PUBMAP_PAGE);
	teardown(&f);
}

static void test_reader_checks_the_file(void **state)
{
	struct gmem_shared_map *m;
	(void)state;
	int fd = memfd_create("not-a-map", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(gmem_shared_map_from_fd(fd, &m), -EPROTO); /* empty */
	assert_int_equal(ftruncate(fd, 3 * 4096), 0);
	assert_int_equal(gmem_shared_map_from_fd(fd, &m), -EPROTO); /* no magic */
	close(fd);
	assert_int_equal(gmem_shared_map_from_fd(-1, &m), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_changes),
		cmocka_unit_test(test_holes_stay_holes),
		cmocka_unit_test(test_reader_checks_the_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
