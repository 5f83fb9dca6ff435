/* SPDX-License-Identifier: MIT */
/*
 * gmemd: command line, process set-up (fd limit, SIGPIPE) and the manager's run.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "backend.h"
#include "gmem-proto.h"
#include "log.h"
#include "manager.h"
#include "size.h"

#ifndef GMEM_VERSION
#define GMEM_VERSION "0"
#endif

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: gmemd [OPTIONS]\n"
		"Broker guest memory: hold a pool, carve it into guests, hand out their fds.\n\n"
		"  --backend NAME       memory backend: memfd (default) or kmod; a named backend that is\n"
		"                       unavailable fails the start (built in: %s)\n"
		"  --socket PATH        control socket (default %s)\n"
		"  --socket-mode MODE   octal mode of a socket gmemd binds (default 0660)\n"
		"  --socket-group NAME  group of that socket (default: gmem, if that group exists)\n"
		"  --admin-group NAME   members may connect with role admin (root always may)\n"
		"  --quota-bytes SIZE   bytes of guests one uid may hold (default: the whole pool)\n"
		"  --quota-guests N     guests one uid may hold (default 1024)\n"
		"  --max-connections N  connections in total (default 4096)\n"
		"  --max-connections-per-uid N  (default 1024)\n"
		"  --state-dir DIR      state directory, locked while gmemd runs (default /run/gmem)\n"
		"  --pool-size SIZE     memfd: the byte budget, K/M/G/T suffixes (default: physical RAM)\n"
		"  --kmod-device PATH   kmod: the module's control node (default /dev/gmem_pfn)\n"
		"  --prepare-timeout MS a conversion aborts when a participant has not voted by then\n"
		"                       (default 1000)\n"
		"  --ack-timeout MS     how long a commit wave waits for acks before going on (default 2000)\n"
		"  --token-timeout MS   how long a delegation token can be redeemed (default 30000)\n"
		"  --bus BUS            the D-Bus interface on the system (default) or session bus, or none;\n"
		"                       no bus is not an error: gmemd serves its socket and reconnects\n"
		"  --journal-compact-records N  compact the journal into a snapshot after N records\n"
		"                       (default 4096; 0 = never)\n"
		"  --recover-from-snapshot  start from the snapshot (and the records before the damage) when\n"
		"                       the journal is damaged, instead of refusing to start\n"
		"  --log-level LEVEL    err, warning, notice (default), info, debug\n"
		"  -h, --help           show this help\n"
		"  --version            show the version\n",
		backend_names(), GMEM_DEFAULT_SOCKET);
}

/* Every guest costs gmemd an fd (memfd), so the soft limit must not be the first wall we hit. */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_errno(LOG_WARNING, -errno, "raising RLIMIT_NOFILE");
	}
}

