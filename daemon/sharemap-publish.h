/* SPDX-License-Identifier: MIT */
/*
 * sharemap-publish: a guest's shareability map published to its vmm as a sealed, sparse memfd
 * (proto/pubmap-layout.h), so device emulation can ask "is this range shared?" without a round trip.
 *
 * What it says is not the sharemap itself but what a VMM may rely on: a range is not shared from the
 * prepare of a conversion to private on, and shared again only after the done of a conversion to
 * shared (conversion.c calls pubmap_set at those two points). gmemd maps the file writable once, then
 * seals it with F_SEAL_FUTURE_WRITE (and against resizing), so no holder can write it — not through its
 * own fd, nor a reopen through /proc — while gmemd keeps writing through the mapping it made before.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pubmap;
struct sharemap;
struct conv_range;

/*
 * A map of the guest's granules, filled from sm (private granules set) and then the ranges given in
 * busy (bytes: a conversion in flight, not shared until its done). name labels the memfd.
 * Return: 0 or -errno.
 */
int pubmap_new(const char *name, uint64_t granule, const struct sharemap *sm, const struct conv_range *busy,
	       size_t n_busy, struct pubmap **ret);
struct pubmap *pubmap_free(struct pubmap *p);

/* A new read-only file of the map for one holder (caller owns it, O_CLOEXEC). */
int pubmap_open_reader(struct pubmap *p, int *ret_fd);
uint64_t pubmap_file_bytes(const struct pubmap *p);

/* The guest is being destroyed: readers that still hold the file get ENODEV from now on, rather than
 * the last state of memory that no longer exists. */
void pubmap_retire(struct pubmap *p);

/* Marks the ranges (bytes, granule-aligned) not shared (shared = false) or shared, as one change that
 * readers see whole or not at all. */
void pubmap_set(struct pubmap *p, const struct conv_range *ranges, size_t n, bool shared);
