/* SPDX-License-Identifier: MIT */
/*
 * The local shareability query (gmem_shared_map_*) against a real gmemd:
 *   semantics  a range reads not shared from the prepare of a to-private conversion on (inside the
 *              vmm's own prepare callback already), shared again after an abort, and shared only after
 *              the done of a to-shared one; only the lease holder gets the map; a device process reads
 *              the same answers from the fd passed to it;
 *   seal       nobody can write the published file: not through the fd, not through a reopen of
 *              /proc/self/fd/N read-write (write, mmap PROT_WRITE, ftruncate, fallocate, mprotect);
 *   sparse     a 1 TiB all-shared guest's map holds no resident page in its bitmap (mincore), and the
 *              file holds one page (the header) until a granule goes private;
 *   torn       a reader thread counts private granules over two far-apart ranges that every
 *              conversion changes together, while conversions run back to back: every answer must be
 *              all or nothing. Built against a reader that skips the sequence check (the control,
 *              should_fail), the same test must see a torn answer.
 * argv[1] picks one part ("seal", "torn"); none runs them all.
 */
#include <errno.h>
#include <fcntl.h>
#include <gmem/gmem.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "pubmap-layout.h"

#define KiB (1ULL << 10)
#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define TiB (1ULL << 40)

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

static struct gmemd d;

/* The vmm's participant: votes as told, and records what the map said at each step. */
struct vmm {
	struct gmem_client *c;
	struct gmem_shared_map *m;
	struct gmem_range probe;
	bool refuse;
	int at_prepare, at_commit; /* gmem_range_is_shared of probe there; -100: not called */
};

static void v_prepare(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	struct vmm *v = ud;
	if (v->m)
		v->at_prepare = gmem_range_is_shared(v->m, v->probe.offset, v->probe.length);
	gmem_vote(c, cv->epoch, cv->seq, !v->refuse, EBUSY, v->refuse ? "told to refuse" : NULL);
}

static void v_commit(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	struct vmm *v = ud;
	if (v->m)
		v->at_commit = gmem_range_is_shared(v->m, v->probe.offset, v->probe.length);
	gmem_ack(c, cv->epoch, cv->seq);
}

static const struct gmem_participant_ops vmm_ops = { .prepare = v_prepare, .commit = v_commit };

static void vmm_start(struct vmm *v, const char *guest, uint64_t size)
{
	memset(v, 0, sizeof(*v));
	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_VMM, &v->c), 0);
	gmem_set_participant(v->c, &vmm_ops, v);
	CHECK_EQ(gmem_guest_create(v->c, guest, size, 0, NULL), 0);
	CHECK_EQ(gmem_lease(v->c, guest), 0);
	CHECK_EQ(gmem_shared_map_open(v->c, guest, &v->m), 0);
}

static enum gmem_outcome convert(struct vmm *v, const char *guest, const struct gmem_range *r, size_t n,
				 enum gmem_target t)
{
	struct gmem_convert_result res;
	v->at_prepare = v->at_commit = -100;
	CHECK_EQ(gmem_convert(v->c, guest, r, n, t, 0, &res), 0);
	enum gmem_outcome o = res.outcome;
	gmem_convert_result_free(&res);
	return o;
}

static int device_reads(struct child_io *io, void *arg)
{
	int fd = *(int *)arg;
	struct gmem_shared_map *m;
	char line[64];
	(void)io;
	if (gmem_shared_map_from_fd(fd, &m) < 0)
		return 10;
	snprintf(line, sizeof(line), "%d %d", gmem_range_is_shared(m, 0, 1 * MiB),
		 gmem_range_is_shared(m, 1 * MiB, 2 * MiB));
	msg_send(io->out, line);
	gmem_shared_map_close(m);
	return 0;
}

