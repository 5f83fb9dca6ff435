/* SPDX-License-Identifier: MIT */
/*
 * gmemctl-top: a live view of conversions, refreshed every second: per guest the conversions per
 * second (from the difference of two samples of gmemd's counters), the p50/p99 latency of its recent
 * conversions, its slowest participant, and the bytes in quarantine. q or SIGINT ends it and gives the
 * terminal back as it was. When stdout is not a terminal it prints one snapshot (two samples a second
 * apart, for the rates) and exits.
 */
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "gmemctl.h"
#include "size.h"

static volatile sig_atomic_t top_stop;

static void on_stop(int sig)
{
	(void)sig;
	top_stop = 1;
}

struct sample {
	struct gmem_guest_stats *g;
	size_t n;
	uint64_t quarantined;
	double t; /* seconds, monotonic */
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int take(struct gmem_client *c, struct sample *s)
{
	s->t = now_s();
	return gmem_stats(c, &s->g, &s->n, &s->quarantined);
}

/* Conversions per second of guest g since the previous sample (0 for a guest new in this one). */
static double rate(const struct sample *prev, const struct sample *cur, const struct gmem_guest_stats *g)
{
	for (size_t i = 0; prev && i < prev->n; i++)
		if (prev->g[i].id == g->id && cur->t > prev->t)
			return (double)(g->conversions - prev->g[i].conversions) / (cur->t - prev->t);
	return 0;
}

struct row {
	const struct gmem_guest_stats *g;
	double rate;
};

static int cmp_row(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	if (x->rate != y->rate)
		return x->rate < y->rate ? 1 : -1;
	return strcmp(x->g->name, y->g->name);
}

static void fmt_us(uint64_t us, char *buf, size_t size)
{
	if (us >= 10000000)
		snprintf(buf, size, "%llus", (unsigned long long)(us / 1000000));
	else if (us >= 10000)
		snprintf(buf, size, "%llums", (unsigned long long)(us / 1000));
	else
		snprintf(buf, size, "%lluus", (unsigned long long)us);
}

static void render(struct gmem_client *c, const struct sample *prev, const struct sample *cur, bool tty,
		   unsigned rows_max)
{
	struct row *rows = calloc(cur->n ? cur->n : 1, sizeof(*rows));
	double total = 0;
	char q[GMEM_SIZE_STRLEN], clock[16];
	time_t now = time(NULL);
	struct tm tm;

	if (!rows)
		return;
	for (size_t i = 0; i < cur->n; i++) {
		rows[i] = (struct row){ &cur->g[i], rate(prev, cur, &cur->g[i]) };
		total += rows[i].rate;
	}
	qsort(rows, cur->n, sizeof(*rows), cmp_row);
	strftime(clock, sizeof(clock), "%H:%M:%S", localtime_r(&now, &tm));
	if (tty)
		fputs("\033[H\033[2J", stdout);
	printf("gmemctl top - %s, backend %s - %s%s\n", gmem_server_version(c), gmem_backend_name(c), clock,
	       tty ? " - q to quit" : "");
	printf("conversions/s: %.1f   guests: %zu   quarantined: %s\n\n", total, cur->n,
	       gmem_format_size(cur->quarantined, q, sizeof(q)));
	printf("%-20s %8s %8s %7s %6s %8s %8s %11s  %s\n", "GUEST", "CONV/S", "TOTAL", "ABORTED", "QUEUED", "P50",
	       "P99", "QUARANTINED", "SLOWEST PARTICIPANT (VOTE)");
	for (size_t i = 0; i < cur->n && i < rows_max; i++) {
		const struct gmem_guest_stats *g = rows[i].g;
		char p50[16], p99[16], vote[16], qb[GMEM_SIZE_STRLEN], slow[160] = "-";
		fmt_us(g->p50_us, p50, sizeof(p50));
		fmt_us(g->p99_us, p99, sizeof(p99));
		if (g->slowest.client_id) {
			fmt_us(g->slowest.vote_us, vote, sizeof(vote));
			snprintf(slow, sizeof(slow), "pid %u %s (client %llu) %s", g->slowest.pid,
				 g->slowest.client_name[0] ? g->slowest.client_name : "-",
				 (unsigned long long)g->slowest.client_id, vote);
		}
		printf("%-20.20s %8.1f %8llu %7llu %6llu %8s %8s %11s  %s\n", g->name, rows[i].rate,
		       (unsigned long long)g->conversions, (unsigned long long)g->aborted, (unsigned long long)g->queued,
		       g->window ? p50 : "-", g->window ? p99 : "-", gmem_format_size(g->quarantined_bytes, qb, sizeof(qb)),
		       slow);
	}
	if (cur->n > rows_max)
		printf("... %zu more guests\n", cur->n - rows_max);
	fflush(stdout);
	free(rows);
}

static void print_json_snapshot(const struct sample *prev, const struct sample *cur)
{
	struct json_object *o = json_object_new_object(), *arr = json_object_new_array();
	json_object_object_add(o, "quarantined_bytes", json_object_new_uint64(cur->quarantined));
	for (size_t i = 0; i < cur->n; i++) {
		const struct gmem_guest_stats *g = &cur->g[i];
		struct json_object *x = json_object_new_object();
		json_object_object_add(x, "guest", json_object_new_string(g->name));
		json_object_object_add(x, "conversions_per_s", json_object_new_double(rate(prev, cur, g)));
		json_object_object_add(x, "conversions", json_object_new_uint64(g->conversions));
		json_object_object_add(x, "committed", json_object_new_uint64(g->committed));
		json_object_object_add(x, "aborted", json_object_new_uint64(g->aborted));
		json_object_object_add(x, "unverified", json_object_new_uint64(g->unverified));
		json_object_object_add(x, "queued", json_object_new_uint64(g->queued));
		json_object_object_add(x, "window", json_object_new_uint64(g->window));
		json_object_object_add(x, "p50_us", json_object_new_uint64(g->p50_us));
		json_object_object_add(x, "p99_us", json_object_new_uint64(g->p99_us));
		json_object_object_add(x, "quarantined_bytes", json_object_new_uint64(g->quarantined_bytes));
		if (g->slowest.client_id) {
			struct json_object *s = json_object_new_object();
			json_object_object_add(s, "client_id", json_object_new_uint64(g->slowest.client_id));
			json_object_object_add(s, "pid", json_object_new_uint64(g->slowest.pid));
			json_object_object_add(s, "client_name", json_object_new_string(g->slowest.client_name));
			json_object_object_add(s, "vote_us", json_object_new_uint64(g->slowest.vote_us));
			json_object_object_add(x, "slowest", s);
		}
		json_object_array_add(arr, x);
	}
	json_object_object_add(o, "guests", arr);
	print_json(o);
}

static unsigned term_rows(void)
{
	struct winsize ws;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 6)
		return ws.ws_row - 5u;
	return 20;
}

