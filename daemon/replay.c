/* SPDX-License-Identifier: MIT */
/*
 * replay: records to state (replay.h). A record's shape is checked as it is applied: a record with a
 * valid CRC but a shape gmemd did not write is damage all the same.
 */
#include "replay.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "log.h"
#include "sharemap.h"
#include "util.h"

_printf_(3, 4) static int bad(char *errmsg, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errmsg, errlen, fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

static bool get_u64(struct json_object *o, const char *key, uint64_t *ret)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return false;
	*ret = json_object_get_uint64(v);
	return true;
}

static const char *get_str(struct json_object *o, const char *key)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static bool get_bool(struct json_object *o, const char *key)
{
	struct json_object *v;
	return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

static int name_index(const char *const *names, const char *s)
{
	for (int i = 0; s && names[i]; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	return -1;
}

/* [[offset, length], ...] in bytes, each inside the guest on granule boundaries. */
static int get_ranges(struct json_object *o, const char *key, uint64_t size, uint64_t granule,
		      struct conv_range **ret, size_t *ret_n)
{
	struct json_object *a;
	*ret = NULL;
	*ret_n = 0;
	if (!json_object_object_get_ex(o, key, &a))
		return 0;
	if (!json_object_is_type(a, json_type_array))
		return -EBADMSG;
	size_t n = json_object_array_length(a);
	struct conv_range *r = calloc(n ? n : 1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct json_object *p = json_object_array_get_idx(a, i);
		if (!json_object_is_type(p, json_type_array) || json_object_array_length(p) != 2)
			goto fail;
		r[i].offset = json_object_get_uint64(json_object_array_get_idx(p, 0));
		r[i].length = json_object_get_uint64(json_object_array_get_idx(p, 1));
		if (r[i].length == 0 || r[i].offset % granule || r[i].length % granule || r[i].offset > size ||
		    r[i].length > size - r[i].offset)
			goto fail;
	}
	*ret = r;
	*ret_n = n;
	return 0;
fail:
	free(r);
	return -EBADMSG;
}

struct replay_guest *replay_find_guest(struct replay_state *s, uint64_t id)
{
	for (size_t i = 0; i < s->n_guests; i++)
		if (s->guests[i].id == id)
			return &s->guests[i];
	return NULL;
}

static struct replay_conv *find_conv(struct replay_state *s, uint64_t epoch, uint64_t seq)
{
	for (size_t i = 0; i < s->n_convs; i++)
		if (s->convs[i].epoch == epoch && s->convs[i].seq == seq)
			return &s->convs[i];
	return NULL;
}

void outcome_ring_add(struct outcome_ring *r, uint64_t epoch, uint64_t seq, const char *guest, int outcome)
{
	size_t i;
	if (r->n < REPLAY_OUTCOMES_MAX) {
		i = (r->head + r->n++) % REPLAY_OUTCOMES_MAX;
	} else {
		i = r->head; /* the oldest goes */
		r->head = (r->head + 1) % REPLAY_OUTCOMES_MAX;
	}
	r->v[i].epoch = epoch;
	r->v[i].seq = seq;
	r->v[i].outcome = outcome;
	snprintf(r->v[i].guest, sizeof(r->v[i].guest), "%s", guest);
}

const struct replay_outcome *outcome_ring_find(const struct outcome_ring *r, uint64_t epoch, uint64_t seq)
{
	for (size_t k = 0; k < r->n; k++) {
		const struct replay_outcome *o = &r->v[(r->head + k) % REPLAY_OUTCOMES_MAX];
		if (o->epoch == epoch && o->seq == seq)
			return o;
	}
	return NULL;
}

static void guest_release(struct replay_guest *g)
{
	sharemap_free(g->map);
	free(g->grants);
}

static void conv_release(struct replay_conv *c)
{
	free(c->ranges);
}

static int apply_guest(struct replay_state *s, struct json_object *rec, char *errmsg, size_t errlen)
{
	struct replay_guest g = { 0 };
	const char *name = get_str(rec, "name");
	struct conv_range *priv = NULL;
	size_t n_priv = 0;
	int r;

	if (!get_u64(rec, "id", &g.id) || !name || !gmem_name_valid(name) || !get_u64(rec, "size", &g.size) ||
	    !get_u64(rec, "granule", &g.granule) || (g.granule != GMEM_GRANULE_4K && g.granule != GMEM_GRANULE_2M) ||
	    g.size == 0 || g.size % g.granule)
		return bad(errmsg, errlen, "a guest record without a valid id, name, size or granule");
	if (replay_find_guest(s, g.id))
		return bad(errmsg, errlen, "guest %llu recorded twice", (unsigned long long)g.id);
	for (size_t i = 0; i < s->n_guests; i++)
		if (strcmp(s->guests[i].name, name) == 0)
			return bad(errmsg, errlen, "two guests named '%s'", name);
	uint64_t owner = 0;
	(void)get_u64(rec, "owner", &owner);
	g.owner = (uint32_t)owner;
	(void)get_u64(rec, "dev", &g.dev);
	(void)get_u64(rec, "ino", &g.ino);
	(void)get_u64(rec, "kid", &g.ident.module_id);
	(void)get_u64(rec, "kcookie", &g.ident.cookie);
	(void)get_u64(rec, "kbase", &g.ident.base);
	g.lost = get_bool(rec, "lost");
	snprintf(g.name, sizeof(g.name), "%s", name);

	r = get_ranges(rec, "private", g.size, g.granule, &priv, &n_priv);
	if (r < 0)
		return r == -ENOMEM ? r : bad(errmsg, errlen, "guest '%s': bad private ranges", name);
	r = sharemap_new(g.size / g.granule, SHARE_SHARED, &g.map);
	for (size_t i = 0; r == 0 && i < n_priv; i++)
		r = sharemap_set(g.map, priv[i].offset / g.granule, priv[i].length / g.granule, SHARE_PRIVATE);
	free(priv);
	if (r < 0)
		goto fail;

	struct json_object *ga;
	if (json_object_object_get_ex(rec, "grants", &ga) && json_object_is_type(ga, json_type_array)) {
		size_t n = MIN(json_object_array_length(ga), (size_t)GUEST_GRANTS_MAX);
		g.grants = calloc(n ? n : 1, sizeof(*g.grants));
		if (!g.grants) {
			r = -ENOMEM;
			goto fail;
		}
		for (size_t i = 0; i < n; i++) {
			struct json_object *e = json_object_array_get_idx(ga, i);
			uint64_t who;
			int role = name_index(gmem_role_names, get_str(e, "role"));
			const char *kind = get_str(e, "kind");
			if (!get_u64(e, "who", &who) || !kind || role < 0) {
				r = bad(errmsg, errlen, "guest '%s': a bad grant", name);
				goto fail;
			}
			g.grants[g.n_grants++] = (struct grant){ .kind = strcmp(kind, "gid") == 0 ? GRANT_GID : GRANT_UID,
								 .id = (uint32_t)who, .role = role };
		}
	}
	if (s->n_guests == s->cap_guests) {
		size_t cap = s->cap_guests ? s->cap_guests * 2 : 64;
		struct replay_guest *grown = realloc(s->guests, cap * sizeof(*grown));
		if (!grown) {
			r = -ENOMEM;
			goto fail;
		}
		s->guests = grown;
		s->cap_guests = cap;
	}
	s->guests[s->n_guests++] = g;
	if (g.id >= s->next_guest_id)
		s->next_guest_id = g.id + 1;
	return 0;
fail:
	guest_release(&g);
	return r;
}

static int apply_grant(struct replay_state *s, struct json_object *rec, bool grant, char *errmsg, size_t errlen)
{
	uint64_t id, who;
	const char *kind = get_str(rec, "kind");
	int role = name_index(gmem_role_names, get_str(rec, "role"));
	if (!get_u64(rec, "id", &id) || !get_u64(rec, "who", &who) || !kind || role < 0)
		return bad(errmsg, errlen, "a bad grant record");
	struct replay_guest *g = replay_find_guest(s, id);
	if (!g)
		return bad(errmsg, errlen, "a grant on unknown guest %llu", (unsigned long long)id);
	struct grant want = { .kind = strcmp(kind, "gid") == 0 ? GRANT_GID : GRANT_UID, .id = (uint32_t)who,
			      .role = role };
	for (size_t i = 0; i < g->n_grants; i++) {
		if (g->grants[i].kind != want.kind || g->grants[i].id != want.id)
			continue;
		if (grant)
			g->grants[i].role = role;
		else if (g->grants[i].role == role)
			g->grants[i] = g->grants[--g->n_grants];
		return 0;
	}
	if (!grant || g->n_grants >= GUEST_GRANTS_MAX)
		return 0;
	struct grant *grown = realloc(g->grants, (g->n_grants + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	g->grants = grown;
	g->grants[g->n_grants++] = want;
	return 0;
}

static int apply_begin(struct replay_state *s, struct json_object *rec, char *errmsg, size_t errlen)
{
	struct replay_conv c = { .decision = -1 };
	int target = name_index(gmem_target_names, get_str(rec, "target"));
	if (!get_u64(rec, "epoch", &c.epoch) || !get_u64(rec, "seq", &c.seq) || !get_u64(rec, "guest", &c.guest_id) ||
	    target < 0)
		return bad(errmsg, errlen, "a bad begin record");
	struct replay_guest *g = replay_find_guest(s, c.guest_id);
	if (!g)
		return bad(errmsg, errlen, "conversion %llu of unknown guest %llu", (unsigned long long)c.seq,
			   (unsigned long long)c.guest_id);
	if (find_conv(s, c.epoch, c.seq))
		return bad(errmsg, errlen, "conversion %llu begun twice", (unsigned long long)c.seq);
	c.to_private = target == GMEM_PRIVATE;
	c.zero = get_bool(rec, "zero");
	int r = get_ranges(rec, "ranges", g->size, g->granule, &c.ranges, &c.n_ranges);
	if (r < 0)
		return r == -ENOMEM ? r : bad(errmsg, errlen, "conversion %llu: bad ranges", (unsigned long long)c.seq);
	struct json_object *p;
	if (json_object_object_get_ex(rec, "parts", &p) && json_object_is_type(p, json_type_array))
		c.n_parts = json_object_array_length(p);
	if (s->n_convs == s->cap_convs) {
		size_t cap = s->cap_convs ? s->cap_convs * 2 : 16;
		struct replay_conv *grown = realloc(s->convs, cap * sizeof(*grown));
		if (!grown) {
			conv_release(&c);
			return -ENOMEM;
		}
		s->convs = grown;
		s->cap_convs = cap;
	}
	s->convs[s->n_convs++] = c;
	return 0;
}

static void drop_conv(struct replay_state *s, struct replay_conv *c)
{
	conv_release(c);
	size_t i = (size_t)(c - s->convs);
	memmove(&s->convs[i], &s->convs[i + 1], (s->n_convs - i - 1) * sizeof(*c));
	s->n_convs--;
}

/* The map change of a committed conversion: recorded once the backend applied it. */
static int apply_map(struct replay_state *s, struct replay_conv *c)
{
	struct replay_guest *g = replay_find_guest(s, c->guest_id);
	if (!g)
		return 0; /* destroyed meanwhile */
	for (size_t i = 0; i < c->n_ranges; i++) {
		int r = sharemap_set(g->map, c->ranges[i].offset / g->granule, c->ranges[i].length / g->granule,
				     c->to_private ? SHARE_PRIVATE : SHARE_SHARED);
		if (r < 0)
			return r;
	}
	c->applied = true;
	return 0;
}

static int apply_conv_step(struct replay_state *s, struct json_object *rec, const char *t, char *errmsg,
			   size_t errlen)
{
	uint64_t epoch, seq;
	if (!get_u64(rec, "epoch", &epoch) || !get_u64(rec, "seq", &seq))
		return bad(errmsg, errlen, "a %s record without epoch and seq", t);
	struct replay_conv *c = find_conv(s, epoch, seq);
	if (!c)
		return bad(errmsg, errlen, "a %s record of conversion %llu that never began", t, (unsigned long long)seq);
	if (strcmp(t, "decide") == 0) {
		if (c->decision >= 0)
			return bad(errmsg, errlen, "conversion %llu decided twice", (unsigned long long)seq);
		c->decision = get_bool(rec, "commit") ? 0 : 1;
		return 0;
	}
	if (strcmp(t, "applied") == 0) {
		if (c->decision != 0)
			return bad(errmsg, errlen, "conversion %llu applied without a commit", (unsigned long long)seq);
		return apply_map(s, c);
	}
	/* done */
	int outcome = name_index(gmem_outcome_names, get_str(rec, "outcome"));
	if (outcome < 0)
		return bad(errmsg, errlen, "conversion %llu: a done record without an outcome", (unsigned long long)seq);
	drop_conv(s, c);
	return 0;
}

int replay_apply(struct replay_state *s, struct json_object *rec, char *errmsg, size_t errlen)
{
	const char *t = get_str(rec, "t");
	uint64_t n = 0;

	if (!t)
		return bad(errmsg, errlen, "a record without a type");
	if (get_u64(rec, "n", &n))
		s->n = MAX(s->n, n);
	s->records++;
	if (strcmp(t, "head") == 0) {
		const char *b = get_str(rec, "backend");
		uint64_t v = 0;
		if (!b || !get_u64(rec, "v", &v) || v != JOURNAL_VERSION)
			return bad(errmsg, errlen, "a head record without a backend, or of another version");
		if (s->backend[0] && strcmp(s->backend, b) != 0)
			return bad(errmsg, errlen, "a head of backend %s after one of %s", b, s->backend);
		snprintf(s->backend, sizeof(s->backend), "%s", b);
		uint64_t ng;
		if (get_u64(rec, "next_guest", &ng) && ng > s->next_guest_id)
			s->next_guest_id = ng;
		return 0;
	}
	if (!s->backend[0])
		return bad(errmsg, errlen, "a %s record before the head", t);
	if (strcmp(t, "guest") == 0)
		return apply_guest(s, rec, errmsg, errlen);
	if (strcmp(t, "destroy") == 0) {
		uint64_t id;
		struct replay_guest *g = get_u64(rec, "id", &id) ? replay_find_guest(s, id) : NULL;
		if (!g)
			return bad(errmsg, errlen, "destroy of an unknown guest");
		guest_release(g);
		*g = s->guests[--s->n_guests];
		return 0;
	}
	if (strcmp(t, "grant") == 0 || strcmp(t, "revoke") == 0)
		return apply_grant(s, rec, t[0] == 'g', errmsg, errlen);
	if (strcmp(t, "begin") == 0)
		return apply_begin(s, rec, errmsg, errlen);
	if (strcmp(t, "decide") == 0 || strcmp(t, "applied") == 0 || strcmp(t, "done") == 0)
		return apply_conv_step(s, rec, t, errmsg, errlen);
	if (strcmp(t, "outcome") == 0) {
		uint64_t epoch, seq;
		const char *guest = get_str(rec, "guest");
		int outcome = name_index(gmem_outcome_names, get_str(rec, "outcome"));
		if (!get_u64(rec, "epoch", &epoch) || !get_u64(rec, "seq", &seq) || !guest || outcome < 0)
			return bad(errmsg, errlen, "a bad outcome record");
		outcome_ring_add(&s->outcomes, epoch, seq, guest, outcome);
		return 0;
	}
	return bad(errmsg, errlen, "a record of unknown type '%s'", t);
}

/* Applies a scan's records; those the snapshot covers (n <= skip_upto) are skipped. On a record that
 * makes no sense, *ret_bad is its index. */
static int apply_all(struct replay_state *s, struct journal_scan *sc, uint64_t skip_upto, size_t *ret_bad,
		     char *errmsg, size_t errlen)
{
	for (size_t i = 0; i < sc->n; i++) {
		uint64_t n = 0;
		struct json_object *v;
		if (json_object_object_get_ex(sc->recs[i], "n", &v))
			n = json_object_get_uint64(v);
		const char *t = get_str(sc->recs[i], "t");
		bool head = t && strcmp(t, "head") == 0;
		if (!head && n && n <= skip_upto)
			continue;
		int r = replay_apply(s, sc->recs[i], errmsg, errlen);
		if (r < 0) {
			*ret_bad = i;
			return r;
		}
	}
	return 0;
}

static uint64_t offset_of(const struct journal_scan *sc, size_t i)
{
	return i < sc->n ? sc->offsets[i] : sc->good_end;
}

int replay_load(int dirfd, const char *backend, bool recover_from_snapshot, struct replay_state *s)
{
	struct journal_scan snap, jn;
	char err[256] = "";
	size_t badi = 0;
	int r;

	memset(s, 0, sizeof(*s));
	s->next_guest_id = 1;
	r = journal_scan_file(dirfd, SNAPSHOT_FILE, &snap);
	if (r == 0 && snap.torn) {
		/* Snapshots are renamed into place whole: any damage in one is corruption. */
		r = -EBADMSG;
		snap.corrupt_offset = snap.torn_offset;
	}
	if (r == -EBADMSG) {
		log_error("%s is damaged at byte %llu: refusing to start (the guests it lists would be lost)",
			  SNAPSHOT_FILE, (unsigned long long)snap.corrupt_offset);
		goto out_snap;
	}
	if (r < 0) {
		log_errno(LOG_ERR, r, "reading %s", SNAPSHOT_FILE);
		goto out_snap;
	}
	r = apply_all(s, &snap, 0, &badi, err, sizeof(err));
	if (r < 0) {
		log_error("%s: record at byte %llu: %s: refusing to start", SNAPSHOT_FILE,
			  (unsigned long long)offset_of(&snap, badi), err);
		goto out_snap;
	}
	uint64_t covered = s->n;

	r = journal_scan_file(dirfd, JOURNAL_FILE, &jn);
	if (r == -EBADMSG) {
		if (!recover_from_snapshot) {
			log_error("%s is damaged at byte %llu (valid records follow it): refusing to start; "
				  "--recover-from-snapshot starts from %s and the records before that byte",
				  JOURNAL_FILE, (unsigned long long)jn.corrupt_offset, SNAPSHOT_FILE);
			goto out_jn;
		}
		log_warning("%s is damaged at byte %llu: recovering from %s and the %zu records before it; "
			    "everything recorded after that byte is lost", JOURNAL_FILE,
			    (unsigned long long)jn.corrupt_offset, SNAPSHOT_FILE, jn.n);
		s->rewrite = true;
		r = 0;
	}
	if (r < 0) {
		log_errno(LOG_ERR, r, "reading %s", JOURNAL_FILE);
		goto out_jn;
	}
	if (jn.torn)
		log_notice("%s: discarded a torn record at byte %llu (a crash during an append; never acted on)",
			   JOURNAL_FILE, (unsigned long long)jn.torn_offset);
	r = apply_all(s, &jn, covered, &badi, err, sizeof(err));
	if (r < 0) {
		uint64_t off = offset_of(&jn, badi);
		if (!recover_from_snapshot) {
			log_error("%s: record at byte %llu: %s: refusing to start", JOURNAL_FILE,
				  (unsigned long long)off, err);
			goto out_jn;
		}
		log_warning("%s: record at byte %llu: %s: recovering with what came before it", JOURNAL_FILE,
			    (unsigned long long)off, err);
		s->rewrite = true;
		r = 0;
	}
	s->good_end = s->rewrite ? 0 : jn.good_end;
	if (s->backend[0] && strcmp(s->backend, backend) != 0) {
		log_error("the journal in the state dir was written by backend %s, not %s: refusing to start (its "
			  "guests are not this backend's to find)", s->backend, backend);
		r = -EXDEV;
	}
out_jn:
	journal_scan_free(&jn);
out_snap:
	journal_scan_free(&snap);
	if (r < 0)
		replay_state_free(s);
	return r;
}

void replay_state_free(struct replay_state *s)
{
	for (size_t i = 0; i < s->n_guests; i++)
		guest_release(&s->guests[i]);
	for (size_t i = 0; i < s->n_convs; i++)
		conv_release(&s->convs[i]);
	free(s->guests);
	free(s->convs);
	s->guests = NULL;
	s->convs = NULL;
	s->n_guests = s->n_convs = 0;
}