static void test_semantics(void)
{
	struct vmm v;
	struct gmem_shared_map *m;
	struct gmem_client *other;
	const char *g = "sem";
	uint64_t n;

	vmm_start(&v, g, 64 * MiB);
	v.probe = (struct gmem_range){ 1 * MiB, 2 * MiB };
	CHECK_EQ(gmem_range_is_shared(v.m, 0, 64 * MiB), 1);
	CHECK_EQ(gmem_range_count_private(v.m, 0, 64 * MiB, &n), 0);
	CHECK_EQ(n, 0);
	CHECK_EQ(gmem_range_is_shared(v.m, 0, 0), -EINVAL);
	CHECK_EQ(gmem_range_is_shared(v.m, 1, 4096), -EINVAL);
	CHECK_EQ(gmem_range_is_shared(v.m, 60 * MiB, 8 * MiB), -ERANGE);

	/* Only the lease holder gets it. */
	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_VMM, &other), 0);
	CHECK_EQ(gmem_shared_map_open(other, g, &m), -EPERM);
	CHECK_EQ(gmem_shared_map_open(other, "nope", &m), -ENOENT);
	gmem_disconnect(other);

	/* To private: not shared already in the vmm's own prepare, and after. */
	CHECK_EQ(convert(&v, g, &v.probe, 1, GMEM_PRIVATE), GMEM_COMMITTED);
	CHECK_EQ(v.at_prepare, 0);
	CHECK_EQ(v.at_commit, 0);
	CHECK_EQ(gmem_range_is_shared(v.m, 1 * MiB, 2 * MiB), 0);
	CHECK_EQ(gmem_range_is_shared(v.m, 1 * MiB + 4096, 4096), 0);
	CHECK_EQ(gmem_range_is_shared(v.m, 0, 1 * MiB), 1);
	CHECK_EQ(gmem_range_is_shared(v.m, 3 * MiB, 61 * MiB), 1);
	CHECK_EQ(gmem_range_is_shared(v.m, 0, 64 * MiB), 0);
	CHECK_EQ(gmem_range_count_private(v.m, 0, 64 * MiB, &n), 0);
	CHECK_EQ(n, 2 * MiB / 4096);

	/* A device process reads the same from the fd the vmm passes it. */
	struct child ch;
	int fd = gmem_shared_map_fd(v.m);
	child_start(&ch, device_reads, &fd);
	char line[64];
	CHECK(msg_recv(ch.from_child, line, sizeof(line), 10000));
	CHECK(strcmp(line, "1 0") == 0);
	CHECK_EQ(child_wait(&ch), 0);

	/* To shared: still not shared during prepare and commit; shared once the outcome is in. */
	CHECK_EQ(convert(&v, g, &v.probe, 1, GMEM_SHARED), GMEM_COMMITTED);
	CHECK_EQ(v.at_prepare, 0);
	CHECK_EQ(v.at_commit, 0);
	CHECK_EQ(gmem_range_is_shared(v.m, 0, 64 * MiB), 1);

	/* An aborted to-private: not shared during its prepare, shared again after. */
	v.refuse = true;
	CHECK_EQ(convert(&v, g, &v.probe, 1, GMEM_PRIVATE), GMEM_ABORTED);
	CHECK_EQ(v.at_prepare, 0);
	CHECK_EQ(gmem_range_is_shared(v.m, 0, 64 * MiB), 1);
	v.refuse = false;

	/* A map published later starts from the current state. */
	CHECK_EQ(convert(&v, g, &v.probe, 1, GMEM_PRIVATE), GMEM_COMMITTED);
	CHECK_EQ(gmem_shared_map_open(v.c, g, &m), 0);
	CHECK_EQ(gmem_range_is_shared(m, 1 * MiB, 4096), 0);
	CHECK_EQ(gmem_range_is_shared(m, 0, 1 * MiB), 1);
	gmem_shared_map_close(m);

	/* The map outlives the handle; once the guest is destroyed it answers nothing. */
	gmem_disconnect(v.c);
	CHECK_EQ(gmem_range_is_shared(v.m, 0, 1 * MiB), 1);
	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_VMM, &other), 0);
	CHECK_EQ(gmem_guest_destroy(other, g), 0);
	gmem_disconnect(other);
	CHECK_EQ(gmem_range_is_shared(v.m, 0, 1 * MiB), -ENODEV);
	CHECK_EQ(gmem_range_count_private(v.m, 0, 1 * MiB, &n), -ENODEV);
	gmem_shared_map_close(v.m);
}

/* Every way a holder could write the file must fail; returns how many succeeded. */
static int forge_attempts(int fd)
{
	int ok = 0;
	unsigned char one = 0xff;
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int rw = open(path, O_RDWR | O_CLOEXEC);
	printf("  reopen %s read-write: %s\n", path, rw < 0 ? strerror(errno) : "opened (the seal must hold)");
	if (rw < 0)
		return 0;
	if (pwrite(rw, &one, 1, 4 * KiB) == 1) {
		printf("  FORGED: pwrite succeeded\n");
		ok++;
	}
	void *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);
	if (w != MAP_FAILED) {
		printf("  FORGED: mmap PROT_WRITE MAP_SHARED succeeded\n");
		munmap(w, 4096);
		ok++;
	}
	void *r = mmap(NULL, 4096, PROT_READ, MAP_SHARED, rw, 0);
	CHECK(r != MAP_FAILED);
	if (mprotect(r, 4096, PROT_READ | PROT_WRITE) == 0) {
		printf("  FORGED: mprotect to PROT_WRITE succeeded\n");
		ok++;
	}
	munmap(r, 4096);
	if (ftruncate(rw, 4096) == 0) {
		printf("  FORGED: ftruncate succeeded\n");
		ok++;
	}
	if (fallocate(rw, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096) == 0) {
		printf("  FORGED: fallocate punched the header\n");
		ok++;
	}
	close(rw);
	return ok;
}

