/* SPDX-License-Identifier: MIT */
/*
 * gmemctl as an operator runs it: create, list as JSON (the size in bytes), destroy; every error is
 * one line on stderr with a non-zero exit status (1 refused or unreachable, 2 usage).
 */
#include <json-c/json.h>
#include <string.h>

#include "harness.h"

static struct gmemd d;

/* Runs gmemctl --socket S ARGS...; returns the exit status. */
static int ctl(char **out, char **err, const char *a1, const char *a2, const char *a3, const char *a4)
{
	const char *argv[] = { binary("GMEMCTL"), "--socket", d.socket, a1, a2, a3, a4, NULL };
	return run_capture(argv, out, err);
}

static int lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void expect_fail(int want, const char *a1, const char *a2, const char *a3, const char *a4)
{
	char *out, *err;
	int st = ctl(&out, &err, a1, a2, a3, a4);
	if (st != want || lines(err) != 1 || strncmp(err, "gmemctl: ", 9) != 0 || *out) {
		fprintf(stderr, "gmemctl %s %s: status %d (want %d), stdout '%s', stderr '%s'\n", a1, a2 ? a2 : "", st,
			want, out, err);
		exit(1);
	}
	free(out);
	free(err);
}

static struct json_object *find(struct json_object *arr, const char *name)
{
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *g = json_object_array_get_idx(arr, i), *n;
		if (json_object_object_get_ex(g, "name", &n) && strcmp(json_object_get_string(n), name) == 0)
			return g;
	}
	return NULL;
}

int main(void)
{
	char *out, *err;
	struct json_object *arr, *size;

	gmemd_start(&d, (const char *[]){ "--pool-size", "1G", NULL });

	CHECK_EQ(ctl(&out, &err, "create", "vm1", "64M", NULL), 0);
	CHECK(*err == '\0');
	free(out);
	free(err);

	CHECK_EQ(ctl(&out, &err, "guests", "--json", NULL, NULL), 0);
	arr = json_tokener_parse(out);
	CHECK(arr && json_object_is_type(arr, json_type_array));
	struct json_object *g = find(arr, "vm1");
	CHECK(g && json_object_object_get_ex(g, "size", &size));
	CHECK_EQ(json_object_get_int64(size), 64LL << 20);
	json_object_put(arr);
	free(out);
	free(err);

	CHECK_EQ(ctl(&out, &err, "status", "--json", NULL, NULL), 0);
	arr = json_tokener_parse(out);
	CHECK(arr && json_object_object_get_ex(arr, "pool_used", &size));
	CHECK_EQ(json_object_get_int64(size), 64LL << 20);
	json_object_put(arr);
	free(out);
	free(err);

	expect_fail(1, "create", "vm1", "64M", NULL);        /* exists */
	expect_fail(1, "create", "huge", "2G", NULL);        /* pool is 1G */
	expect_fail(1, "create", "x", "5000", NULL);         /* not a granule multiple */
	expect_fail(2, "create", "x", "lots", NULL);         /* not a size */
	expect_fail(2, "create", "x", "4M", "--granule=3K"); /* bad granule */
	expect_fail(2, "create", "x", NULL, NULL);           /* missing argument */
	expect_fail(2, "frobnicate", NULL, NULL, NULL);      /* unknown command */
	expect_fail(2, "--bogus", "status", NULL, NULL);     /* unknown option */

	CHECK_EQ(ctl(&out, &err, "destroy", "vm1", NULL, NULL), 0);
	free(out);
	free(err);
	expect_fail(1, "destroy", "vm1", NULL, NULL);
	CHECK_EQ(ctl(&out, &err, "guests", "--json", NULL, NULL), 0);
	arr = json_tokener_parse(out);
	CHECK(arr && !find(arr, "vm1"));
	json_object_put(arr);
	free(out);
	free(err);

	const char *help[] = { binary("GMEMCTL"), "--help", NULL };
	CHECK_EQ(run_capture(help, &out, &err), 0);
	CHECK(strstr(out, "create GUEST SIZE") && strstr(out, "--json"));
	free(out);
	free(err);

	CHECK_EQ(gmemd_stop(&d), 0);
	/* No gmemd: one line, status 1. */
	expect_fail(1, "status", NULL, NULL, NULL);
	printf("ok gmemctl create/guests --json/destroy and its errors\n");
	return 0;
}
