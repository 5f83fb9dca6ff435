/* SPDX-License-Identifier: MIT */
/*
 * Operator actions under systemd reach the journal as structured records: gmemd runs under journal-ns
 * (a private /run with its own journal socket and $JOURNAL_STREAM set, as systemd would), and the test
 * reads the records gmemd sent there: a cancel carries GUEST=, CONVERSION_ID= and CLIENT_PID=, an evict
 * CLIENT_PID=, a forced destroy GUEST=; with the priority and gmemd's identifier. The fields are not
 * in the plain lines then (test-operator checks those without a journal).
 */
#include <errno.h>
#include <gmem/gmem.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define MiB (1ULL << 20)

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	CHECK(f);
	char *buf = calloc(1, 1 << 20);
	CHECK(buf);
	size_t n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* The record (between "--" lines) that holds needle, copied; NULL if none. */
static char *record_with(const char *all, const char *needle)
{
	const char *hit = strstr(all, needle);
	if (!hit)
		return NULL;
	const char *start = hit;
	while (start > all && !(start - all >= 3 && strncmp(start - 3, "--\n", 3) == 0))
		start--;
	const char *end = strstr(hit, "\n--\n");
	return strndup(start, end ? (size_t)(end - start) + 1 : strlen(start));
}

static void expect_field(const char *rec, const char *field)
{
	char line[128];
	snprintf(line, sizeof(line), "%s\n", field);
	if (!strstr(rec, line)) {
		fprintf(stderr, "journal record lacks %s:\n%s\n", field, rec);
		exit(1);
	}
}

static void outcome(struct gmem_client *c, int err, const struct gmem_convert_result *r, void *ud)
{
	(void)c;
	(void)ud;
	CHECK(err == 0 && r->outcome == GMEM_ABORTED);
}

int main(void)
{
	struct gmemd d;
	struct gmem_client *admin, *dev, *holder;
	char out[] = "/tmp/gmem-journal-XXXXXX", wrapper[1200], f[128];
	int fd = mkstemp(out);
	CHECK(fd >= 0);
	close(fd);
	const char *prev = getenv("GMEM_TEST_WRAPPER");
	snprintf(wrapper, sizeof(wrapper), "%s%s%s", binary("GMEM_JOURNAL_NS"), prev && *prev ? " " : "",
		 prev ? prev : "");
	setenv("GMEM_TEST_WRAPPER", wrapper, 1);
	setenv("GMEM_TEST_JOURNAL_OUT", out, 1);
	gmemd_start(&d, (const char *[]){ "--pool-size", "1G", "--prepare-timeout", "60000", NULL });

	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_ADMIN, &admin), 0);
	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_DEVICE, &dev), 0);
	CHECK_EQ(gmem_guest_create(admin, "jg", 16 * MiB, 0, NULL), 0);
	CHECK_EQ(gmem_attach(dev, "jg", 0, 2 * MiB, GMEM_ATTACH_MMAP, NULL), 0);
	/* The device has no participant ops: it never votes, so conversion 1 waits until cancelled. */
	const struct gmem_range r = { 0, 2 * MiB };
	CHECK_EQ(gmem_convert_async(admin, "jg", &r, 1, GMEM_PRIVATE, 0, outcome, NULL), 0);
	CHECK_EQ(gmem_cancel(admin, 0, 1), 0);
	CHECK_EQ(gmem_evict(admin, gmem_client_id(dev)), 0);
	int gfd;
	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_DEVICE, &holder), 0);
	CHECK_EQ(gmem_guest_open(holder, "jg", &gfd, NULL), 0);
	close(gfd);
	CHECK_EQ(gmem_guest_destroy_ex(admin, "jg", GMEM_DESTROY_FORCE), 0);
	gmem_disconnect(holder);
	gmem_disconnect(dev);
	gmem_disconnect(admin);
	CHECK_EQ(gmemd_stop(&d), 0);

	char *all = slurp(out);
	char *rec = record_with(all, "MESSAGE=conversion 1 of guest 'jg' cancelled");
	CHECK(rec);
	printf("---- the cancel's journal record ----\n%s----\n", rec);
	expect_field(rec, "GUEST=jg");
	expect_field(rec, "CONVERSION_ID=1");
	snprintf(f, sizeof(f), "CLIENT_PID=%d", getpid());
	expect_field(rec, f);
	expect_field(rec, "PRIORITY=5");
	expect_field(rec, "SYSLOG_IDENTIFIER=gmemd");
	free(rec);
	rec = record_with(all, "evicted by client");
	CHECK(rec);
	expect_field(rec, f);
	CHECK(!strstr(rec, "GUEST=") && !strstr(rec, "CONVERSION_ID="));
	free(rec);
	rec = record_with(all, "destroyed by force");
	CHECK(rec);
	expect_field(rec, "GUEST=jg");
	free(rec);
	free(all);
	unlink(out);
	printf("ok cancel, evict and destroy --force are journal records with GUEST=, CONVERSION_ID=, CLIENT_PID=\n");
	return 0;
}
