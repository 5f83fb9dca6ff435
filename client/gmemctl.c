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
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "gmemctl-exec.h"
#include "gmemctl.h"
#include "size.h"

#ifndef GMEM_VERSION
#define GMEM_VERSION "0"
#endif

/* convert: the exit status tells the outcome. */
enum { EXIT_REFUSED = 1, EXIT_USAGE = 2, EXIT_ABORTED = 3, EXIT_UNVERIFIED = 4 };

static const char *arg_socket;
bool arg_json;
static uint64_t arg_granule;
static bool arg_granule_set;
static unsigned arg_node;
static bool arg_node_set;
static bool arg_zero, arg_force, arg_lost, arg_ephemeral, arg_orphans, arg_orphan, arg_owner_set;
static const char *arg_name;
static uint32_t arg_owner;

struct command {
	const char *name;
	const char *args;
	const char *help;
	int min_args, max_args;
	int (*fn)(struct gmem_client *c, char **argv);
};

/* Text from gmemd may quote what other clients sent: never let it drive the terminal. C0 controls, DEL
 * and the C1 controls (U+0080..U+009F, two bytes in UTF-8: a terminal in UTF-8 mode takes U+009B for
 * CSI) each print as '?'. */
void print_clean(FILE *f, const char *s)
{
#ifdef GMEM_TEST_RAW_TEXT
	/* gmemctl-rawtext, the control of test-hostile's escape check: text as it came. */
	fputs(s, f);
	return;
#endif
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == 0xc2 && (unsigned char)s[1] >= 0x80 && (unsigned char)s[1] <= 0x9f) {
			s++;
			fputc('?', f);
		} else {
			fputc(ch < 0x20 || ch == 0x7f ? '?' : ch, f);
		}
	}
}

int fail(struct gmem_client *c, int err, const char *fmt, ...)
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

/* json-c escapes C0 controls in strings but writes DEL and the C1 controls as they are: escape those
 * too, so --json output is as safe on a terminal as the text. Outside strings JSON is ASCII, so these
 * bytes only occur inside strings, where \u00XX means the same character. */
void print_json(struct json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
#ifndef GMEM_TEST_RAW_TEXT
		if (ch == 0x7f) {
			fputs("\\u007f", stdout);
			continue;
		}
		if (ch == 0xc2 && (unsigned char)s[1] >= 0x80 && (unsigned char)s[1] <= 0x9f) {
			printf("\\u00%02x", (unsigned char)*++s);
			continue;
		}
#endif
		putchar(ch);
	}
	putchar('\n');
	json_object_put(o);
}

/* Quarantine records (of guest name, or all when NULL), as JSON or as lines under a heading. */
static struct json_object *quarantine_json(const struct gmem_quarantine_info *q, size_t n)
{
	struct json_object *arr = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		struct json_object *x = json_object_new_object();
		json_object_object_add(x, "guest", json_object_new_string(q[i].guest));
		json_object_object_add(x, "destroyed", json_object_new_boolean(q[i].destroyed));
		json_object_object_add(x, "offset", json_object_new_uint64(q[i].offset));
		json_object_object_add(x, "length", json_object_new_uint64(q[i].length));
		if (q[i].seq)
			json_object_object_add(x, "seq", json_object_new_uint64(q[i].seq));
		json_object_object_add(x, "client_id", json_object_new_uint64(q[i].client_id));
		json_object_object_add(x, "pid", json_object_new_uint64(q[i].pid));
		json_object_object_add(x, "client_name", json_object_new_string(q[i].client_name));
		json_object_array_add(arr, x);
	}
	return arr;
}

static void quarantine_print(const struct gmem_quarantine_info *q, size_t n)
{
	char a[GMEM_SIZE_STRLEN], b[GMEM_SIZE_STRLEN];
	for (size_t i = 0; i < n; i++) {
		printf("  %s%s %s +%s held for client %llu '%s' (pid %u)", q[i].guest, q[i].destroyed ? " (destroyed)" : "",
		       gmem_format_size(q[i].offset, a, sizeof(a)), gmem_format_size(q[i].length, b, sizeof(b)),
		       (unsigned long long)q[i].client_id, q[i].client_name, q[i].pid);
		if (q[i].seq)
			printf(": did not ack conversion %llu", (unsigned long long)q[i].seq);
		printf("\n");
	}
}

