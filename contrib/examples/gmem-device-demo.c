/* SPDX-License-Identifier: MIT */
/*
 * gmem-device-demo: a device manager in miniature. It attaches to a range of a guest, maps it, writes a
 * pattern, and takes part in conversions of that range:
 *   prepare  stop new use (here: nothing runs), then vote as told (--vote yes|no|slow|crash)
 *   commit   to-private: unmap, then ack; to-shared: map again (after gmemd made it shared), then ack
 *   abort    nothing was unmapped: check the data is intact, and go on
 * Usage: gmem-device-demo [--vote yes|no|slow|crash] GUEST OFFSET LENGTH   (socket from $GMEM_SOCKET)
 */
#include <errno.h>
#include <gmem/gmem.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static const char *vote_mode = "yes";
static const char *guest;
static uint64_t offset, length;
static int fd;
static unsigned char *map; /* our mapping of [offset, offset+length), NULL while unmapped */
static uint64_t slow_epoch, slow_seq;
static struct timespec slow_at; /* when a --vote slow answer is due */

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

static unsigned char pattern(uint64_t i)
{
	return (unsigned char)(i * 7 + (i >> 12));
}

static bool data_intact(void)
{
	for (uint64_t i = 0; i < length; i++)
		if (map[i] != pattern(offset + i))
			return false;
	return true;
}

static void do_map(void)
{
	map = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);
	if (map == MAP_FAILED) {
		perror("gmem-device-demo: mmap");
		exit(1);
	}
}

static void on_prepare(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	(void)ud;
	printf("prepare: conversion %llu to %s\n", (unsigned long long)cv->seq,
	       cv->target == GMEM_PRIVATE ? "private" : "shared");
	fflush(stdout);
	if (strcmp(vote_mode, "crash") == 0) {
		printf("crashing during prepare\n");
		fflush(stdout);
		abort();
	}
	if (strcmp(vote_mode, "slow") == 0) {
		/* Answer later than gmemd waits (its default prepare timeout is 1 s). */
		slow_epoch = cv->epoch;
		slow_seq = cv->seq;
		clock_gettime(CLOCK_MONOTONIC, &slow_at);
		slow_at.tv_sec += 3;
		return;
	}
	if (strcmp(vote_mode, "no") == 0)
		gmem_vote(c, cv->epoch, cv->seq, false, EBUSY, "DMA in flight that cannot be drained");
	else
		gmem_vote(c, cv->epoch, cv->seq, true, 0, NULL);
}

static void on_commit(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	(void)ud;
	if (map) {
		munmap(map, length);
		map = NULL;
		printf("commit: unmapped\n");
	} else {
		do_map();
		printf("commit: mapped again\n");
	}
	fflush(stdout);
	gmem_ack(c, cv->epoch, cv->seq);
}

static void on_abort(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	(void)c;
	(void)ud;
	printf("abort: conversion %llu; data %s\n", (unsigned long long)cv->seq,
	       map ? (data_intact() ? "intact" : "CHANGED") : "unmapped");
	fflush(stdout);
}

static void on_done(struct gmem_client *c, const struct gmem_conversion *cv, void *ud)
{
	static const char *const names[] = { "committed", "aborted", "committed-unverified" };
	(void)c;
	(void)ud;
	printf("done: conversion %llu %s\n", (unsigned long long)cv->seq, names[cv->outcome]);
	fflush(stdout);
}

static const struct gmem_participant_ops ops = {
	.prepare = on_prepare, .commit = on_commit, .abort = on_abort, .done = on_done,
};

int main(int argc, char **argv)
{
	struct gmem_client *c;
	int i = 1, r;

	if (argc > 2 && strcmp(argv[1], "--vote") == 0) {
		vote_mode = argv[2];
		i = 3;
	}
	if (argc - i != 3) {
		fprintf(stderr, "usage: gmem-device-demo [--vote yes|no|slow|crash] GUEST OFFSET LENGTH\n");
		return 2;
	}
	guest = argv[i];
	offset = parse(argv[i + 1]);
	length = parse(argv[i + 2]);

	r = gmem_connect(NULL, GMEM_ROLE_DEVICE, &c);
	if (r < 0) {
		fprintf(stderr, "gmem-device-demo: connect: %s\n", strerror(-r));
		return 1;
	}
	gmem_set_participant(c, &ops, NULL);
	r = gmem_guest_open(c, guest, &fd, NULL);
	if (r == 0)
		r = gmem_attach(c, guest, offset, length, GMEM_ATTACH_MMAP, NULL);
	if (r < 0) {
		fprintf(stderr, "gmem-device-demo: %s: %s (%s)\n", guest, strerror(-r), gmem_last_error(c));
		return 1;
	}
	do_map();
	for (uint64_t k = 0; k < length; k++)
		map[k] = pattern(offset + k);
	printf("attached\n");
	fflush(stdout);

	for (;;) {
		struct pollfd p = { .fd = gmem_get_fd(c), .events = POLLIN };
		int timeout = -1;
		if (slow_seq)
			timeout = 50;
		poll(&p, 1, timeout);
		if (slow_seq) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			if (now.tv_sec > slow_at.tv_sec ||
			    (now.tv_sec == slow_at.tv_sec && now.tv_nsec >= slow_at.tv_nsec)) {
				r = gmem_vote(c, slow_epoch, slow_seq, true, 0, NULL);
				printf("late vote: %s\n", r == 0 ? "taken" : strerror(-r));
				fflush(stdout);
				slow_seq = 0;
			}
		}
		if (gmem_dispatch(c) < 0)
			break;
	}
	gmem_disconnect(c);
	return 0;
}