int main(int argc, char **argv)
{
	enum { OPT_BACKEND = 256, OPT_SOCKET, OPT_SOCKET_MODE, OPT_STATE_DIR, OPT_POOL_SIZE, OPT_LOG_LEVEL,
	       OPT_VERSION, OPT_PREPARE_TIMEOUT, OPT_ACK_TIMEOUT, OPT_SOCKET_GROUP, OPT_ADMIN_GROUP,
	       OPT_QUOTA_BYTES, OPT_QUOTA_GUESTS, OPT_MAX_CONN, OPT_MAX_CONN_UID, OPT_BUS, OPT_KMOD_DEVICE,
	       OPT_TOKEN_TIMEOUT, OPT_COMPACT, OPT_RECOVER };
	static const struct option opts[] = {
		{ "backend", required_argument, NULL, OPT_BACKEND },
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "socket-mode", required_argument, NULL, OPT_SOCKET_MODE },
		{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
		{ "pool-size", required_argument, NULL, OPT_POOL_SIZE },
		{ "kmod-device", required_argument, NULL, OPT_KMOD_DEVICE },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "prepare-timeout", required_argument, NULL, OPT_PREPARE_TIMEOUT },
		{ "socket-group", required_argument, NULL, OPT_SOCKET_GROUP },
		{ "admin-group", required_argument, NULL, OPT_ADMIN_GROUP },
		{ "quota-bytes", required_argument, NULL, OPT_QUOTA_BYTES },
		{ "quota-guests", required_argument, NULL, OPT_QUOTA_GUESTS },
		{ "max-connections", required_argument, NULL, OPT_MAX_CONN },
		{ "max-connections-per-uid", required_argument, NULL, OPT_MAX_CONN_UID },
		{ "ack-timeout", required_argument, NULL, OPT_ACK_TIMEOUT },
		{ "token-timeout", required_argument, NULL, OPT_TOKEN_TIMEOUT },
		{ "bus", required_argument, NULL, OPT_BUS },
		{ "journal-compact-records", required_argument, NULL, OPT_COMPACT },
		{ "recover-from-snapshot", no_argument, NULL, OPT_RECOVER },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{},
	};
	struct manager_config cfg = {
		.backend = "memfd",
		.socket_path = GMEM_DEFAULT_SOCKET,
		.state_dir = "/run/gmem",
		.socket_mode = 0660,
		.socket_gid = (gid_t)-1,
		.admin_gid = (gid_t)-1,
		.quota_guests = 1024,
		.max_connections = 4096,
		.max_connections_per_uid = 1024,
		.bus = DBUS_KIND_SYSTEM,
		.journal_compact_records = 4096,
	};
	bool socket_group_set = false;
	struct manager *m = NULL;
	char *end;
	int c, r;

	log_init("gmemd");
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
		switch (c) {
		case OPT_BACKEND:
			cfg.backend = optarg;
			break;
		case OPT_SOCKET:
			cfg.socket_path = optarg;
			break;
		case OPT_SOCKET_MODE: {
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 8);
			if (errno || *end || end == optarg || v > 0777) {
				fprintf(stderr, "gmemd: --socket-mode: '%s' is not an octal mode\n", optarg);
				return 2;
			}
			cfg.socket_mode = (mode_t)v;
			break;
		}
		case OPT_STATE_DIR:
			cfg.state_dir = optarg;
			break;
		case OPT_KMOD_DEVICE:
			cfg.kmod_device = optarg;
			break;
		case OPT_POOL_SIZE:
			r = gmem_parse_size(optarg, &cfg.pool_size);
			if (r < 0 || cfg.pool_size == 0) {
				fprintf(stderr, "gmemd: --pool-size: '%s' is not a size (e.g. 64G, 2T)\n", optarg);
				return 2;
			}
			break;
		case OPT_PREPARE_TIMEOUT:
		case OPT_TOKEN_TIMEOUT:
		case OPT_ACK_TIMEOUT: {
			errno = 0;
			unsigned long long v = strtoull(optarg, &end, 10);
			if (errno || *end || end == optarg || v == 0 || v > 3600000) {
				fprintf(stderr, "gmemd: --%s: '%s' is not a time in ms (1..3600000)\n",
					c == OPT_ACK_TIMEOUT ? "ack-timeout" : c == OPT_TOKEN_TIMEOUT ? "token-timeout"
									: "prepare-timeout", optarg);
				return 2;
			}
			if (c == OPT_ACK_TIMEOUT)
				cfg.ack_timeout_ms = v;
			else if (c == OPT_TOKEN_TIMEOUT)
				cfg.token_timeout_ms = v;
			else
				cfg.prepare_timeout_ms = v;
			break;
		}
		case OPT_SOCKET_GROUP:
		case OPT_ADMIN_GROUP: {
			struct group *gr = getgrnam(optarg);
			if (!gr) {
				fprintf(stderr, "gmemd: --%s: no group named '%s'\n",
					c == OPT_ADMIN_GROUP ? "admin-group" : "socket-group", optarg);
				return 2;
			}
			if (c == OPT_ADMIN_GROUP) {
				cfg.admin_gid = gr->gr_gid;
			} else {
				cfg.socket_gid = gr->gr_gid;
				socket_group_set = true;
			}
			break;
		}
		case OPT_QUOTA_BYTES:
			if (gmem_parse_size(optarg, &cfg.quota_bytes) < 0 || cfg.quota_bytes == 0) {
				fprintf(stderr, "gmemd: --quota-bytes: '%s' is not a size\n", optarg);
				return 2;
			}
			break;
		case OPT_QUOTA_GUESTS:
		case OPT_MAX_CONN:
		case OPT_MAX_CONN_UID: {
			errno = 0;
			unsigned long long v = strtoull(optarg, &end, 10);
			if (errno || *end || end == optarg || v == 0 || v > 1000000) {
				fprintf(stderr, "gmemd: '%s' is not a count (1..1000000)\n", optarg);
				return 2;
			}
			*(c == OPT_QUOTA_GUESTS ? &cfg.quota_guests
			  : c == OPT_MAX_CONN   ? &cfg.max_connections
						: &cfg.max_connections_per_uid) = v;
			break;
		}
		case OPT_BUS:
			r = dbus_kind_from_string(optarg);
			if (r < 0) {
				fprintf(stderr, "gmemd: --bus: '%s' is not system, session or none\n", optarg);
				return 2;
			}
			cfg.bus = (enum dbus_kind)r;
			break;
		case OPT_COMPACT: {
			errno = 0;
			unsigned long long v = strtoull(optarg, &end, 10);
			if (errno || *end || end == optarg || v > 100000000) {
				fprintf(stderr, "gmemd: --journal-compact-records: '%s' is not a count (0..100000000)\n",
					optarg);
				return 2;
			}
			cfg.journal_compact_records = v;
			break;
		}
		case OPT_RECOVER:
			cfg.recover_from_snapshot = true;
			break;
		case OPT_LOG_LEVEL:
			r = log_parse_level(optarg);
			if (r < 0) {
				fprintf(stderr, "gmemd: --log-level: '%s' is not a level\n", optarg);
				return 2;
			}
			log_set_level(r);
			break;
		case 'h':
			usage(stdout);
			return 0;
		case OPT_VERSION:
			printf("gmemd %s (protocol %d)\n", GMEM_VERSION, GMEM_PROTOCOL_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "gmemd: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}

	if (!socket_group_set) {
		/* The packaged default: clients are members of group gmem. */
		struct group *gr = getgrnam("gmem");
		if (gr)
			cfg.socket_gid = gr->gr_gid;
	}
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	/* Parsing a 1,024-range request allocates and frees ~400 KB of json-c objects; with glibc's default
	 * trimming every such request gave the pages back and faulted them in again (~100 faults, ~0.4 ms
	 * per batch conversion, measured by bench-convert). Keep a few MB of heap instead. */
	mallopt(M_TRIM_THRESHOLD, 16 << 20);
	mallopt(M_TOP_PAD, 4 << 20);
#ifdef GMEM_TEST_LEAK
	/* A test-only build (gmemd-leaky): a leak that memcheck must catch, or the valgrind run proves nothing. */
	static void *volatile leak;
	leak = malloc(4096);
	leak = NULL;
	(void)leak;
#endif

	r = manager_new(&cfg, &m);
	if (r < 0) {
		log_error("start-up failed: %s", strerror(-r));
		return 1;
	}
	r = manager_run(m);
	manager_free(m);
	return r < 0 ? 1 : 0;
}