static int cmd_status(struct gmem_client *c, char **argv)
{
	struct gmem_status s;
	char a[GMEM_SIZE_STRLEN], b[GMEM_SIZE_STRLEN], t[GMEM_SIZE_STRLEN];
	(void)argv;

	struct gmem_quarantine_info *qi = NULL;
	size_t nq = 0;
	uint64_t qbytes = 0;
	int r = gmem_status(c, &s);
	if (r < 0)
		return fail(c, r, "status");
	struct gmem_node_info *nodes = NULL;
	size_t n_nodes = 0;
	r = gmem_pool_nodes(c, &nodes, &n_nodes);
	if (r < 0)
		return fail(c, r, "status (per node)");
	r = gmem_quarantine_list(c, NULL, &qi, &nq, &qbytes);
	if (r < 0)
		return fail(c, r, "status: quarantine");
	if (arg_json) {
		struct json_object *na = json_object_new_array();
		for (size_t i = 0; i < n_nodes; i++) {
			struct json_object *x = json_object_new_object();
			json_object_object_add(x, "node", json_object_new_uint64(nodes[i].node));
			json_object_object_add(x, "total", json_object_new_uint64(nodes[i].total));
			json_object_object_add(x, "free", json_object_new_uint64(nodes[i].free));
			json_object_array_add(na, x);
		}
		free(nodes);
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "server", json_object_new_string(s.server));
		json_object_object_add(o, "backend", json_object_new_string(s.backend));
		json_object_object_add(o, "enforcing", json_object_new_boolean(s.enforcing));
		json_object_object_add(o, "pool_size", json_object_new_uint64(s.pool_size));
		json_object_object_add(o, "pool_used", json_object_new_uint64(s.pool_used));
		json_object_object_add(o, "touched", json_object_new_uint64(s.touched));
		json_object_object_add(o, "guests", json_object_new_uint64(s.guests));
		json_object_object_add(o, "clients", json_object_new_uint64(s.clients));
		json_object_object_add(o, "nodes", na);
		json_object_object_add(o, "quarantined", json_object_new_uint64(qbytes));
		json_object_object_add(o, "quarantine", quarantine_json(qi, nq));
		print_json(o);
		free(qi);
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
	for (size_t i = 0; i < n_nodes; i++)
		printf("node %u:    %s free of %s\n", nodes[i].node, gmem_format_size(nodes[i].free, a, sizeof(a)),
		       gmem_format_size(nodes[i].total, b, sizeof(b)));
	free(nodes);
	printf("quarantined: %s\n", gmem_format_size(qbytes, t, sizeof(t)));
	quarantine_print(qi, nq);
	free(qi);
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

/* Module ids on the command line: decimal, > 0. */
static int parse_id(const char *s, uint64_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v == 0 || s[0] == '-')
		return -EINVAL;
	*ret = v;
	return 0;
}

static int cmd_orphans(struct gmem_client *c)
{
	struct gmem_orphan_info *os;
	size_t n;
	int r = gmem_orphan_list(c, &os, &n);
	if (r < 0)
		return fail(c, r, "guests --orphans");
	if (arg_json) {
		struct json_object *a = json_object_new_array();
		for (size_t i = 0; i < n; i++) {
			struct json_object *o = json_object_new_object();
			json_object_object_add(o, "id", json_object_new_uint64(os[i].id));
			json_object_object_add(o, "size", json_object_new_uint64(os[i].size));
			json_object_object_add(o, "granule", json_object_new_uint64(os[i].granule));
			json_object_object_add(o, "node", json_object_new_int(os[i].node));
			json_object_object_add(o, "private", json_object_new_uint64(os[i].private_bytes));
			json_object_object_add(o, "holders", json_object_new_uint64(os[i].holders));
			json_object_object_add(o, "cookie", json_object_new_uint64(os[i].cookie));
			json_object_array_add(a, o);
		}
		print_json(a);
	} else {
		printf("%-10s %10s %8s %5s %10s %7s %8s\n", "ORPHAN", "SIZE", "GRANULE", "NODE", "PRIVATE", "FILES",
		       "COOKIE");
		for (size_t i = 0; i < n; i++) {
			char sz[GMEM_SIZE_STRLEN], gr[GMEM_SIZE_STRLEN], pv[GMEM_SIZE_STRLEN], node[16] = "any";
			if (os[i].node >= 0)
				snprintf(node, sizeof(node), "%d", os[i].node);
			printf("%-10llu %10s %8s %5s %10s %7llu %8llu\n", (unsigned long long)os[i].id,
			       gmem_format_size(os[i].size, sz, sizeof(sz)),
			       gmem_format_size(os[i].granule, gr, sizeof(gr)), node,
			       gmem_format_size(os[i].private_bytes, pv, sizeof(pv)), (unsigned long long)os[i].holders,
			       (unsigned long long)os[i].cookie);
		}
	}
	free(os);
	return 0;
}

static int cmd_adopt(struct gmem_client *c, char **argv)
{
	struct gmem_guest_info g;
	uint64_t id;
	char name[GMEM_NAME_MAX_LEN + 1];

	if (parse_id(argv[0], &id) < 0) {
		fprintf(stderr, "gmemctl: adopt: '%s' is not an orphan's id (see gmemctl guests --orphans)\n", argv[0]);
		return EXIT_USAGE;
	}
	if (arg_name)
		snprintf(name, sizeof(name), "%s", arg_name);
	else
		snprintf(name, sizeof(name), "orphan-%llu", (unsigned long long)id);
	int r = gmem_orphan_adopt(c, id, name, arg_owner_set ? arg_owner : (uint32_t)getuid(), &g);
	if (r < 0)
		return fail(c, r, "adopt %s", argv[0]);
	if (arg_json)
		print_json(guest_json(&g));
	return 0;
}

