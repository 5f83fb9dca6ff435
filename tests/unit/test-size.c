/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "size.h"

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define TiB (UINT64_C(1) << 40)

#define SENTINEL UINT64_C(0xdeadbeefcafef00d)

static void expect_ok(const char *s, uint64_t want)
{
	uint64_t v = SENTINEL;
	int r = gmem_parse_size(s, &v);

	if (r != 0 || v != want)
		fail_msg("\"%s\": r=%d v=%ju, want 0 and %ju", s, r, (uintmax_t)v, (uintmax_t)want);
}

static void expect_err(const char *s, int want)
{
	uint64_t v = SENTINEL;
	int r = gmem_parse_size(s, &v);

	if (r != want)
		fail_msg("\"%s\": r=%d, want %d", s, r, want);
	/* The contract: *ret is written only on success. */
	assert_int_equal(v, SENTINEL);
}

static void test_plain(void **state)
{
	(void)state;
	expect_ok("0", 0);
	expect_ok("1", 1);
	expect_ok("4096", 4096);
	expect_ok("4097", 4097);
	expect_ok("007", 7);
	expect_ok("00000000000000000000000000000042", 42);
	expect_ok("1234567890", UINT64_C(1234567890));
}

static void test_suffixes(void **state)
{
	static const struct {
		const char *s;
		uint64_t v;
	} cases[] = {
		{ "1K", KiB }, { "1k", KiB }, { "1KiB", KiB }, { "1kiB", KiB },
		{ "1KB", KiB }, { "1kB", KiB }, { "64M", 64 * MiB }, { "64m", 64 * MiB },
		{ "64MiB", 64 * MiB }, { "64MB", 64 * MiB }, { "1G", GiB }, { "1g", GiB },
		{ "1GiB", GiB }, { "1GB", GiB }, { "2T", 2 * TiB }, { "2t", 2 * TiB },
		{ "2TiB", 2 * TiB }, { "2TB", 2 * TiB }, { "0K", 0 }, { "0TiB", 0 },
		{ "1536K", 1536 * KiB }, { "3072M", 3 * GiB }, { "1024G", TiB }, { "1048576T", TiB * MiB },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_ok(cases[i].s, cases[i].v);
}

static void test_reject_syntax(void **state)
{
	static const char *const bad[] = {
		"",	     " 1",	     "1 ",	 "\t1",	 "1\n",
		"+1",	     "-1",	     "-0",	 "0x10", "0X10",
		"x",	     "10x",	     "1.5",	 "1.5G", ".5G",
		"1,000",     "1_000",	     "1e6",	 "K",	 "KiB",
		"M",	     "iB",	     "B",	 "G1",	 "1 G",
		"1G ",	     "1GG",	     "1GiBB",	 "1Gi",	 "1GIB",
		"1Gib",	     "1gb",	     "1Gb",	 "1Bi",	 "1iB",
		"1B",	     "1P",	     "1E",	 "1KM",	 "1b",
		"4096B",     "1ki",	     "1Ki",	 "1K B", "1K\n",
		"1\xc2\xb5", "\xef\xbc\x91", "1KiB\x01",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_err(bad[i], -EINVAL);
}

static void test_reject_null(void **state)
{
	uint64_t v = SENTINEL;

	(void)state;
	assert_int_equal(gmem_parse_size(NULL, &v), -EINVAL);
	assert_int_equal(v, SENTINEL);
	assert_int_equal(gmem_parse_size("1", NULL), -EINVAL);
}

/*
 * INT64_MAX = 2^63 - 1, so the largest accepted count for a suffix of 2^s is floor((2^63 - 1) / 2^s)
 * = 2^(63-s) - 1, and one more is -ERANGE.
 */
static void test_range(void **state)
{
	(void)state;
	expect_ok("9223372036854775807", (uint64_t)INT64_MAX);
	expect_err("9223372036854775808", -ERANGE);
	expect_err("18446744073709551615", -ERANGE);
	expect_err("18446744073709551616", -ERANGE);
	expect_err("99999999999999999999999999999999", -ERANGE);
	expect_ok("09223372036854775807", (uint64_t)INT64_MAX);

	expect_ok("9007199254740991K", ((UINT64_C(1) << 53) - 1) * KiB);
	expect_err("9007199254740992K", -ERANGE);
	expect_ok("8796093022207M", ((UINT64_C(1) << 43) - 1) * MiB);
	expect_err("8796093022208M", -ERANGE);
	expect_ok("8589934591G", ((UINT64_C(1) << 33) - 1) * GiB);
	expect_err("8589934592GiB", -ERANGE);
	expect_ok("8388607T", ((UINT64_C(1) << 23) - 1) * TiB);
	expect_ok("8388607TiB", (uint64_t)INT64_MAX - (TiB - 1));
	expect_err("8388608T", -ERANGE);
	expect_err("8388608TB", -ERANGE);
	/* Would wrap to a small number if the multiplication were done modulo 2^64. */
	expect_err("16777216T", -ERANGE);
	expect_err("99999999999999999999T", -ERANGE);
}

/* A malformed string is -EINVAL even when its digits alone would overflow. */
static void test_syntax_beats_range(void **state)
{
	(void)state;
	expect_err("99999999999999999999x", -EINVAL);
	expect_err("99999999999999999999 ", -EINVAL);
	expect_err("99999999999999999999.5", -EINVAL);
	expect_err("8388608TiBx", -EINVAL);
}

static void expect_format(uint64_t v, const char *want)
{
	char buf[GMEM_SIZE_STRLEN];

	assert_ptr_equal(gmem_format_size(v, buf, sizeof(buf)), buf);
	assert_string_equal(buf, want);
}

static void test_format(void **state)
{
	(void)state;
	expect_format(0, "0");
	expect_format(1, "1");
	expect_format(1023, "1023");
	expect_format(KiB, "1K");
	expect_format(4096, "4K");
	expect_format(4097, "4097");
	expect_format(1536 * KiB, "1536K");
	expect_format(2 * MiB, "2M");
	expect_format(2 * MiB + KiB, "2049K");
	expect_format(3 * GiB, "3G");
	expect_format(TiB, "1T");
	expect_format(1024 * TiB, "1024T");
	expect_format((uint64_t)INT64_MAX, "9223372036854775807");
	expect_format((uint64_t)INT64_MAX - (TiB - 1), "8388607T");
	expect_format(UINT64_C(1) << 63, "8388608T");
	expect_format(UINT64_MAX, "18446744073709551615");
}

static void test_format_truncates(void **state)
{
	char buf[4];

	(void)state;
	memset(buf, 'x', sizeof(buf));
	assert_ptr_equal(gmem_format_size(123456, buf, sizeof(buf)), buf);
	assert_string_equal(buf, "123");
}

static void round_trip(uint64_t v)
{
	char buf[GMEM_SIZE_STRLEN];
	uint64_t back = SENTINEL;

	gmem_format_size(v, buf, sizeof(buf));
	if (gmem_parse_size(buf, &back) != 0 || back != v)
		fail_msg("%ju -> \"%s\" -> %ju", (uintmax_t)v, buf, (uintmax_t)back);
}

static void test_round_trip(void **state)
{
	uint64_t x = UINT64_C(0x9e3779b97f4a7c15);

	(void)state;
	for (unsigned s = 0; s < 63; s++) {
		round_trip(UINT64_C(1) << s);
		round_trip((UINT64_C(1) << s) - 1);
		round_trip((UINT64_C(1) << s) + 1);
		if (s < 62)
			round_trip(UINT64_C(3) << s);
	}
	round_trip((uint64_t)INT64_MAX);
	round_trip((uint64_t)INT64_MAX - (TiB - 1));
	for (int i = 0; i < 10000; i++) {
		/* xorshift64: a fixed sequence, independent of the libc's rand(). */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		round_trip((x >> 1) & ~((UINT64_C(1) << (x % 48)) - 1));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_suffixes),
		cmocka_unit_test(test_reject_syntax),
		cmocka_unit_test(test_reject_null),
		cmocka_unit_test(test_range),
		cmocka_unit_test(test_syntax_beats_range),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_truncates),
		cmocka_unit_test(test_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
