/* SPDX-License-Identifier: MIT */
/*
 * gmem-vmm-demo: a VMM in miniature. It creates the guest if needed, takes its vmm lease, maps all of
 * it and declares KVM's use of it, then requests the conversions given on the command line. It is a
 * participant of its own conversions (the lease holder always is), so it uses the blocking
 * gmem_convert(), which keeps answering prepare and commit while it waits:
 *   prepare  a real VMM stops handing the range to its device models, then votes yes
 *   commit   the VMM's wave: it updates KVM's view of the range (here: a line of output), then acks
 * Usage: gmem-vmm-demo GUEST SIZE [OFFSET LENGTH shared|private]...   (socket from $GMEM_SOCKET)
 */
#include <errno.h>
#include <gmem/gmem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static uint64_t parse(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);
	switch (*end) {
	case 'K': v <<= 10; break;
	case 'M': v <<= 20; break;
	case 'G': v <<= 30; break;
	}
	return v;
}

static void on_prepare(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	(void)ud;
	printf("vmm: prepare %llu: %zu ranges to %s, voting yes\n", (unsigned long long)cv->seq, cv->n_ranges,
	       cv->target == GMEM_PRIVATE ? "private" : "shared");
	gmem_vote(c, cv->epoch, cv->seq, true, 0, NULL);
}

static void on_commit(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	(void)ud;
	printf("vmm: commit %llu, wave %d: updating KVM's view\n", (unsigned long long)cv->seq, cv->wave);
	gmem_ack(c, cv->epoch, cv->seq);
}

static const struct gmem_participant_ops ops = { .prepare = on_prepare, .commit = on_commit };

int main(int argc, char **argv)
{
	static const char *const outcomes[] = { "committed", "aborted", "committed-unverified" };
	struct gmem_client *c;
	struct gmem_guest_info info;
	int fd, r;

	if (argc < 3 || (argc - 3) % 3) {
		fprintf(stderr, "usage: gmem-vmm-demo GUEST SIZE [OFFSET LENGTH shared|private]...\n");
		return 2;
	}
	r = gmem_connect(NULL, GMEM_ROLE_VMM, &c);
	if (r < 0) {
		fprintf(stderr, "gmem-vmm-demo: connect: %s\n", strerror(-r));
		return 1;
	}
	gmem_set_participant(c, &ops, NULL);
	r = gmem_guest_create(c, argv[1], parse(argv[2]), 0, NULL);
	if (r < 0 && r != -EEXIST)
		goto fail;
	if ((r = gmem_lease(c, argv[1])) < 0 || (r = gmem_guest_open(c, argv[1], &fd, &info)) < 0 ||
	    (r = gmem_attach(c, argv[1], 0, info.size, GMEM_ATTACH_KVM, NULL)) < 0)
		goto fail;
	void *ram = mmap(NULL, info.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (ram == MAP_FAILED) {
		perror("gmem-vmm-demo: mmap");
		return 1;
	}
	printf("vmm: %s mapped, %llu bytes, lease held\n", argv[1], (unsigned long long)info.size);

	for (int i = 3; i + 2 < argc; i += 3) {
		struct gmem_range range = { parse(argv[i]), parse(argv[i + 1]) };
		struct gmem_convert_result res;
		enum gmem_target t = strcmp(argv[i + 2], "private") == 0 ? GMEM_PRIVATE : GMEM_SHARED;
		r = gmem_convert(c, argv[1], &range, 1, t, 0, &res);
		if (r < 0)
			goto fail;
		printf("vmm: conversion %llu: %s in %llu us\n", (unsigned long long)res.seq, outcomes[res.outcome],
		       (unsigned long long)res.latency_us);
		for (size_t k = 0; k < res.n_refusals; k++)
			printf("vmm:   refused by pid %u: %s\n", res.refusals[k].pid, res.refusals[k].reason);
		gmem_convert_result_free(&res);
	}
	gmem_disconnect(c);
	return 0;
fail:
	fprintf(stderr, "gmem-vmm-demo: %s: %s (%s)\n", argv[1], strerror(-r), gmem_last_error(c));
	return 1;
}