static int cmd_guests(struct gmem_client *c, char **argv)
{
	struct gmem_guest_info *gs;
	size_t n;
	(void)argv;

	if (arg_orphans)
		return cmd_orphans(c);

	int r = arg_lost ? gmem_guest_list_lost(c, &gs, &n) : gmem_guest_list(c, &gs, &n);
	if (r < 0)
		return fail(c, r, "guests");
	if (arg_lost) {
		if (arg_json) {
			struct json_object *a = json_object_new_array();
			for (size_t i = 0; i < n; i++) {
				struct json_object *o = json_object_new_object();
				json_object_object_add(o, "id", json_object_new_uint64(gs[i].id));
				json_object_object_add(o, "name", json_object_new_string(gs[i].name));
				json_object_object_add(o, "size", json_object_new_uint64(gs[i].size));
				json_object_object_add(o, "granule", json_object_new_uint64(gs[i].granule));
				json_object_object_add(o, "owner_uid", json_object_new_uint64(gs[i].owner_uid));
				json_object_array_add(a, o);
			}
			print_json(a);
		} else {
			printf("%-24s %10s %8s %6s\n", "LOST GUEST", "SIZE", "GRANULE", "OWNER");
			for (size_t i = 0; i < n; i++) {
				char sz[GMEM_SIZE_STRLEN], gr[GMEM_SIZE_STRLEN];
				printf("%-24s %10s %8s %6u\n", gs[i].name, gmem_format_size(gs[i].size, sz, sizeof(sz)),
				       gmem_format_size(gs[i].granule, gr, sizeof(gr)), gs[i].owner_uid);
			}
		}
		free(gs);
		return 0;
	}
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

static int cmd_forget(struct gmem_client *c, char **argv)
{
	int r = gmem_guest_forget(c, argv[0]);
	return r < 0 ? fail(c, r, "forget %s", argv[0]) : 0;
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
	r = arg_node_set ? gmem_guest_create_on_node(c, argv[0], size, arg_granule, arg_node, &g)
			 : gmem_guest_create_ex(c, argv[0], size, arg_granule, arg_ephemeral ? GMEM_CREATE_EPHEMERAL : 0, &g);
	if (r < 0)
		return fail(c, r, "create %s", argv[0]);
	if (arg_json)
		print_json(guest_json(&g));
	return 0;
}

static int cmd_destroy(struct gmem_client *c, char **argv)
{
	if (arg_orphan) {
		uint64_t id;
		if (parse_id(argv[0], &id) < 0) {
			fprintf(stderr, "gmemctl: destroy --orphan: '%s' is not an orphan's id (see gmemctl guests "
				"--orphans)\n", argv[0]);
			return EXIT_USAGE;
		}
		int r = gmem_orphan_destroy(c, id);
		return r < 0 ? fail(c, r, "destroy --orphan %s", argv[0]) : 0;
	}
	int r = gmem_guest_destroy_ex(c, argv[0], arg_force ? GMEM_DESTROY_FORCE : 0);
	return r < 0 ? fail(c, r, "destroy %s", argv[0]) : 0;
}

static const char *const outcome_names[] = { "committed", "aborted", "committed-unverified" };

static int cmd_convert(struct gmem_client *c, char **argv)
{
	struct gmem_range range;
	struct gmem_convert_result res;
	enum gmem_target target;
	char a[GMEM_SIZE_STRLEN], b[GMEM_SIZE_STRLEN];

	if (gmem_parse_size(argv[1], &range.offset) < 0 || gmem_parse_size(argv[2], &range.length) < 0 ||
	    range.length == 0) {
		fprintf(stderr, "gmemctl: convert: OFFSET and LENGTH are sizes (e.g. 0 2M), LENGTH non-zero\n");
		return EXIT_USAGE;
	}
	if (strcmp(argv[3], "shared") == 0) {
		target = GMEM_SHARED;
	} else if (strcmp(argv[3], "private") == 0) {
		target = GMEM_PRIVATE;
	} else {
		fprintf(stderr, "gmemctl: convert: the target is 'shared' or 'private', not '%s'\n", argv[3]);
		return EXIT_USAGE;
	}
	unsigned flags = (arg_zero ? GMEM_CONVERT_ZERO : 0) | (arg_force ? GMEM_CONVERT_FORCE : 0);
	int r = gmem_convert(c, argv[0], &range, 1, target, flags, &res);
	if (r < 0)
		return fail(c, r, "convert %s", argv[0]);

	if (arg_json) {
		struct json_object *o = json_object_new_object(), *refs = json_object_new_array();
		json_object_object_add(o, "conversion", json_object_new_uint64(res.seq));
		json_object_object_add(o, "epoch", json_object_new_uint64(res.epoch));
		json_object_object_add(o, "outcome", json_object_new_string(outcome_names[res.outcome]));
		json_object_object_add(o, "changed", json_object_new_uint64(res.changed));
		json_object_object_add(o, "participants", json_object_new_uint64(res.participants));
		json_object_object_add(o, "latency_us", json_object_new_uint64(res.latency_us));
		for (size_t i = 0; i < res.n_refusals; i++) {
			struct json_object *x = json_object_new_object();
			json_object_object_add(x, "pid", json_object_new_uint64(res.refusals[i].pid));
			json_object_object_add(x, "client_id", json_object_new_uint64(res.refusals[i].client_id));
			json_object_object_add(x, "client_name", json_object_new_string(res.refusals[i].client_name));
			json_object_object_add(x, "errno", json_object_new_int(res.refusals[i].err));
			json_object_object_add(x, "reason", json_object_new_string(res.refusals[i].reason));
			json_object_object_add(x, "timed_out", json_object_new_boolean(res.refusals[i].timed_out));
			json_object_object_add(x, "gone", json_object_new_boolean(res.refusals[i].gone));
			json_object_array_add(refs, x);
		}
		json_object_object_add(o, "refusals", refs);
		struct json_object *rev = json_object_new_array();
		for (size_t i = 0; i < res.n_revoked; i++) {
			struct json_object *x = json_object_new_object();
			json_object_object_add(x, "pid", json_object_new_uint64(res.revoked[i].pid));
			json_object_object_add(x, "client_id", json_object_new_uint64(res.revoked[i].client_id));
			json_object_object_add(x, "client_name", json_object_new_string(res.revoked[i].client_name));
			json_object_array_add(rev, x);
		}
		json_object_object_add(o, "revoked", rev);
		struct json_object *na = json_object_new_array();
		for (size_t i = 0; i < res.n_not_asked; i++) {
			struct json_object *x = json_object_new_object();
			json_object_object_add(x, "pid", json_object_new_uint64(res.not_asked[i].pid));
			json_object_object_add(x, "client_id", json_object_new_uint64(res.not_asked[i].client_id));
			json_object_object_add(x, "client_name", json_object_new_string(res.not_asked[i].client_name));
			json_object_array_add(na, x);
		}
		json_object_object_add(o, "not_asked", na);
		print_json(o);
	} else {
		printf("conversion %llu of %s [%s, +%s) to %s: %s (%llu participants, %llu bytes changed, %llu us)\n",
		       (unsigned long long)res.seq, argv[0], gmem_format_size(range.offset, a, sizeof(a)),
		       gmem_format_size(range.length, b, sizeof(b)), argv[3], outcome_names[res.outcome],
		       (unsigned long long)res.participants, (unsigned long long)res.changed,
		       (unsigned long long)res.latency_us);
		for (size_t i = 0; i < res.n_refusals; i++) {
			const struct gmem_refusal *f = &res.refusals[i];
			printf("  refused by pid %u (client %llu%s%s): %s: ", f->pid, (unsigned long long)f->client_id,
			       f->client_name[0] ? ", " : "", f->client_name, strerror(f->err));
			print_clean(stdout, f->reason);
			putchar('\n');
		}
		for (size_t i = 0; i < res.n_unverified; i++)
			printf("  unverified: pid %u (client %llu) voted yes and left before it acked\n",
			       res.unverified[i].pid, (unsigned long long)res.unverified[i].client_id);
		for (size_t i = 0; i < res.n_not_asked; i++)
			printf("  not asked (forced): pid %u (client %llu)\n", res.not_asked[i].pid,
			       (unsigned long long)res.not_asked[i].client_id);
		for (size_t i = 0; i < res.n_revoked; i++)
			printf("  revoked: a file of client %llu, mapped by pid %u, still mapped the range after the "
			       "commit\n", (unsigned long long)res.revoked[i].client_id, res.revoked[i].pid);
	}
	int st = res.outcome == GMEM_COMMITTED ? 0 : res.outcome == GMEM_ABORTED ? EXIT_ABORTED : EXIT_UNVERIFIED;
	gmem_convert_result_free(&res);
	return st;
}

static unsigned term_width(void)
{
	struct winsize ws;
	const char *cols = getenv("COLUMNS");
	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	if (cols && atoi(cols) > 0)
		return (unsigned)atoi(cols);
	return 80;
}

static int cmd_map(struct gmem_client *c, char **argv)
{
	struct gmem_run *runs;
	size_t n;
	uint64_t shared, priv;
	char a[GMEM_SIZE_STRLEN], b[GMEM_SIZE_STRLEN];

	struct gmem_quarantine_info *qi = NULL;
	size_t nq = 0;
	uint64_t qbytes = 0;
	int r = gmem_map(c, argv[0], &runs, &n, &shared, &priv);
	if (r < 0)
		return fail(c, r, "map %s", argv[0]);
	r = gmem_quarantine_list(c, argv[0], &qi, &nq, &qbytes);
	if (r < 0) {
		free(runs);
		return fail(c, r, "map %s: quarantine", argv[0]);
	}
	if (arg_json) {
		struct json_object *o = json_object_new_object(), *arr = json_object_new_array();
		json_object_object_add(o, "guest", json_object_new_string(argv[0]));
		json_object_object_add(o, "shared_bytes", json_object_new_uint64(shared));
		json_object_object_add(o, "private_bytes", json_object_new_uint64(priv));
		for (size_t i = 0; i < n; i++) {
			struct json_object *x = json_object_new_object();
			json_object_object_add(x, "offset", json_object_new_uint64(runs[i].offset));
			json_object_object_add(x, "length", json_object_new_uint64(runs[i].length));
			json_object_object_add(x, "state",
					       json_object_new_string(runs[i].state == GMEM_PRIVATE ? "private" : "shared"));
			json_object_array_add(arr, x);
		}
		json_object_object_add(o, "runs", arr);
		json_object_object_add(o, "quarantined_bytes", json_object_new_uint64(qbytes));
		json_object_object_add(o, "quarantine", quarantine_json(qi, nq));
		print_json(o);
		free(runs);
		free(qi);
		return 0;
	}

	uint64_t size = shared + priv;
	printf("%s: %s shared, %s private, %zu runs\n", argv[0], gmem_format_size(shared, a, sizeof(a)),
	       gmem_format_size(priv, b, sizeof(b)), n);
	/* The bar: each cell is size/width bytes: '.' all shared, '#' all private, '+' both. */
	unsigned width = term_width();
	width = width > 2 ? width - 2 : 1;
	char *bar = calloc(width + 1, 1);
	if (bar && size) {
		size_t k = 0;
		for (unsigned i = 0; i < width; i++) {
			uint64_t lo = size / width * i + (size % width) * i / width;
			uint64_t hi = size / width * (i + 1) + (size % width) * (i + 1) / width;
			if (hi <= lo)
				hi = lo + 1;
			bool sh = false, pr = false;
			while (k < n && runs[k].offset + runs[k].length <= lo)
				k++;
			for (size_t j = k; j < n && runs[j].offset < hi; j++) {
				sh |= runs[j].state == GMEM_SHARED;
				pr |= runs[j].state == GMEM_PRIVATE;
			}
			bar[i] = sh && pr ? '+' : pr ? '#' : '.';
		}
		printf("[%s]\n", bar);
	}
	free(bar);
	for (size_t i = 0; i < n; i++)
		printf("  %-12s +%-12s %s\n", gmem_format_size(runs[i].offset, a, sizeof(a)),
		       gmem_format_size(runs[i].length, b, sizeof(b)),
		       runs[i].state == GMEM_PRIVATE ? "private" : "shared");
	if (qbytes) {
		printf("quarantined: %s\n", gmem_format_size(qbytes, a, sizeof(a)));
		quarantine_print(qi, nq);
	}
	free(runs);
	free(qi);
	return 0;
}

static volatile sig_atomic_t stop_watch;
static bool watch_over;

static void on_sigint(int sig)
{
	(void)sig;
	stop_watch = 1;
}

static void on_watch_event(struct gmem_client *c, const struct gmem_event *ev, void *userdata)
{
	char b[GMEM_SIZE_STRLEN];
	(void)c;
	(void)userdata;
	if (ev->type == GMEM_EVENT_SHUTDOWN) {
		watch_over = true;
		return;
	}
	if (ev->type != GMEM_EVENT_CONVERSION)
		return;
	const struct gmem_watch_info *w = ev->conversion;
	if (arg_json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "conversion", json_object_new_uint64(w->seq));
		json_object_object_add(o, "epoch", json_object_new_uint64(w->epoch));
		json_object_object_add(o, "guest", json_object_new_string(ev->guest));
		json_object_object_add(o, "target",
				       json_object_new_string(w->target == GMEM_PRIVATE ? "private" : "shared"));
		json_object_object_add(o, "state", json_object_new_string(w->state));
		json_object_object_add(o, "bytes", json_object_new_uint64(w->bytes));
		json_object_object_add(o, "ranges", json_object_new_uint64(w->ranges));
		json_object_object_add(o, "participants", json_object_new_uint64(w->participants));
		if (w->latency_us)
			json_object_object_add(o, "latency_us", json_object_new_uint64(w->latency_us));
		json_object_object_add(o, "requester_pid", json_object_new_uint64(w->requester_pid));
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
	} else {
		printf("conversion %llu %s to %s: %s", (unsigned long long)w->seq, ev->guest,
		       w->target == GMEM_PRIVATE ? "private" : "shared", w->state);
		if (w->bytes)
			printf(", %s in %llu ranges, %llu participants", gmem_format_size(w->bytes, b, sizeof(b)),
			       (unsigned long long)w->ranges, (unsigned long long)w->participants);
		if (w->latency_us)
			printf(", %llu us", (unsigned long long)w->latency_us);
		putchar('\n');
	}
	fflush(stdout);
}

