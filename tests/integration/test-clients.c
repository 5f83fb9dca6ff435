/* SPDX-License-Identifier: MIT */
/*
 * The clients op, through libgmem and `gmemctl clients`: root (an admin) sees every connection with what
 * it holds; a process of another uid sees only its own uid's connections, never root's nor a third
 * uid's, both through the library and through gmemctl --json. Runs as root (it drops to other uids).
 */
#include <errno.h>
#include <grp.h>
#include <gmem/gmem.h>
#include <json-c/json.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define MiB (1ULL << 20)
#define UID_A 10101
#define UID_B 10102

static struct gmemd d;

/* gmemctl --json clients as the calling process: the parsed array. */
static struct json_object *gmemctl_clients(void)
{
	char *out, *err;
	const char *argv[] = { binary("GMEMCTL"), "--socket", d.socket, "--json", "clients", NULL };
	int st = run_capture(argv, &out, &err);
	if (st != 0)
		fprintf(stderr, "gmemctl clients: exit %d: %s", st, err);
	CHECK_EQ(st, 0);
	struct json_object *a = json_tokener_parse(out);
	CHECK(a && json_object_is_type(a, json_type_array));
	free(out);
	free(err);
	return a;
}

static uint64_t field(struct json_object *o, const char *key)
{
	struct json_object *v;
	CHECK(json_object_object_get_ex(o, key, &v));
	return (uint64_t)json_object_get_int64(v);
}

/* uid A: two connections, held until the parent says "exit". */
static int holder(struct child_io *io, void *arg)
{
	struct gmem_client *c1, *c2;
	(void)arg;
	if (setgroups(0, NULL) < 0 || setgid(UID_A) < 0 || setuid(UID_A) < 0)
		return 90;
	if (gmem_connect(d.socket, GMEM_ROLE_DEVICE, &c1) < 0 || gmem_connect(d.socket, GMEM_ROLE_VMM, &c2) < 0)
		return 91;
	struct gmem_client_info *cs;
	size_t n;
	if (gmem_client_list(c1, &cs, &n) < 0)
		return 92;
	/* Its own two, nothing of root's. */
	int bad = n != 2 || cs[0].uid != UID_A || cs[1].uid != UID_A || !cs[0].self || cs[1].self ||
		  cs[0].id != gmem_client_id(c1) || cs[1].id != gmem_client_id(c2) || cs[0].role != GMEM_ROLE_DEVICE ||
		  cs[1].role != GMEM_ROLE_VMM || cs[0].pid != (uint32_t)getpid();
	free(cs);
	if (bad)
		return 93;
	msg_send(io->out, "ready");
	char line[16];
	msg_recv(io->in, line, sizeof(line), 60000);
	gmem_disconnect(c1);
	gmem_disconnect(c2);
	return 0;
}

/* uid B: sees only itself, also through gmemctl (whose own connection is then the only one). */
static int outsider(struct child_io *io, void *arg)
{
	struct gmem_client *c;
	(void)io;
	(void)arg;
	if (setgroups(0, NULL) < 0 || setgid(UID_B) < 0 || setuid(UID_B) < 0)
		return 90;
	if (gmem_connect(d.socket, GMEM_ROLE_VMM, &c) < 0)
		return 91;
	struct gmem_client_info *cs;
	size_t n;
	if (gmem_client_list(c, &cs, &n) < 0)
		return 92;
	int bad = n != 1 || !cs[0].self || cs[0].uid != UID_B;
	free(cs);
	if (bad)
		return 93;
	gmem_disconnect(c);
	struct json_object *a = gmemctl_clients();
	if (json_object_array_length(a) != 1 || field(json_object_array_get_idx(a, 0), "uid") != UID_B)
		return 94;
	json_object_put(a);
	return 0;
}

int main(void)
{
	struct gmem_client *root;
	struct child h, o;
	int fd;

	if (getuid() != 0) {
		printf("1..0 # SKIP needs root to act as other uids\n");
		return 77;
	}
	gmemd_start(&d, (const char *[]){ "--socket-mode", "0666", "--pool-size", "256M", NULL });
	CHECK(chmod(d.dir, 0755) == 0);

	CHECK_EQ(gmem_connect(d.socket, GMEM_ROLE_VMM, &root), 0);
	CHECK_EQ(gmem_guest_create(root, "clients-g", 4 * MiB, 0, NULL), 0);
	CHECK_EQ(gmem_guest_open(root, "clients-g", &fd, NULL), 0);
	CHECK_EQ(gmem_attach(root, "clients-g", 0, MiB, GMEM_ATTACH_MMAP, NULL), 0);
	CHECK_EQ(gmem_lease(root, "clients-g"), 0);

	child_start(&h, holder, NULL);
	msg_expect(h.from_child, "ready", 10000);
	printf("ok uid %d sees its own two connections, and which one is itself\n", UID_A);

	/* Root: every connection, with what each holds. */
	struct gmem_client_info *cs;
	size_t n;
	CHECK_EQ(gmem_client_list(root, &cs, &n), 0);
	CHECK_EQ(n, 3);
	CHECK_EQ(cs[0].id, gmem_client_id(root));
	CHECK(cs[0].self && cs[0].hello && cs[0].role == GMEM_ROLE_VMM);
	CHECK_EQ(cs[0].pid, getpid());
	CHECK_EQ(cs[0].uid, 0);
	CHECK_EQ(cs[0].attachments, 1);
	CHECK_EQ(cs[0].files, 1);
	CHECK_EQ(cs[0].leases, 1);
	CHECK(strcmp(cs[0].name, "test-clients") == 0);
	CHECK(cs[1].uid == UID_A && cs[2].uid == UID_A && !cs[1].self && cs[1].pid == (uint32_t)h.pid);
	free(cs);
	printf("ok root sees every connection with its pid, uid, role, attachments, files and leases\n");

	struct json_object *a = gmemctl_clients();
	CHECK_EQ(json_object_array_length(a), 4);
	struct json_object *mine = json_object_array_get_idx(a, 3), *v;
	CHECK(json_object_object_get_ex(mine, "self", &v) && json_object_get_boolean(v));
	CHECK(json_object_object_get_ex(mine, "role", &v) && strcmp(json_object_get_string(v), "admin") == 0);
	CHECK_EQ(field(json_object_array_get_idx(a, 1), "uid"), UID_A);
	json_object_put(a);
	printf("ok gmemctl --json clients as root: all four, its own as admin\n");

	child_start(&o, outsider, NULL);
	CHECK_EQ(child_wait(&o), 0);
	printf("ok uid %d sees only itself, through libgmem and through gmemctl\n", UID_B);

	msg_send(h.to_child, "exit");
	CHECK_EQ(child_wait(&h), 0);
	close(fd);
	gmem_disconnect(root);
	CHECK_EQ(gmemd_stop(&d), 0);
	return 0;
}
