/* SPDX-License-Identifier: MIT */
/*
 * size: the one parser and printer of byte counts used by gmemd's options, gmemctl and the tests.
 *
 * Accepts a decimal integer with an optional binary suffix K, M, G or T (any case, optionally followed by
 * "iB" or "B"): "4096", "64M", "2T", "1GiB". No sign, no spaces, no fractions, no hex. Overflow past
 * INT64_MAX (the protocol's integer range) is -ERANGE.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Return: 0, -EINVAL (not a size), -ERANGE (too large). *ret written only on success. */
int gmem_parse_size(const char *s, uint64_t *ret);

/* Shortest exact form: 2097152 -> "2M", 4097 -> "4097". Returns buf. */
char *gmem_format_size(uint64_t v, char *buf, size_t len);
#define GMEM_SIZE_STRLEN 24