static int cmd_watch(struct gmem_client *c, char **argv)
{
	(void)argv;
	struct sigaction sa = { .sa_handler = on_sigint };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	gmem_set_event_handler(c, on_watch_event, NULL);
	int r = gmem_watch(c);
	if (r < 0)
		return fail(c, r, "watch");
	while (!stop_watch && !watch_over) {
		struct pollfd p = { .fd = gmem_get_fd(c), .events = POLLIN };
		if (poll(&p, 1, -1) < 0)
			continue; /* EINTR: the flag is checked above */
		r = gmem_dispatch(c);
		if (r < 0) {
			if (watch_over)
				break;
			return fail(c, r, "watch");
		}
	}
	return 0;
}

static int grant_cmd(struct gmem_client *c, char **argv, bool grant)
{
	enum gmem_role role;
	if (strcmp(argv[2], "device") == 0) {
		role = GMEM_ROLE_DEVICE;
	} else if (strcmp(argv[2], "vmm") == 0) {
		role = GMEM_ROLE_VMM;
	} else {
		fprintf(stderr, "gmemctl: the role is 'device' or 'vmm', not '%s'\n", argv[2]);
		return EXIT_USAGE;
	}
	if (strncmp(argv[1], "uid:", 4) && strncmp(argv[1], "gid:", 4)) {
		fprintf(stderr, "gmemctl: who is uid:N or gid:N, not '%s'\n", argv[1]);
		return EXIT_USAGE;
	}
	int r = grant ? gmem_grant(c, argv[0], argv[1], role) : gmem_revoke(c, argv[0], argv[1], role);
	return r < 0 ? fail(c, r, "%s %s %s %s", grant ? "grant" : "revoke", argv[0], argv[1], argv[2]) : 0;
}

