/* SPDX-License-Identifier: MIT */
/*
 * The systemd units of contrib/systemd, as built (the service with its ExecStart path substituted by
 * meson), checked the way an operator's systemd would read them:
 *   - `systemd-analyze verify` of both units prints nothing at all: it exits 0 even for an unknown key,
 *     so any output on stderr is a failure;
 *   - they say what issue 4 asks of them (Type=notify, --backend kmod, CAP_NET_ADMIN only, ...) and the
 *     socket is where gmemd's default socket is;
 *   - `systemd-analyze security --offline=yes` scores the service at or below EXPOSURE_MAX.
 * verify refuses a unit whose ExecStart= binary does not exist, and the tests run before any install: the
 * copy verified here differs from the built unit only in that path, which points at the gmemd just built.
 *
 * The checks can fail, and the controls show it: a copy with a misspelt key must fail the verify check,
 * and a copy with the confinement block stripped must fail the score check. Run with `--control
 * misspelt-service`, `misspelt-socket` or `stripped`, the program applies the real check to that copy
 * and so must exit non-zero (meson runs these with should_fail); without arguments it runs every check
 * and also asserts that each control fails.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gmem-proto.h"
#include "harness.h"

/* The score reached (1.3 on systemd 252): lower it when the units get tighter, never raise it. */
#define EXPOSURE_MAX 1.3
#define CONFINEMENT_MARK "# Confinement:"

static char tmp[64];
static bool control_mode, verdict;

/* A control passes only by failing the check: any other way out (a CHECK, an unreadable score) is an
 * error that should_fail must not count as the expected failure, so it becomes exit 99. */
static void control_exit(void)
{
	if (control_mode && !verdict)
		_exit(99);
}

static char *slurp_path(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "cannot read %s: %s\n", path, strerror(errno));
		exit(1);
	}
	CHECK(fseek(f, 0, SEEK_END) == 0);
	long n = ftell(f);
	CHECK(n >= 0);
	rewind(f);
	char *s = malloc((size_t)n + 1);
	CHECK(s);
	CHECK(fread(s, 1, (size_t)n, f) == (size_t)n);
	s[n] = '\0';
	fclose(f);
	return s;
}

static void write_path(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	CHECK(f);
	CHECK(fputs(text, f) >= 0);
	CHECK(fclose(f) == 0);
}

/* text with the first occurrence of from replaced by to (which must be there); malloc'd. */
static char *replace(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	if (!at) {
		fprintf(stderr, "'%s' is not in the unit\n", from);
		exit(1);
	}
	size_t head = (size_t)(at - text), n = strlen(text) - strlen(from) + strlen(to) + 1;
	char *s = malloc(n);
	CHECK(s);
	snprintf(s, n, "%.*s%s%s", (int)head, text, to, at + strlen(from));
	return s;
}

/* The service as built, but starting the gmemd of this build. */
static char *service_for_test(const char *built)
{
	const char *exec = strstr(built, "\nExecStart=");
	CHECK(exec);
	exec += strlen("\nExecStart=");
	size_t len = strcspn(exec, " \n");
	char path[512];
	CHECK(len < sizeof(path));
	memcpy(path, exec, len);
	path[len] = '\0';
	CHECK(len > 6 && strcmp(path + len - 6, "/gmemd") == 0);
	CHECK(path[0] == '/');
	return replace(built, path, binary("GMEMD"));
}

/* A copy without its confinement block: from the mark up to [Install]. */
static char *stripped(const char *service)
{
	const char *from = strstr(service, CONFINEMENT_MARK), *to = strstr(service, "\n[Install]");
	CHECK(from && to && from < to);
	to++;
	size_t n = strlen(service) + 1;
	char *s = malloc(n);
	CHECK(s);
	snprintf(s, n, "%.*s%s", (int)(from - service), service, to);
	return s;
}

/* A directory holding both units (the service requires the socket by name). */
static void unit_dir(char *dir, size_t size, const char *tag, const char *service, const char *socket)
{
	char path[600];
	snprintf(dir, size, "%s/%s", tmp, tag);
	CHECK(mkdir(dir, 0755) == 0);
	snprintf(path, sizeof(path), "%s/gmemd.service", dir);
	write_path(path, service);
	snprintf(path, sizeof(path), "%s/gmemd.socket", dir);
	write_path(path, socket);
}

/* The verify check: exit 0 and not one byte of output. */
static bool verify_clean(const char *dir, bool quiet)
{
	char svc[600], sock[600];
	char *out, *err;
	snprintf(svc, sizeof(svc), "%s/gmemd.service", dir);
	snprintf(sock, sizeof(sock), "%s/gmemd.socket", dir);
	int st = run_capture((const char *[]){ "systemd-analyze", "verify", "--man=no", svc, sock, NULL }, &out, &err);
	bool ok = st == 0 && !*out && !*err;
	if (!ok && !quiet)
		fprintf(stderr, "systemd-analyze verify %s: exit %d\n%s%s", dir, st, out, err);
	free(out);
	free(err);
	return ok;
}

/* The exposure score systemd-analyze gives the service in dir; exits the test if it cannot be read. */
static double exposure(const char *dir)
{
	static const char mark[] = "Overall exposure level for gmemd.service: ";
	char svc[600];
	char *out, *err;
	snprintf(svc, sizeof(svc), "%s/gmemd.service", dir);
	int st = run_capture((const char *[]){ "systemd-analyze", "security", "--offline=yes", "--no-pager", svc, NULL },
			     &out, &err);
	const char *at = strstr(out, mark);
	if (st != 0 || !at) {
		fprintf(stderr, "systemd-analyze security %s: exit %d\n%s%s", svc, st, out, err);
		exit(1);
	}
	double v = strtod(at + strlen(mark), NULL);
	free(out);
	free(err);
	return v;
}

