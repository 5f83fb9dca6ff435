/* SPDX-License-Identifier: MIT */
/*
 * gmemctl-export: a guest's map and contents to a file, and back into a new guest.
 *
 * The file: a header of H bytes (H a multiple of 4096) — a first line "GMEMEXPORT 1 H", then one JSON
 * object {name, size, granule, runs: [{offset, length, state}]}, padded with newlines — followed by
 * the guest's contents, size bytes at offset H, written sparse: the holes of the guest stay holes of the
 * file (SEEK_DATA/SEEK_HOLE), so a mostly untouched guest exports to a small file.
 *
 * Export reads the guest through a file of it (nothing is faulted in, so nothing is charged to our
 * cgroup) and takes the map before and after: a conversion in between fails the export. Contents that
 * a running VMM writes meanwhile cannot be told: export a guest whose VMM is stopped. Import creates the
 * guest (owned by the caller), writes the contents while it is all shared, then converts the private
 * runs, preserving contents; on any failure it destroys what it created.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gmemctl.h"
#include "size.h"
#include "util.h"

#define EXPORT_MAGIC "GMEMEXPORT 1 "
#define EXPORT_ALIGN 4096
#define EXPORT_HEADER_MAX (256u << 20)
#define COPY_CHUNK (1u << 20)

static bool all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Copies the data extents of [in_off, in_off+len) of in to out at out_off, leaving holes and zero
 * chunks unwritten. Return: 0 or -errno. */
static int copy_sparse(int in, off_t in_off, int out, off_t out_off, uint64_t len, uint64_t *copied)
{
	_cleanup_free_ unsigned char *buf = malloc(COPY_CHUNK);
	off_t end = in_off + (off_t)len;
	if (!buf)
		return -ENOMEM;
	*copied = 0;
	for (off_t pos = in_off; pos < end;) {
		off_t data = lseek(in, pos, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO ? 0 : negative_errno();
		if (data >= end)
			break;
		off_t hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			return negative_errno();
		hole = MIN(hole, end);
		for (off_t p = data; p < hole;) {
			size_t n = (size_t)MIN((off_t)COPY_CHUNK, hole - p);
			ssize_t r = pread(in, buf, n, p);
			if (r <= 0)
				return r < 0 ? negative_errno() : -EIO;
			/* Page by page: a page of zeroes stays a hole, wherever it came from (a VMM that read
			 * a hole through a shared mapping made it a page). */
			for (size_t q = 0; q < (size_t)r; q += EXPORT_ALIGN) {
				size_t k = MIN((size_t)EXPORT_ALIGN, (size_t)r - q);
				if (all_zero(buf + q, k))
					continue;
				if (pwrite(out, buf + q, k, out_off + (p - in_off) + (off_t)q) != (ssize_t)k)
					return negative_errno();
				*copied += k;
			}
			p += r;
		}
		pos = hole;
	}
	return 0;
}

/* runs: all of them on export, the private ones on import. */
static void print_result(const char *what, const char *guest, uint64_t size, size_t runs, uint64_t copied,
			 const char *file)
{
	char a[GMEM_SIZE_STRLEN], b[GMEM_SIZE_STRLEN];
	bool exp = what[0] == 'e';
	if (arg_json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "guest", json_object_new_string(guest));
		json_object_object_add(o, "file", json_object_new_string(file));
		json_object_object_add(o, "size", json_object_new_uint64(size));
		json_object_object_add(o, exp ? "runs" : "private_runs", json_object_new_uint64(runs));
		json_object_object_add(o, "contents_bytes", json_object_new_uint64(copied));
		print_json(o);
		return;
	}
	printf("%s %s: %s, %zu%s runs, %s of contents %s %s\n", what, guest, gmem_format_size(size, a, sizeof(a)),
	       runs, exp ? "" : " private", gmem_format_size(copied, b, sizeof(b)), exp ? "to" : "from", file);
}

static bool same_runs(const struct gmem_run *a, size_t na, const struct gmem_run *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++) /* field by field: the structs have padding */
		if (a[i].offset != b[i].offset || a[i].length != b[i].length || a[i].state != b[i].state)
			return false;
	return true;
}