static int cmd_grant(struct gmem_client *c, char **argv)
{
	return grant_cmd(c, argv, true);
}

static int cmd_revoke(struct gmem_client *c, char **argv)
{
	return grant_cmd(c, argv, false);
}

static const char *const role_names[] = { "vmm", "device", "admin" };

static int cmd_clients(struct gmem_client *c, char **argv)
{
	struct gmem_client_info *cs;
	size_t n;
	(void)argv;

	int r = gmem_client_list(c, &cs, &n);
	if (r < 0)
		return fail(c, r, "clients");
	if (arg_json) {
		struct json_object *a = json_object_new_array();
		for (size_t i = 0; i < n; i++) {
			struct json_object *o = json_object_new_object();
			json_object_object_add(o, "id", json_object_new_uint64(cs[i].id));
			json_object_object_add(o, "pid", json_object_new_uint64(cs[i].pid));
			json_object_object_add(o, "uid", json_object_new_uint64(cs[i].uid));
			json_object_object_add(o, "gid", json_object_new_uint64(cs[i].gid));
			json_object_object_add(o, "role", cs[i].hello ? json_object_new_string(role_names[cs[i].role]) : NULL);
			json_object_object_add(o, "name", json_object_new_string(cs[i].name));
			json_object_object_add(o, "attachments", json_object_new_uint64(cs[i].attachments));
			json_object_object_add(o, "files", json_object_new_uint64(cs[i].files));
			json_object_object_add(o, "leases", json_object_new_uint64(cs[i].leases));
			json_object_object_add(o, "converts", json_object_new_uint64(cs[i].converts));
			json_object_object_add(o, "self", json_object_new_boolean(cs[i].self));
			json_object_array_add(a, o);
		}
		print_json(a);
	} else {
		printf("%-6s %8s %6s %-7s %-20s %6s %6s %6s %8s\n", "ID", "PID", "UID", "ROLE", "NAME", "ATTACH", "FILES",
		       "LEASES", "CONVERTS");
		for (size_t i = 0; i < n; i++)
			printf("%-6llu %8u %6u %-7s %-20s %6llu %6llu %6llu %8llu%s\n", (unsigned long long)cs[i].id,
			       cs[i].pid, cs[i].uid, cs[i].hello ? role_names[cs[i].role] : "-",
			       cs[i].name[0] ? cs[i].name : "-", (unsigned long long)cs[i].attachments,
			       (unsigned long long)cs[i].files, (unsigned long long)cs[i].leases,
			       (unsigned long long)cs[i].converts, cs[i].self ? "  (this gmemctl)" : "");
	}
	free(cs);
	return 0;
}

