/* SPDX-License-Identifier: MIT */
/*
 * gmemctl: the operator's CLI, built only on libgmem. One table of commands; every listing has a text
 * and a --json form; exit status 0 on success, 1 when gmemd refused or could not be reached, 2 on a
 * usage error, and every error is one line on stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <gmem/gmem.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "size.h"

#ifndef GMEM_VERSION
#define GMEM_VERSION "0"
#endif

enum { EXIT_REFUSED = 1, EXIT_USAGE = 2 };

static const char *arg_socket;
static bool arg_json;
static uint64_t arg_granule;
static bool arg_granule_set;

struct command {
	const char *name;
	const char *args;
	const char *help;
	int min_args, max_args;
	int (*fn)(struct gmem_client *c, char **argv);
};

/* Text from gmemd may quote what other clients sent: never let it drive the terminal. */
static void print_clean(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		fputc(ch < 0x20 || ch == 0x7f ? '?' : ch, f);
	}
}

static int fail(struct gmem_client *c, int err, const char *fmt, ...)
{
	va_list ap;
	fputs("gmemctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s", strerror(-err));
	const char *detail = c ? gmem_last_error(c) : "";
	if (detail && *detail) {
		fputs(" (", stderr);
		print_clean(stderr, detail);
		fputc(')', stderr);
	}
	fputc('\n', stderr);
	return EXIT_REFUSED;
}

static void print_json(struct json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
	json_object_put(o);
}

static int cmd_status(struct gmem_client *c, char **argv)
{
	struct gmem_status s;
	char a[GMEM_SIZE_STRLEN], b[GMEM_SIZE_STRLEN], t[GMEM_SIZE_STRLEN];
	(void)argv;

	int r = gmem_status(c, &s);
	if (r < 0)
		return fail(c, r, "status");
	if (arg_json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "server", json_object_new_string(s.server));
		json_object_object_add(o, "backend", json_object_new_string(s.backend));
		json_object_object_add(o, "enforcing", json_object_new_boolean(s.enforcing));
		json_object_object_add(o, "pool_size", json_object_new_uint64(s.pool_size));
		json_object_object_add(o, "pool_used", json_object_new_uint64(s.pool_used));
		json_object_object_add(o, "touched", json_object_new_uint64(s.touched));
		json_object_object_add(o, "guests", json_object_new_uint64(s.guests));
		json_object_object_add(o, "clients", json_object_new_uint64(s.clients));
		print_json(o);
		return 0;
	}
	printf("server:    %s\n", s.server);
	printf("backend:   %s (%s)\n", s.backend,
	       s.enforcing ? "enforcing: the kernel revokes private memory"
			   : "NOT enforcing: shared/private is what clients declare");
	printf("pool:      %s of %s allocated\n", gmem_format_size(s.pool_used, a, sizeof(a)),
	       gmem_format_size(s.pool_size, b, sizeof(b)));
	printf("touched:   %s\n", gmem_format_size(s.touched, t, sizeof(t)));
	printf("guests:    %llu\n", (unsigned long long)s.guests);
	printf("clients:   %llu\n", (unsigned long long)s.clients);
	return 0;
}

static struct json_object *guest_json(const struct gmem_guest_info *g)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_uint64(g->id));
	json_object_object_add(o, "name", json_object_new_string(g->name));
	json_object_object_add(o, "size", json_object_new_uint64(g->size));
	json_object_object_add(o, "granule", json_object_new_uint64(g->granule));
	json_object_object_add(o, "owner_uid", json_object_new_uint64(g->owner_uid));
	json_object_object_add(o, "touched", json_object_new_uint64(g->touched));
	json_object_object_add(o, "holders", json_object_new_uint64(g->holders));
	json_object_object_add(o, "attachments", json_object_new_uint64(g->attachments));
	json_object_object_add(o, "leased", json_object_new_boolean(g->leased));
	return o;
}

static int cmd_guests(struct gmem_client *c, char **argv)
{
	struct gmem_guest_info *gs;
	size_t n;
	(void)argv;

	int r = gmem_guest_list(c, &gs, &n);
	if (r < 0)
		return fail(c, r, "guests");
	if (arg_json) {
		struct json_object *a = json_object_new_array();
		for (size_t i = 0; i < n; i++)
			json_object_array_add(a, guest_json(&gs[i]));
		print_json(a);
	} else {
		printf("%-24s %10s %8s %10s %6s %8s %6s\n", "NAME", "SIZE", "GRANULE", "TOUCHED", "OWNER", "HOLDERS",
		       "LEASED");
		for (size_t i = 0; i < n; i++) {
			char s[GMEM_SIZE_STRLEN], gr[GMEM_SIZE_STRLEN], t[GMEM_SIZE_STRLEN];
			printf("%-24s %10s %8s %10s %6u %8llu %6s\n", gs[i].name,
			       gmem_format_size(gs[i].size, s, sizeof(s)),
			       gmem_format_size(gs[i].granule, gr, sizeof(gr)),
			       gmem_format_size(gs[i].touched, t, sizeof(t)), gs[i].owner_uid,
			       (unsigned long long)gs[i].holders, gs[i].leased ? "yes" : "no");
		}
	}
	free(gs);
	return 0;
}