int cmd_export(struct gmem_client *c, char **argv)
{
	struct gmem_guest_info info;
	struct gmem_run *runs = NULL, *after = NULL;
	size_t n, n_after;
	uint64_t copied = 0;
	int fd = -EBADF, out = -EBADF, r, st = 1;
	bool created = false;

	r = gmem_guest_open(c, argv[0], &fd, &info);
	if (r < 0)
		return fail(c, r, "export %s", argv[0]);
	r = gmem_map(c, argv[0], &runs, &n, NULL, NULL);
	if (r < 0) {
		st = fail(c, r, "export %s: map", argv[0]);
		goto out;
	}
	struct json_object *h = json_object_new_object(), *arr = json_object_new_array();
	json_object_object_add(h, "name", json_object_new_string(info.name));
	json_object_object_add(h, "size", json_object_new_uint64(info.size));
	json_object_object_add(h, "granule", json_object_new_uint64(info.granule));
	for (size_t i = 0; i < n; i++) {
		struct json_object *x = json_object_new_object();
		json_object_object_add(x, "offset", json_object_new_uint64(runs[i].offset));
		json_object_object_add(x, "length", json_object_new_uint64(runs[i].length));
		json_object_object_add(x, "state", json_object_new_string(runs[i].state == GMEM_PRIVATE ? "private" : "shared"));
		json_object_array_add(arr, x);
	}
	json_object_object_add(h, "runs", arr);
	const char *js = json_object_to_json_string_ext(h, JSON_C_TO_STRING_PLAIN);
	size_t hlen = strlen(EXPORT_MAGIC) + 24 + strlen(js) + 2;
	size_t H = (hlen + EXPORT_ALIGN - 1) / EXPORT_ALIGN * EXPORT_ALIGN;
	char *hdr = malloc(H);
	if (!hdr) {
		json_object_put(h);
		st = fail(c, -ENOMEM, "export");
		goto out;
	}
	memset(hdr, '\n', H);
	int k = snprintf(hdr, H, "%s%zu\n%s", EXPORT_MAGIC, H, js);
	hdr[k] = '\n';
	json_object_put(h);

	out = open(argv[1], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		free(hdr);
		st = fail(c, negative_errno(), "export: cannot create %s", argv[1]);
		goto out;
	}
	created = true;
	r = pwrite(out, hdr, H, 0) == (ssize_t)H ? 0 : negative_errno();
	free(hdr);
	if (r == 0 && ftruncate(out, (off_t)(H + info.size)) < 0)
		r = negative_errno();
	if (r == 0)
		r = copy_sparse(fd, 0, out, (off_t)H, info.size, &copied);
	if (r < 0) {
		st = fail(c, r, "export: writing %s", argv[1]);
		goto out;
	}
	r = gmem_map(c, argv[0], &after, &n_after, NULL, NULL);
	if (r == 0 && !same_runs(runs, n, after, n_after)) {
		fprintf(stderr, "gmemctl: export %s: a conversion changed the guest during the export; try again\n",
			argv[0]);
		goto out;
	}
	if (r < 0) {
		st = fail(c, r, "export %s: map", argv[0]);
		goto out;
	}
	print_result("exported", info.name, info.size, n, copied, argv[1]);
	st = 0;
	created = false;
out:
	if (created)
		unlink(argv[1]);
	safe_close(out);
	safe_close(fd);
	free(runs);
	free(after);
	return st;
}

/* The header of an export file: its size, and the parsed JSON object (owned by the caller). */
static int read_header(int in, size_t *ret_h, struct json_object **ret)
{
	char first[64];
	ssize_t r = pread(in, first, sizeof(first) - 1, 0);
	if (r < 0)
		return negative_errno();
	first[r] = '\0';
	size_t ml = strlen(EXPORT_MAGIC);
	char *end;
	if ((size_t)r < ml || memcmp(first, EXPORT_MAGIC, ml) != 0)
		return -EBADMSG;
	unsigned long long H = strtoull(first + ml, &end, 10);
	if (*end != '\n' || H == 0 || H % EXPORT_ALIGN || H > EXPORT_HEADER_MAX)
		return -EBADMSG;
	_cleanup_free_ char *buf = malloc(H + 1);
	if (!buf)
		return -ENOMEM;
	if (pread(in, buf, H, 0) != (ssize_t)H)
		return -EBADMSG;
	buf[H] = '\0';
	char *js = strchr(buf, '\n') + 1;
	struct json_tokener *tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	struct json_object *o = json_tokener_parse_ex(tok, js, (int)strlen(js));
	json_tokener_free(tok);
	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return -EBADMSG;
	}
	*ret_h = H;
	*ret = o;
	return 0;
}