static struct json_object *conversion_json(const struct gmem_conversion_info *v)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "conversion", json_object_new_uint64(v->seq));
	json_object_object_add(o, "epoch", json_object_new_uint64(v->epoch));
	json_object_object_add(o, "guest", json_object_new_string(v->guest));
	json_object_object_add(o, "target", json_object_new_string(v->target == GMEM_PRIVATE ? "private" : "shared"));
	json_object_object_add(o, "state", json_object_new_string(v->state));
	json_object_object_add(o, "bytes", json_object_new_uint64(v->bytes));
	json_object_object_add(o, "ranges", json_object_new_uint64(v->ranges));
	json_object_object_add(o, "participants", json_object_new_uint64(v->participants));
	json_object_object_add(o, "latency_us", json_object_new_uint64(v->latency_us));
	json_object_object_add(o, "requester_pid", json_object_new_uint64(v->requester_pid));
	return o;
}

static void print_conversions(const char *title, const struct gmem_conversion_info *v, size_t n)
{
	char b[GMEM_SIZE_STRLEN];
	printf("%s:%s\n", title, n ? "" : " none");
	for (size_t i = 0; i < n; i++)
		printf("  %-6llu %-24s to %-7s %-20s %10s %5llu ranges %3llu participants %10llu us  pid %u\n",
		       (unsigned long long)v[i].seq, v[i].guest, v[i].target == GMEM_PRIVATE ? "private" : "shared",
		       v[i].state, gmem_format_size(v[i].bytes, b, sizeof(b)), (unsigned long long)v[i].ranges,
		       (unsigned long long)v[i].participants, (unsigned long long)v[i].latency_us, v[i].requester_pid);
}