static bool score_ok(const char *dir, double *ret)
{
	*ret = exposure(dir);
	return *ret <= EXPOSURE_MAX + 1e-9;
}

static void expect_line(const char *unit, const char *name, const char *line, bool prefix)
{
	size_t n = strlen(line);
	for (const char *p = unit; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, line, n) == 0 && (prefix || p[n] == '\n' || p[n] == '\0'))
			return;
	fprintf(stderr, "%s: no line '%s%s'\n", name, line, prefix ? "..." : "");
	exit(1);
}

static void check_contents(const char *service, const char *socket)
{
	static const char *const exact[] = {
		"Type=notify", "NotifyAccess=main", "User=gmemd", "CapabilityBoundingSet=CAP_NET_ADMIN",
		"AmbientCapabilities=CAP_NET_ADMIN", "NoNewPrivileges=yes", "ProtectSystem=strict",
		"RuntimeDirectory=gmem", "RuntimeDirectoryPreserve=yes", "DevicePolicy=closed",
		"DeviceAllow=/dev/gmem_pfn rw", "RestrictAddressFamilies=AF_UNIX AF_NETLINK",
	};
	static const char *const keys[] = { "FileDescriptorStoreMax=", "LimitNOFILE=", "WatchdogSec=" };
	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		expect_line(service, "gmemd.service", exact[i], false);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		expect_line(service, "gmemd.service", keys[i], true);
	const char *exec = strstr(service, "\nExecStart=");
	CHECK(exec);
	size_t len = strcspn(exec + 1, "\n");
	char line[512];
	snprintf(line, sizeof(line), "%.*s", (int)len, exec + 1);
	CHECK(strstr(line, " --backend kmod"));
	expect_line(socket, "gmemd.socket", "ListenSequentialPacket=" GMEM_DEFAULT_SOCKET, false);
	expect_line(socket, "gmemd.socket", "SocketMode=0660", false);
	expect_line(socket, "gmemd.socket", "SocketGroup=gmem", false);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

int main(int argc, char **argv)
{
	const char *units = binary("GMEM_UNIT_DIR");
	const char *control = argc == 3 && strcmp(argv[1], "--control") == 0 ? argv[2] : NULL;
	char path[600], good[700], bad_svc[700], bad_sock[700], weak[700];
	double score;

	if (argc != 1 && !control) {
		fprintf(stderr, "usage: %s [--control misspelt-service|misspelt-socket|stripped]\n", argv[0]);
		return 2;
	}
	snprintf(path, sizeof(path), "%s/gmemd.service", units);
	char *built = slurp_path(path);
	snprintf(path, sizeof(path), "%s/gmemd.socket", units);
	char *socket = slurp_path(path);
	char *service = service_for_test(built);
	char *svc_typo = replace(service, "\nProtectSystem=", "\nProtectSystm=");
	char *sock_typo = replace(socket, "\nSocketMode=", "\nSocketMod=");
	char *svc_weak = stripped(service);

	snprintf(tmp, sizeof(tmp), "/tmp/gmem-units-XXXXXX");
	CHECK(mkdtemp(tmp));
	unit_dir(good, sizeof(good), "good", service, socket);
	unit_dir(bad_svc, sizeof(bad_svc), "misspelt-service", svc_typo, socket);
	unit_dir(bad_sock, sizeof(bad_sock), "misspelt-socket", service, sock_typo);
	unit_dir(weak, sizeof(weak), "stripped", svc_weak, socket);

	int status = 0;
	if (control) {
		control_mode = true;
		CHECK(atexit(control_exit) == 0);
		/* The real check, on a copy it must reject: this run fails when the check works. */
		if (strcmp(control, "stripped") == 0) {
			status = score_ok(weak, &score) ? 0 : 1;
			printf("# stripped copy: exposure %.1f (at most %.1f passes)\n", score, EXPOSURE_MAX);
		} else if (strcmp(control, "misspelt-service") == 0) {
			status = verify_clean(bad_svc, false) ? 0 : 1;
		} else if (strcmp(control, "misspelt-socket") == 0) {
			status = verify_clean(bad_sock, false) ? 0 : 1;
		} else {
			fprintf(stderr, "unknown control '%s'\n", control);
			return 99;
		}
		verdict = true;
	} else {
		CHECK(verify_clean(good, false));
		printf("ok systemd-analyze verify: both units, not one line of output\n");
		CHECK(!verify_clean(bad_svc, true));
		CHECK(!verify_clean(bad_sock, true));
		printf("ok a misspelt key in either unit fails the verify check\n");
		check_contents(built, socket);
		printf("ok the units say Type=notify, --backend kmod, CAP_NET_ADMIN only, User=gmemd, ...\n");
		CHECK(score_ok(good, &score));
		printf("ok systemd-analyze security --offline=yes: exposure %.1f (at most %.1f)\n", score, EXPOSURE_MAX);
		double weak_score;
		CHECK(!score_ok(weak, &weak_score));
		printf("ok without its confinement block the service scores %.1f and fails the check\n", weak_score);
	}

	CHECK(nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0);
	free(built);
	free(socket);
	free(service);
	free(svc_typo);
	free(sock_typo);
	free(svc_weak);
	return status;
}
