/* SPDX-License-Identifier: MIT */
/*
 * replay-main: the main() a fuzz target gets outside libFuzzer. Runs every input it is given through
 * LLVMFuzzerTestOneInput, in a fixed order, so a corpus or a crash reproducer replays under gcc, ASan
 * and valgrind alike.
 *
 *   replay [--check-seeds] PATH...
 *
 * A PATH that is a directory stands for every regular file in it (not recursing; dot files skipped),
 * in name order. --check-seeds also requires every op-*, event-* and reply-* file to pass the target's
 * seed check, and the target to have seen a passing seed for everything it requires (fuzz.h).
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static bool check_seeds;
static unsigned n_run, n_checked, n_failed;

static int read_file(const char *path, uint8_t **ret, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	size_t cap = 4096, len = 0;
	uint8_t *buf = malloc(cap);
	for (;;) {
		if (!buf) {
			fclose(f);
			return -ENOMEM;
		}
		len += fread(buf + len, 1, cap - len, f);
		if (len < cap)
			break;
		cap *= 2;
		uint8_t *nb = realloc(buf, cap);
		if (!nb)
			free(buf);
		buf = nb;
	}
	int e = ferror(f) ? -EIO : 0;
	fclose(f);
	if (e < 0) {
		free(buf);
		return e;
	}
	/* An exact-size copy, as libFuzzer passes it: ASan then sees any read past the end. */
	uint8_t *exact = malloc(len ? len : 1);
	if (!exact) {
		free(buf);
		return -ENOMEM;
	}
	memcpy(exact, buf, len);
	free(buf);
	*ret = exact;
	*ret_len = len;
	return 0;
}

static bool is_seed_name(const char *base)
{
	return strncmp(base, "op-", 3) == 0 || strncmp(base, "event-", 6) == 0 || strncmp(base, "reply-", 6) == 0;
}

static int run_one(const char *path)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int r = read_file(path, &data, &len);
	if (r < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(-r));
		return r;
	}
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (check_seeds && is_seed_name(base)) {
		char why[512] = "";
		n_checked++;
		if (fuzz_seed_check(base, data, len, why, sizeof(why)) < 0) {
			fprintf(stderr, "replay: seed %s does not do what its name says: %s\n", path, why);
			n_failed++;
		}
	} else {
		LLVMFuzzerTestOneInput(data, len);
	}
	n_run++;
	free(data);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -errno;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	int r = 0;
	for (struct dirent *de; (de = readdir(d));) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			char **nn = realloc(names, cap * sizeof(*names));
			if (!nn) {
				r = -ENOMEM;
				break;
			}
			names = nn;
		}
		if (asprintf(&names[n], "%s/%s", dir, de->d_name) < 0) {
			r = -ENOMEM;
			break;
		}
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		if (r == 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
			r = run_one(names[i]);
		free(names[i]);
	}
	free(names);
	return r;
}

int main(int argc, char **argv)
{
	int i = 1, r = 0;

	if (i < argc && strcmp(argv[i], "--check-seeds") == 0) {
		check_seeds = true;
		i++;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: %s [--check-seeds] FILE|DIR...\n", argv[0]);
		return 2;
	}
	for (; i < argc && r == 0; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		r = S_ISDIR(st.st_mode) ? run_dir(argv[i]) : run_one(argv[i]);
	}
	if (r < 0)
		return 1;
	if (check_seeds) {
		if (fuzz_seed_check_done() < 0)
			n_failed++;
		printf("replay: %u inputs, %u seeds checked, %u failed\n", n_run, n_checked, n_failed);
		return n_failed ? 1 : 0;
	}
	printf("replay: %u inputs, no crash\n", n_run);
	return 0;
}