static int cmd_conversions(struct gmem_client *c, char **argv)
{
	struct gmem_conversion_info *fl, *rc;
	size_t n_fl, n_rc;
	uint64_t omitted;
	(void)argv;

	int r = gmem_conversion_list(c, &fl, &n_fl, &omitted, &rc, &n_rc);
	if (r < 0)
		return fail(c, r, "conversions");
	if (arg_json) {
		struct json_object *o = json_object_new_object(), *a = json_object_new_array(),
				   *b = json_object_new_array();
		for (size_t i = 0; i < n_fl; i++)
			json_object_array_add(a, conversion_json(&fl[i]));
		for (size_t i = 0; i < n_rc; i++)
			json_object_array_add(b, conversion_json(&rc[i]));
		json_object_object_add(o, "in_flight", a);
		json_object_object_add(o, "omitted", json_object_new_uint64(omitted));
		json_object_object_add(o, "recent", b);
		print_json(o);
	} else {
		print_conversions("in flight", fl, n_fl);
		if (omitted)
			printf("  ... and %llu more\n", (unsigned long long)omitted);
		print_conversions("recent (newest first)", rc, n_rc);
	}
	free(fl);
	free(rc);
	return 0;
}

static const struct command commands[] = {
	{ "status", "", "pool, backend and counts", 0, 0, cmd_status },
	{ "guests", "[--lost|--orphans]",
	  "list the guests you may see (--lost: lost in a restart; --orphans: admin, kmod guests no journal names)",
	  0, 0, cmd_guests },
	{ "forget", "GUEST", "drop a lost guest for good; its name is free again", 1, 1, cmd_forget },
	{ "create", "GUEST SIZE [--granule 4K|2M] [--node N] [--ephemeral]", "create a guest of SIZE bytes", 2, 2,
	  cmd_create },
	{ "destroy", "GUEST|ID [--force] [--orphan]",
	  "destroy a guest (--force --orphan: orphan ID); its memory returns to the pool at once", 1, 1, cmd_destroy },
	{ "adopt", "ID [--name NAME] [--owner UID]",
	  "admin: make orphan ID a guest (default name orphan-ID, owner your uid), memory intact", 1, 1, cmd_adopt },
	{ "convert", "GUEST OFFSET LENGTH shared|private [--zero] [--force]",
	  "convert a range; exit 0 committed, 3 aborted, 4 committed-unverified", 4, 4, cmd_convert },
	{ "map", "GUEST", "shared and private runs of a guest, with a bar", 1, 1, cmd_map },
	{ "watch", "", "one line per conversion event until Ctrl-C", 0, 0, cmd_watch },
	{ "grant", "GUEST uid:N|gid:N device|vmm", "let another uid or group use a guest", 3, 3, cmd_grant },
	{ "revoke", "GUEST uid:N|gid:N device|vmm", "take a grant back", 3, 3, cmd_revoke },
	{ "clients", "", "connections to gmemd (all for an admin, else your uid's)", 0, 0, cmd_clients },
	{ "conversions", "", "conversions in flight and the last ones that ended, with outcome and latency", 0, 0,
	  cmd_conversions },
	/* fn NULL: run by gmemctl_exec, which takes the connection and the command after "--". */
	{ "exec", "GUEST -- COMMAND [ARG...]",
	  "run COMMAND with the guest's fd ($GMEM_FD, $GMEM_SIZE), attached for its lifetime", 1, 1, NULL },
	{ "holders", "GUEST", "admin: the connections holding a guest (files, attachments, lease)", 1, 1,
	  cmd_holders },
	{ "cancel", "[EPOCH:]ID", "admin: abort conversion ID if it is not decided yet", 1, 1, cmd_cancel },
	{ "evict", "CLIENT", "admin: disconnect client CLIENT (an id from holders)", 1, 1, cmd_evict },
	{ "top", "", "live conversions/s, latency, slowest participant per guest; q quits", 0, 0, cmd_top },
	{ "export", "GUEST FILE", "write a guest's map and contents to a new FILE (sparse)", 2, 2, cmd_export },
	{ "import", "FILE [GUEST]", "create a guest from an export (named as exported, or GUEST)", 1, 2,
	  cmd_import },
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
		   "  --node N        create: memory from NUMA node N only (kmod)\n"
		   "  --ephemeral     create: destroy the guest when its vmm lease holder's process exits\n"
		   "  --zero          convert: discard the contents\n"
		   "  --force         convert: kmod only, revoke without asking the participants;\n"
		   "                  destroy (admin): also evict every connection holding the guest (on\n"
		   "                  memfd the files they hold stay open in their processes)\n"
		   "  --lost          guests: list the lost guests\n"
		   "  --orphans       guests: list the orphans (admin; kmod)\n"
		   "  --orphan        destroy: the argument is an orphan's id (with --force)\n"
		   "  --name NAME     adopt: the guest's name\n"
		   "  --owner UID     adopt: the guest's owner uid\n"
		   "  -h, --help      show this help\n"
		   "  --version       show the version\n"
		   "\nSizes take binary suffixes K, M, G, T. Exit status: 0 success, 1 refused or unreachable,\n"
		   "2 usage error; convert: 3 aborted, 4 committed-unverified; exec: COMMAND's own status once it\n"
		   "ran (128+N if killed by signal N), 126 or 127 if it could not be run.\n"
		   "\nexec: on the memfd backend COMMAND may also open the guest by path, /proc/self/fd/$GMEM_FD\n"
		   "(QEMU: -object memory-backend-file,mem-path=/proc/self/fd/$GMEM_FD,share=on,...). gmemd ends the\n"
		   "attachment when COMMAND exits, even if gmemctl was killed; while it runs, a to-private\n"
		   "conversion of the guest is refused: COMMAND cannot vote.\n");
}