static void test_seal(void)
{
	struct vmm v;
	vmm_start(&v, "sealed", 64 * MiB);
	int fd = gmem_shared_map_fd(v.m);
	int seals = fcntl(fd, F_GET_SEALS);
	printf("  seals 0x%x\n", seals);
	CHECK_EQ(forge_attempts(fd), 0);
	CHECK(seals >= 0 && (seals & F_SEAL_FUTURE_WRITE) && (seals & F_SEAL_SHRINK) && (seals & F_SEAL_GROW) &&
	      (seals & F_SEAL_SEAL));
	/* The holder's own file is read-only. */
	CHECK(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED);
	/* Still intact, and gmemd still writes it through the mapping it made before sealing. */
	CHECK_EQ(gmem_range_is_shared(v.m, 0, 64 * MiB), 1);
	v.probe = (struct gmem_range){ 0, 4096 };
	CHECK_EQ(convert(&v, "sealed", &v.probe, 1, GMEM_PRIVATE), GMEM_COMMITTED);
	CHECK_EQ(gmem_range_is_shared(v.m, 0, 4096), 0);
	gmem_shared_map_close(v.m);
	CHECK_EQ(gmem_guest_destroy(v.c, "sealed"), 0);
	gmem_disconnect(v.c);
}

static long smaps_rss_kib(const char *label)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool in = false;
	long rss = -1;
	CHECK(f);
	while (fgets(line, sizeof(line), f)) {
		/* A mapping's first line starts with its address in lower-case hex; its fields do not. */
		if ((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f'))
			in = strstr(line, label) != NULL;
		if (in && sscanf(line, "Rss: %ld kB", &rss) == 1)
			break;
	}
	fclose(f);
	return rss;
}

static void test_sparse(void)
{
	struct vmm v;
	struct stat st;
	vmm_start(&v, "big", 1 * TiB);
	int fd = gmem_shared_map_fd(v.m);

	CHECK_EQ(gmem_range_is_shared(v.m, 0, 1 * TiB), 1);
	uint64_t n = 1;
	CHECK_EQ(gmem_range_count_private(v.m, 0, 1 * TiB, &n), 0);
	CHECK_EQ(n, 0);

	long rss = smaps_rss_kib("gmem-map:big"); /* before the test maps the file itself */
	/* The bitmap region of the file: mincore on a mapping of it counts resident pages. */
	struct gmem_pubmap_header h;
	CHECK_EQ(pread(fd, &h, sizeof(h), 0), sizeof(h));
	uint64_t bm_bytes = h.file_bytes - h.bitmap_offset;
	CHECK_EQ(bm_bytes, 1 * TiB / 4096 / 8); /* 32 MiB of bits */
	unsigned char *bm = mmap(NULL, bm_bytes, PROT_READ, MAP_SHARED, fd, (off_t)h.bitmap_offset);
	CHECK(bm != MAP_FAILED);
	size_t pages = bm_bytes / 4096, resident = 0;
	unsigned char *vec = malloc(pages);
	CHECK(vec);
	CHECK_EQ(mincore(bm, bm_bytes, vec), 0);
	for (size_t i = 0; i < pages; i++)
		resident += vec[i] & 1;
	CHECK_EQ(fstat(fd, &st), 0);
	printf("  1 TiB guest: map file %llu bytes, %zu of %zu bitmap pages resident, %lld bytes allocated, "
	       "the query's mapping %ld KiB resident\n", (unsigned long long)h.file_bytes, resident, pages,
	       (long long)st.st_blocks * 512, rss);
	CHECK_EQ(resident, 0);
	CHECK_EQ(st.st_blocks * 512, 4096); /* the header page, nothing else */
	CHECK(rss >= 0 && rss <= 8); /* the header (and the summary in it) */

	/* One private granule at the very end: one bitmap page more, the rest stays holes. */
	v.probe = (struct gmem_range){ 1 * TiB - 4096, 4096 };
	CHECK_EQ(convert(&v, "big", &v.probe, 1, GMEM_PRIVATE), GMEM_COMMITTED);
	CHECK_EQ(gmem_range_is_shared(v.m, 1 * TiB - 4096, 4096), 0);
	CHECK_EQ(gmem_range_is_shared(v.m, 0, 1 * TiB - 4096), 1);
	CHECK_EQ(fstat(fd, &st), 0);
	CHECK_EQ(st.st_blocks * 512, 8192);
	CHECK_EQ(mincore(bm, bm_bytes, vec), 0);
	resident = 0;
	for (size_t i = 0; i < pages; i++)
		resident += vec[i] & 1;
	CHECK_EQ(resident, 1);
	munmap(bm, bm_bytes);
	free(vec);
	gmem_shared_map_close(v.m);
	CHECK_EQ(gmem_guest_destroy(v.c, "big"), 0);
	gmem_disconnect(v.c);
}

/* ---- torn reads ---- */

#define TORN_SIZE (256 * MiB)
#define TORN_PART (64 * MiB) /* [0, 64M) and [192M, 256M): in different bitmap pages, changed together */

struct reader {
	struct gmem_shared_map *m;
	atomic_bool stop, torn_seen;
	uint64_t queries, torn, all, none, first_torn;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	const uint64_t full = 2 * TORN_PART / 4096;
	while (!atomic_load(&r->stop)) {
		uint64_t n;
		CHECK_EQ(gmem_range_count_private(r->m, 0, TORN_SIZE, &n), 0);
		r->queries++;
		if (n == 0)
			r->none++;
		else if (n == full)
			r->all++;
		else if (r->torn++ == 0) {
			r->first_torn = n;
			atomic_store(&r->torn_seen, true);
		}
	}
	return NULL;
}

static void test_torn(void)
{
	struct vmm v;
	struct reader rd = { 0 };
	pthread_t t;
	const struct gmem_range both[2] = { { 0, TORN_PART }, { TORN_SIZE - TORN_PART, TORN_PART } };

	vmm_start(&v, "torn", TORN_SIZE);
	rd.m = v.m;
	v.m = NULL; /* the callbacks do not query: the reader thread does */
	CHECK_EQ(pthread_create(&t, NULL, reader_main, &rd), 0);
	int64_t end = harness_deadline(3000);
	unsigned cycles = 0;
	/* Until the deadline, or the first torn answer: one is a failure already. */
	while ((harness_now_ms() < end || cycles < 50) && !atomic_load(&rd.torn_seen)) {
		CHECK_EQ(convert(&v, "torn", both, 2, GMEM_PRIVATE), GMEM_COMMITTED);
		CHECK_EQ(convert(&v, "torn", both, 2, GMEM_SHARED), GMEM_COMMITTED);
		cycles++;
	}
	atomic_store(&rd.stop, true);
	pthread_join(t, NULL);
	printf("  %u conversion pairs, %llu queries: %llu all private, %llu all shared, %llu torn (first: %llu "
	       "granules)\n", cycles, (unsigned long long)rd.queries, (unsigned long long)rd.all,
	       (unsigned long long)rd.none, (unsigned long long)rd.torn, (unsigned long long)rd.first_torn);
	/* The reader saw both states many times, or it did not race with anything. */
	CHECK(rd.all > 0 && rd.none > 0);
	CHECK_EQ(rd.torn, 0);
	gmem_shared_map_close(rd.m);
	CHECK_EQ(gmem_guest_destroy(v.c, "torn"), 0);
	gmem_disconnect(v.c);
}

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	gmemd_start(&d, (const char *[]){ "--pool-size", "2T", NULL });
	if (!only) {
		test_semantics();
		printf("ok not shared from a to-private prepare on, shared only after a to-shared done; lease holder "
		       "only; a device reads the passed fd\n");
	}
	if (!only || strcmp(only, "seal") == 0) {
		test_seal();
		printf("ok the published map cannot be written by a holder, a /proc reopen included\n");
	}
	if (!only) {
		test_sparse();
		printf("ok a 1 TiB all-shared guest's map: no resident bitmap page\n");
	}
	if (!only || strcmp(only, "torn") == 0) {
		test_torn();
		printf("ok no torn answer while conversions run concurrently\n");
	}
	CHECK_EQ(gmemd_stop(&d), 0);
	return 0;
}