/* Waits up to ms for a key on stdin; true when it was q (or stdin ended). */
static bool wait_key(bool have_tty_in, int ms)
{
	struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
	if (poll(&p, have_tty_in ? 1 : 0, ms) <= 0)
		return false;
	char ch;
	ssize_t n = read(STDIN_FILENO, &ch, 1);
	return n <= 0 || ch == 'q' || ch == 'Q';
}

int cmd_top(struct gmem_client *c, char **argv)
{
	struct sample prev = { 0 }, cur = { 0 };
	bool tty = isatty(STDOUT_FILENO) && !arg_json;
	bool tty_in = tty && isatty(STDIN_FILENO);
	struct termios saved, raw;
	int r;
	(void)argv;

	struct sigaction sa = { .sa_handler = on_stop };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if ((r = take(c, &prev)) < 0)
		return fail(c, r, "top");
	if (!tty) {
		/* One snapshot: a second between two samples gives the rates. */
		(void)wait_key(false, 1000);
		if ((r = take(c, &cur)) < 0) {
			free(prev.g);
			return fail(c, r, "top");
		}
		if (arg_json)
			print_json_snapshot(&prev, &cur);
		else
			render(c, &prev, &cur, false, (unsigned)cur.n);
		free(prev.g);
		free(cur.g);
		return 0;
	}

	if (tty_in && tcgetattr(STDIN_FILENO, &saved) == 0) {
		/* Keys without Enter, not echoed; ISIG stays, so Ctrl-C is SIGINT as everywhere. */
		raw = saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	} else {
		tty_in = false;
	}
	fputs("\033[?25l", stdout); /* hide the cursor while the screen redraws */
	render(c, NULL, &prev, true, term_rows());
	r = 0;
	while (!top_stop) {
		if (wait_key(tty_in, 1000))
			break;
		if (top_stop)
			break;
		if ((r = take(c, &cur)) < 0)
			break;
		render(c, &prev, &cur, true, term_rows());
		free(prev.g);
		prev = cur;
		cur = (struct sample){ 0 };
	}
	fputs("\033[?25h\n", stdout);
	fflush(stdout);
	if (tty_in)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	free(prev.g);
	return r < 0 ? fail(c, r, "top") : 0;
}