int main(int argc, char **argv)
{
	enum { OPT_SOCKET = 256, OPT_JSON, OPT_GRANULE, OPT_VERSION, OPT_ZERO, OPT_FORCE, OPT_LOST, OPT_NODE,
	       OPT_EPHEMERAL, OPT_ORPHANS, OPT_ORPHAN, OPT_NAME, OPT_OWNER };
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "granule", required_argument, NULL, OPT_GRANULE },
		{ "node", required_argument, NULL, OPT_NODE },
		{ "zero", no_argument, NULL, OPT_ZERO },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "lost", no_argument, NULL, OPT_LOST },
		{ "ephemeral", no_argument, NULL, OPT_EPHEMERAL },
		{ "orphans", no_argument, NULL, OPT_ORPHANS },
		{ "orphan", no_argument, NULL, OPT_ORPHAN },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "owner", required_argument, NULL, OPT_OWNER },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{},
	};
	int c;

	/* Options end at "--": what follows is exec's command line, never gmemctl's options. */
	int dd = 1;
	while (dd < argc && strcmp(argv[dd], "--") != 0)
		dd++;
	opterr = 0; /* our own one-line message below */
	while ((c = getopt_long(dd, argv, ":h", opts, NULL)) >= 0) {
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
		case OPT_NODE: {
			char *end;
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || v > 1023 || optarg[0] == '-') {
				fprintf(stderr, "gmemctl: --node must be a node number (0-1023)\n");
				return 2;
			}
			arg_node = (unsigned)v;
			arg_node_set = true;
			break;
		}
		case OPT_ZERO:
			arg_zero = true;
			break;
		case OPT_FORCE:
			arg_force = true;
			break;
		case OPT_LOST:
			arg_lost = true;
			break;
		case OPT_EPHEMERAL:
			arg_ephemeral = true;
			break;
		case OPT_ORPHANS:
			arg_orphans = true;
			break;
		case OPT_ORPHAN:
			arg_orphan = true;
			break;
		case OPT_NAME:
			arg_name = optarg;
			break;
		case OPT_OWNER: {
			char *end;
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || v >= UINT32_MAX || optarg[0] == '-') {
				fprintf(stderr, "gmemctl: --owner must be a uid\n");
				return EXIT_USAGE;
			}
			arg_owner = (uint32_t)v;
			arg_owner_set = true;
			break;
		}
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
	if (optind == dd && dd < argc) {
		/* "gmemctl [OPTIONS] -- COMMAND ...": the "--" only ended the options. */
		memmove(argv + dd, argv + dd + 1, (size_t)(argc - dd) * sizeof(*argv));
		dd = --argc;
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
	char **command = NULL;
	if (!cmd->fn) {
		command = dd + 1 < argc ? argv + dd + 1 : NULL;
		argc = dd;
	} else if (dd < argc) {
		/* Other commands take what follows "--" as more arguments. */
		memmove(argv + dd, argv + dd + 1, (size_t)(argc - dd) * sizeof(*argv));
		argc--;
	}
	int nargs = argc - optind - 1;
	if (nargs < cmd->min_args || nargs > cmd->max_args || (!cmd->fn && !command)) {
		fprintf(stderr, "gmemctl: usage: gmemctl %s %s\n", cmd->name, cmd->args);
		return EXIT_USAGE;
	}
	if (arg_node_set && cmd->fn != cmd_create) {
		fprintf(stderr, "gmemctl: --node applies to create only\n");
		return EXIT_USAGE;
	}
	if ((arg_granule_set || arg_ephemeral) && cmd->fn != cmd_create) {
		fprintf(stderr, "gmemctl: --granule and --ephemeral apply to create only\n");
		return EXIT_USAGE;
	}
	if ((arg_lost || arg_orphans) && cmd->fn != cmd_guests) {
		fprintf(stderr, "gmemctl: --lost and --orphans apply to guests only\n");
		return EXIT_USAGE;
	}
	if (arg_lost && arg_orphans) {
		fprintf(stderr, "gmemctl: --lost and --orphans list different things: give one\n");
		return EXIT_USAGE;
	}
	if ((arg_name || arg_owner_set) && cmd->fn != cmd_adopt) {
		fprintf(stderr, "gmemctl: --name and --owner apply to adopt only\n");
		return EXIT_USAGE;
	}
	if (arg_orphan && (cmd->fn != cmd_destroy || !arg_force)) {
		fprintf(stderr, "gmemctl: --orphan applies to destroy, with --force (the memory no journal names goes)\n");
		return EXIT_USAGE;
	}
	if ((arg_zero && cmd->fn != cmd_convert) || (arg_force && cmd->fn != cmd_convert && cmd->fn != cmd_destroy)) {
		fprintf(stderr, "gmemctl: --zero applies to convert only, --force to convert and destroy\n");
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
	if (!cmd->fn)
		return gmemctl_exec(gc, argv[optind + 1], command);
	r = cmd->fn(gc, argv + optind + 1);
	gmem_disconnect(gc);
	return r;
}
