/* SPDX-License-Identifier: MIT */
/*
 * gmemctl-operator: the admin commands — holders, cancel, evict. gmemd checks the role; these only
 * parse, call and print.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "gmemctl.h"
#include "size.h"

enum { EXIT_USAGE = 2 };

static const char *const role_names[] = { "vmm", "device", "admin" };
static const char *const kind_names[] = { "mmap", "iommu", "kvm" };

static int parse_id(const char *s, const char *what, uint64_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v == 0 || s[0] == '-') {
		fprintf(stderr, "gmemctl: %s is a positive number, not '%s'\n", what, s);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

int cmd_holders(struct gmem_client *c, char **argv)
{
	struct gmem_holder_info *hs;
	size_t n;
	char a[GMEM_SIZE_STRLEN], b[GMEM_SIZE_STRLEN];

	int r = gmem_holders(c, argv[0], &hs, &n);
	if (r < 0)
		return fail(c, r, "holders %s", argv[0]);
	if (arg_json) {
		struct json_object *arr = json_object_new_array();
		for (size_t i = 0; i < n; i++) {
			struct json_object *o = json_object_new_object(), *rs = json_object_new_array();
			json_object_object_add(o, "client_id", json_object_new_uint64(hs[i].client_id));
			json_object_object_add(o, "pid", json_object_new_uint64(hs[i].pid));
			json_object_object_add(o, "uid", json_object_new_uint64(hs[i].uid));
			json_object_object_add(o, "client_name", json_object_new_string(hs[i].client_name));
			json_object_object_add(o, "role", json_object_new_string(role_names[hs[i].role % 3]));
			json_object_object_add(o, "files", json_object_new_uint64(hs[i].files));
			json_object_object_add(o, "leased", json_object_new_boolean(hs[i].leased));
			json_object_object_add(o, "attachments", json_object_new_uint64(hs[i].attachments));
			for (size_t k = 0; k < hs[i].n_ranges; k++) {
				struct json_object *x = json_object_new_object();
				json_object_object_add(x, "id", json_object_new_uint64(hs[i].ranges[k].id));
				json_object_object_add(x, "offset", json_object_new_uint64(hs[i].ranges[k].offset));
				json_object_object_add(x, "length", json_object_new_uint64(hs[i].ranges[k].length));
				json_object_object_add(x, "kind", json_object_new_string(kind_names[hs[i].ranges[k].kind % 3]));
				json_object_array_add(rs, x);
			}
			json_object_object_add(o, "ranges", rs);
			json_object_array_add(arr, o);
		}
		print_json(arr);
		free(hs);
		return 0;
	}
	printf("%-8s %8s %6s %-6s %-20s %5s %5s %s\n", "CLIENT", "PID", "UID", "ROLE", "NAME", "FILES", "LEASE",
	       "ATTACHMENTS");
	for (size_t i = 0; i < n; i++) {
		printf("%-8llu %8u %6u %-6s %-20s %5llu %5s %llu\n", (unsigned long long)hs[i].client_id, hs[i].pid,
		       hs[i].uid, role_names[hs[i].role % 3], hs[i].client_name[0] ? hs[i].client_name : "-",
		       (unsigned long long)hs[i].files, hs[i].leased ? "yes" : "no",
		       (unsigned long long)hs[i].attachments);
		for (size_t k = 0; k < hs[i].n_ranges; k++)
			printf("         attachment %llu: %s [%s, +%s)\n", (unsigned long long)hs[i].ranges[k].id,
			       kind_names[hs[i].ranges[k].kind % 3], gmem_format_size(hs[i].ranges[k].offset, a, sizeof(a)),
			       gmem_format_size(hs[i].ranges[k].length, b, sizeof(b)));
		if (hs[i].attachments > hs[i].n_ranges)
			printf("         ... and %llu more\n", (unsigned long long)(hs[i].attachments - hs[i].n_ranges));
	}
	free(hs);
	return 0;
}

int cmd_cancel(struct gmem_client *c, char **argv)
{
	uint64_t epoch = 0, seq;
	char buf[64];
	/* SEQ as convert and watch print it, or EPOCH:SEQ to name the gmemd run too. */
	snprintf(buf, sizeof(buf), "%s", argv[0]);
	char *colon = strchr(buf, ':');
	if (colon) {
		*colon = '\0';
		if (parse_id(buf, "an epoch", &epoch) < 0)
			return EXIT_USAGE;
	}
	if (parse_id(colon ? colon + 1 : buf, "a conversion id", &seq) < 0)
		return EXIT_USAGE;
	int r = gmem_cancel(c, epoch, seq);
	return r < 0 ? fail(c, r, "cancel %s", argv[0]) : 0;
}

int cmd_evict(struct gmem_client *c, char **argv)
{
	uint64_t id;
	if (parse_id(argv[0], "a client id", &id) < 0)
		return EXIT_USAGE;
	int r = gmem_evict(c, id);
	return r < 0 ? fail(c, r, "evict %s", argv[0]) : 0;
}
