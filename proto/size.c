/* SPDX-License-Identifier: MIT */
/*
 * size: hand-rolled instead of strtoull, which accepts leading spaces, signs and hex, wraps negative
 * numbers around, and depends on errno for overflow.
 */
#include "size.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>

#include "util.h"

static const struct {
	char letter;
	unsigned shift;
} suffixes[] = {
	/* Largest first, so that formatting picks the shortest form. */
	{ 'T', 40 },
	{ 'G', 30 },
	{ 'M', 20 },
	{ 'K', 10 },
};

static unsigned suffix_shift(char c)
{
	/* Not toupper(): that would make the accepted syntax depend on the locale. */
	if (c >= 'a' && c <= 'z')
		c = (char)(c - 'a' + 'A');
	for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++)
		if (suffixes[i].letter == c)
			return suffixes[i].shift;
	return 0;
}

int gmem_parse_size(const char *s, uint64_t *ret)
{
	const char *p = s;
	uint64_t v = 0;
	unsigned shift = 0;
	bool overflow = false;

	if (!s || !ret)
		return -EINVAL;
	if (*p < '0' || *p > '9')
		return -EINVAL;
	/*
	 * Keep scanning past an overflow so that "99999999999999999999x" is -EINVAL: a malformed string is
	 * reported as such whatever its length.
	 */
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > ((uint64_t)INT64_MAX - d) / 10)
			overflow = true;
		else
			v = v * 10 + d;
	}
	if (*p) {
		shift = suffix_shift(*p);
		if (!shift)
			return -EINVAL;
		p++;
		if (p[0] == 'i' && p[1] == 'B')
			p += 2;
		else if (p[0] == 'B')
			p++;
		if (*p)
			return -EINVAL;
	}
	if (overflow || v > (uint64_t)INT64_MAX >> shift)
		return -ERANGE;
	*ret = v << shift;
	return 0;
}

char *gmem_format_size(uint64_t v, char *buf, size_t len)
{
	if (!buf || len == 0)
		return buf;
	if (v != 0)
		for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
			uint64_t mask = (UINT64_C(1) << suffixes[i].shift) - 1;

			if (!(v & mask)) {
				snprintf(buf, len, "%" PRIu64 "%c", v >> suffixes[i].shift,
					 suffixes[i].letter);
				return buf;
			}
		}
	snprintf(buf, len, "%" PRIu64, v);
	return buf;
}