static bool get_u64(struct json_object *o, const char *key, uint64_t *v)
{
	struct json_object *f;
	if (!json_object_object_get_ex(o, key, &f) || !json_object_is_type(f, json_type_int))
		return false;
	*v = json_object_get_uint64(f);
	return true;
}

int cmd_import(struct gmem_client *c, char **argv)
{
	struct json_object *h = NULL, *f, *runs;
	struct gmem_range *priv = NULL;
	size_t H, n_priv = 0;
	uint64_t size, granule, copied = 0;
	char name[GMEM_NAME_MAX_LEN + 1];
	int in, fd = -EBADF, r, st = 1;
	bool made = false;
	struct stat sb;

	in = open(argv[0], O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return fail(NULL, negative_errno(), "import: cannot open %s", argv[0]);
	r = read_header(in, &H, &h);
	if (r < 0 || !json_object_object_get_ex(h, "name", &f) || !json_object_is_type(f, json_type_string) ||
	    !get_u64(h, "size", &size) || !get_u64(h, "granule", &granule) ||
	    !json_object_object_get_ex(h, "runs", &runs) || !json_object_is_type(runs, json_type_array) ||
	    fstat(in, &sb) < 0 || (uint64_t)sb.st_size != H + size || size == 0 || !granule || size % granule) {
		fprintf(stderr, "gmemctl: import: %s is not a gmem export (or it is truncated)\n", argv[0]);
		st = 1;
		goto out;
	}
	snprintf(name, sizeof(name), "%s", argv[1] ? argv[1] : json_object_get_string(f));
	/* The runs must tile [0, size) on granule boundaries; the private ones are converted below. */
	size_t nr = json_object_array_length(runs);
	priv = calloc(nr ? nr : 1, sizeof(*priv));
	if (!priv) {
		st = fail(c, -ENOMEM, "import");
		goto out;
	}
	uint64_t at = 0;
	for (size_t i = 0; i < nr; i++) {
		struct json_object *x = json_object_array_get_idx(runs, i), *s;
		uint64_t off, len;
		if (!get_u64(x, "offset", &off) || !get_u64(x, "length", &len) || off != at || !len || len % granule ||
		    len > size - at || !json_object_object_get_ex(x, "state", &s) || !json_object_is_type(s, json_type_string)) {
			fprintf(stderr, "gmemctl: import: %s: run %zu is not where it should be\n", argv[0], i);
			goto out;
		}
		if (strcmp(json_object_get_string(s), "private") == 0)
			priv[n_priv++] = (struct gmem_range){ off, len };
		at += len;
	}
	if (at != size) {
		fprintf(stderr, "gmemctl: import: %s: the runs do not cover the guest\n", argv[0]);
		goto out;
	}

	r = gmem_guest_create(c, name, size, granule, NULL);
	if (r < 0) {
		st = fail(c, r, "import: create %s", name);
		goto out;
	}
	made = true;
	r = gmem_guest_open(c, name, &fd, NULL);
	if (r < 0) {
		st = fail(c, r, "import: open %s", name);
		goto out;
	}
	/* The pages written here are charged to this process's memory cgroup (README, "Which cgroup pays"). */
	r = copy_sparse(in, (off_t)H, fd, 0, size, &copied);
	if (r < 0) {
		st = fail(c, r, "import: writing the contents of %s", name);
		goto out;
	}
	for (size_t i = 0; i < n_priv; i += 1024) {
		struct gmem_convert_result res;
		size_t k = MIN(n_priv - i, (size_t)1024);
		r = gmem_convert(c, name, priv + i, k, GMEM_PRIVATE, 0, &res);
		if (r < 0) {
			st = fail(c, r, "import: convert %s", name);
			goto out;
		}
		enum gmem_outcome o = res.outcome;
		gmem_convert_result_free(&res);
		if (o != GMEM_COMMITTED) {
			fprintf(stderr, "gmemctl: import: converting the private runs of %s did not commit\n", name);
			goto out;
		}
	}
	print_result("imported", name, size, n_priv, copied, argv[0]);
	st = 0;
	made = false;
out:
	if (made)
		(void)gmem_guest_destroy(c, name);
	safe_close(fd);
	safe_close(in);
	json_object_put(h);
	free(priv);
	return st;
}