static int cmd_create(struct gmem_client *c, char **argv)
{
	struct gmem_guest_info g;
	uint64_t size;
	int r = gmem_parse_size(argv[1], &size);
	if (r < 0 || size == 0) {
		fprintf(stderr, "gmemctl: create: '%s' is not a size (e.g. 64M, 2G)\n", argv[1]);
		return EXIT_USAGE;
	}
	r = gmem_guest_create(c, argv[0], size, arg_granule, &g);
	if (r < 0)
		return fail(c, r, "create %s", argv[0]);
	if (arg_json)
		print_json(guest_json(&g));
	return 0;
}

static int cmd_destroy(struct gmem_client *c, char **argv)
{
	int r = gmem_guest_destroy(c, argv[0]);
	return r < 0 ? fail(c, r, "destroy %s", argv[0]) : 0;
}

static const struct command commands[] = {
	{ "status", "", "pool, backend and counts", 0, 0, cmd_status },
	{ "guests", "", "list the guests you may see", 0, 0, cmd_guests },
	{ "create", "GUEST SIZE [--granule 4K|2M]", "create a guest of SIZE bytes", 2, 2, cmd_create },
	{ "destroy", "GUEST", "destroy a guest; its memory returns to the pool at once", 1, 1, cmd_destroy },
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: gmemctl [--socket PATH] [--json] COMMAND [ARGS]\n"
		   "Talk to gmemd, the guest memory broker.\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		char left[64];
		snprintf(left, sizeof(left), "%s %s", commands[i].name, commands[i].args);
		fprintf(f, "  %-40s %s\n", left, commands[i].help);
	}
	fprintf(f, "\nOptions:\n"
		   "  --socket PATH   gmemd's socket (default: $GMEM_SOCKET, else /run/gmem/gmemd.sock)\n"
		   "  --json          machine-readable output\n"
		   "  --granule G     create: 4K (default) or 2M\n"
		   "  -h, --help      show this help\n"
		   "  --version       show the version\n"
		   "\nSizes take binary suffixes K, M, G, T. Exit status: 0 success, 1 refused or unreachable,\n"
		   "2 usage error.\n");
}

int main(int argc, char **argv)
{
	enum { OPT_SOCKET = 256, OPT_JSON, OPT_GRANULE, OPT_VERSION };
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "granule", required_argument, NULL, OPT_GRANULE },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{},
	};
	int c;

	opterr = 0; /* our own one-line message below */
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) >= 0) {
		switch (c) {
		case OPT_SOCKET:
			arg_socket = optarg;
			break;
		case OPT_JSON:
			arg_json = true;
			break;
		case OPT_GRANULE:
			if (gmem_parse_size(optarg, &arg_granule) < 0 ||
			    (arg_granule != GMEM_GRANULE_4K && arg_granule != GMEM_GRANULE_2M)) {
				fprintf(stderr, "gmemctl: --granule must be 4K or 2M\n");
				return EXIT_USAGE;
			}
			arg_granule_set = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case OPT_VERSION:
			printf("gmemctl %s\n", GMEM_VERSION);
			return 0;
		case ':':
			fprintf(stderr, "gmemctl: option '%s' needs an argument; try 'gmemctl --help'\n",
				argv[optind - 1]);
			return EXIT_USAGE;
		default:
			fprintf(stderr, "gmemctl: unknown option '%s'; try 'gmemctl --help'\n", argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}

	const struct command *cmd = NULL;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, argv[optind]) == 0)
			cmd = &commands[i];
	if (!cmd) {
		fprintf(stderr, "gmemctl: unknown command '%s'; try 'gmemctl --help'\n", argv[optind]);
		return EXIT_USAGE;
	}
	int nargs = argc - optind - 1;
	if (nargs < cmd->min_args || nargs > cmd->max_args) {
		fprintf(stderr, "gmemctl: usage: gmemctl %s %s\n", cmd->name, cmd->args);
		return EXIT_USAGE;
	}
	if (arg_granule_set && cmd->fn != cmd_create) {
		fprintf(stderr, "gmemctl: --granule applies to create only\n");
		return EXIT_USAGE;
	}

	struct gmem_client *gc;
	int r = gmem_connect(arg_socket, GMEM_ROLE_ADMIN, &gc);
	if (r == -EPERM)
		r = gmem_connect(arg_socket, GMEM_ROLE_VMM, &gc);
	if (r < 0) {
		const char *path = arg_socket ? arg_socket : getenv("GMEM_SOCKET");
		return fail(NULL, r, "cannot reach gmemd at %s", path && *path ? path : "/run/gmem/gmemd.sock");
	}
	r = cmd->fn(gc, argv + optind + 1);
	gmem_disconnect(gc);
	return r;
}
