/* SPDX-License-Identifier: MIT */
/*
 * sharemap: the segments live in one sorted array (binary search by start, memmove to splice), like the
 * pool's free list: a guest has at most a few thousand segments in practice, and an array is both compact
 * and easy to keep correct.
 *
 * The representation is canonical: it is a function of the contents alone. Every chunk-aligned region is a
 * bitmap exactly when the maximal runs inside it (clipped to the chunk) would cost more than a bitmap
 * segment, and runs of one state are always merged. So a set only has to re-decide the at most two chunks
 * at the ends of its range: the chunks strictly inside it become uniform (runs) and all others keep their
 * contents, hence their representation.
 *
 * sharemap_set works in three steps so that -ENOMEM leaves the map untouched: plan (how many runs each
 * end chunk will hold, so which form it takes), allocate (new bitmaps, then array room), and only then
 * commit (update kept bitmaps in place, free dropped ones, splice the new segments in). The new segments
 * are built in a buffer on the stack; their number is bounded because a chunk held as runs has at most
 * CHUNK_RUNS_MAX of them.
 *
 * A bitmap segment caches its number of runs, so a small set inside it costs only the words it touches
 * rather than a rescan of the chunk.
 */
#include "sharemap.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define SEG_MIN_CAP 4
#define WORD_BITS 64

struct segment {
	uint64_t start;
	uint64_t len;
	uint64_t *bits;		/* a bitmap chunk of len bits, 1 = private; NULL: a run of one state */
	uint32_t runs;		/* a bitmap's maximal runs, so a small set never rescans the chunk */
	enum share_state state; /* a run's state */
};

struct sharemap {
	uint64_t n;
	struct segment *seg;
	size_t nseg;
	size_t cap;
	size_t bitmap_bytes; /* sum over bitmap segments, so that sharemap_bytes is O(1) */
};

/* The most runs a full chunk may hold before a bitmap is cheaper (see want_bitmap). */
#define CHUNK_RUNS_MAX ((sizeof(struct segment) + SHAREMAP_CHUNK / 8) / sizeof(struct segment))
/* What one set can emit: two end chunks as runs, the covered middle, up to two runs on either side. */
#define EMIT_MAX (2 * CHUNK_RUNS_MAX + 5)

typedef int (*piece_fn)(uint64_t start, uint64_t len, enum share_state state, void *arg);

static bool valid_state(enum share_state s)
{
	return s == SHARE_SHARED || s == SHARE_PRIVATE;
}

static uint64_t seg_end(const struct segment *s)
{
	return s->start + s->len;
}

static uint64_t chunk_floor(uint64_t g)
{
	return g - g % SHAREMAP_CHUNK;
}

/* The last chunk may be partial. Written so that nothing wraps for n close to UINT64_MAX. */
static uint64_t chunk_end(const struct sharemap *m, uint64_t lo)
{
	return lo + MIN((uint64_t)SHAREMAP_CHUNK, m->n - lo);
}

static size_t bitmap_words(uint64_t len)
{
	return (len + WORD_BITS - 1) / WORD_BITS;
}

static size_t bitmap_size(uint64_t len)
{
	return bitmap_words(len) * sizeof(uint64_t);
}

/*
 * The cost rule. A bitmap still needs its own segment, so it pays off only when the runs cost more than
 * that segment plus the bits. A uniform chunk (one run) is therefore never a bitmap.
 */
static bool want_bitmap(uint64_t runs, uint64_t len)
{
	return runs * sizeof(struct segment) > sizeof(struct segment) + bitmap_size(len);
}

/* Index of the segment holding granule g < n. */
static size_t seg_index(const struct sharemap *m, uint64_t g)
{
	size_t lo = 0, hi = m->nseg;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->seg[mid].start <= g)
			lo = mid + 1;
		else
			hi = mid;
	}
	assert(lo > 0);
	return lo - 1;
}

static bool bit_get(const uint64_t *bits, uint64_t i)
{
	return bits[i / WORD_BITS] >> (i % WORD_BITS) & 1;
}

/* Bits [lo, hi) of one word, 0 <= lo < hi <= 64. */
static uint64_t word_mask(unsigned lo, unsigned hi)
{
	uint64_t below_hi = hi == WORD_BITS ? ~UINT64_C(0) : (UINT64_C(1) << hi) - 1;

	return below_hi & (~UINT64_C(0) << lo);
}

/* The end of the part of [from, to) that lies in from's word, as a bit index inside that word. */
static unsigned word_stop(uint64_t from, uint64_t to)
{
	uint64_t base = from - from % WORD_BITS;

	return to - base >= WORD_BITS ? WORD_BITS : (unsigned)(to - base);
}

static void bits_fill(uint64_t *bits, uint64_t from, uint64_t to, bool v)
{
	while (from < to) {
		uint64_t w = from / WORD_BITS;
		unsigned hi = word_stop(from, to);
		uint64_t mask = word_mask(from % WORD_BITS, hi);

		if (v)
			bits[w] |= mask;
		else
			bits[w] &= ~mask;
		from = w * WORD_BITS + hi;
	}
}

/* Set bits in [from, to). */
static uint64_t bits_count(const uint64_t *bits, uint64_t from, uint64_t to)
{
	uint64_t count = 0;

	while (from < to) {
		uint64_t w = from / WORD_BITS;
		unsigned hi = word_stop(from, to);

		count += __builtin_popcountll(bits[w] & word_mask(from % WORD_BITS, hi));
		from = w * WORD_BITS + hi;
	}
	return count;
}

/*
 * The number of i in [from, to) with bit i != bit i + 1; bit `to` must exist. A word is compared with
 * itself shifted by one, the next word's lowest bit filling in the top.
 */
static uint64_t bits_transitions(const uint64_t *bits, uint64_t from, uint64_t to)
{
	uint64_t count = 0;

	while (from < to) {
		uint64_t w = from / WORD_BITS;
		unsigned hi = word_stop(from, to);
		/* hi == 64 means bit 64w+63 pairs with 64(w+1) <= to, which exists. */
		uint64_t next = hi == WORD_BITS ? bits[w + 1] : 0;
		uint64_t diff = bits[w] ^ (bits[w] >> 1 | next << (WORD_BITS - 1));

		count += __builtin_popcountll(diff & word_mask(from % WORD_BITS, hi));
		from = w * WORD_BITS + hi;
	}
	return count;
}

/* The first i in [from, to) whose bit is not v, or to. */
static uint64_t bits_next_diff(const uint64_t *bits, uint64_t from, uint64_t to, bool v)
{
	uint64_t flip = v ? ~UINT64_C(0) : 0;

	while (from < to) {
		uint64_t w = from / WORD_BITS;
		uint64_t x = (bits[w] ^ flip) & (~UINT64_C(0) << (from % WORD_BITS));

		if (x)
			return MIN(w * WORD_BITS + __builtin_ctzll(x), to);
		from = (w + 1) * WORD_BITS;
	}
	return to;
}

/*
 * Calls fn for each run of one state inside [from, to), from < to <= n: each run segment clipped, each
 * run of bits inside a bitmap. Runs are not merged across segments (sharemap_walk does that).
 */
static int for_each_piece(const struct sharemap *m, uint64_t from, uint64_t to, piece_fn fn, void *arg)
{
	for (size_t i = seg_index(m, from); from < to; i++) {
		const struct segment *s = &m->seg[i];
		uint64_t stop = MIN(to, seg_end(s));
		int r;

		if (!s->bits) {
			r = fn(from, stop - from, s->state, arg);
			if (r)
				return r;
		} else {
			uint64_t p = from - s->start, e = stop - s->start;

			while (p < e) {
				bool v = bit_get(s->bits, p);
				uint64_t q = bits_next_diff(s->bits, p, e, v);

				r = fn(s->start + p, q - p, v ? SHARE_PRIVATE : SHARE_SHARED, arg);
				if (r)
					return r;
				p = q;
			}
		}
		from = stop;
	}
	return 0;
}

static int reserve(struct sharemap *m, size_t need)
{
	struct segment *a;
	size_t cap;

	if (need <= m->cap)
		return 0;
	cap = MAX(need, m->cap * 2);
	a = reallocarray(m->seg, cap, sizeof(*a));
	if (!a)
		return -ENOMEM;
	m->seg = a;
	m->cap = cap;
	return 0;
}

/*
 * Gives back array room once the map has shrunk to a quarter of it, halving rather than fitting exactly
 * so that a set/unset pair around the threshold does not realloc every time. A failed shrink just keeps
 * the larger array.
 */
static void shrink(struct sharemap *m)
{
	struct segment *a;
	size_t cap;

	if (m->cap <= SEG_MIN_CAP || m->nseg > m->cap / 4)
		return;
	cap = MAX((size_t)SEG_MIN_CAP, m->nseg * 2);
	a = reallocarray(m->seg, cap, sizeof(*a));
	if (a) {
		m->seg = a;
		m->cap = cap;
	}
}

#ifndef NDEBUG
/*
 * Maps this small (the unit tests' random maps) are checked whole after every set, bitmaps bit by bit;
 * larger ones only around what the set rewrote, so that debug builds keep the cost of a set proportional
 * to what it changes.
 */
#define CHECK_ALL_MAX (6 * (uint64_t)SHAREMAP_CHUNK)

static void check_segment(const struct sharemap *m, size_t i, bool deep)
{
	const struct segment *s = &m->seg[i];

	assert(s->len > 0);
	assert(i > 0 || s->start == 0);
	if (i + 1 < m->nseg) {
		const struct segment *t = s + 1;

		assert(seg_end(s) == t->start);
		/* Two runs of one state side by side would be a missed merge. */
		assert(s->bits || t->bits || s->state != t->state);
	} else {
		assert(seg_end(s) == m->n);
	}
	if (!s->bits) {
		assert(valid_state(s->state));
		return;
	}
	assert(s->start % SHAREMAP_CHUNK == 0 && s->len == chunk_end(m, s->start) - s->start);
	/* Implies at least two runs: a bitmap is never uniform. */
	assert(want_bitmap(s->runs, s->len));
	if (deep) {
		assert(bits_transitions(s->bits, 0, s->len - 1) + 1 == s->runs);
		assert(s->len % WORD_BITS == 0 || !(s->bits[s->len / WORD_BITS] >> (s->len % WORD_BITS)));
	}
}

/* A chunk held as runs must not be cheaper as a bitmap; it holds no bitmap, so its segments are runs. */
static void check_chunk(const struct sharemap *m, uint64_t lo)
{
	uint64_t hi = chunk_end(m, lo);
	size_t i = seg_index(m, lo);

	if (!m->seg[i].bits)
		assert(!want_bitmap(seg_index(m, hi - 1) - i + 1, hi - lo));
}

/* Checks segments [from, to) and their links to both neighbours, and the chunks at lo0 and lo1. */
static void check_invariants(const struct sharemap *m, size_t from, size_t to, uint64_t lo0, uint64_t lo1)
{
	bool all = m->n <= CHECK_ALL_MAX;

	assert(m->nseg >= 1 && m->nseg <= m->cap);
	if (all) {
		size_t bytes = 0;

		for (size_t i = 0; i < m->nseg; i++) {
			check_segment(m, i, true);
			if (m->seg[i].bits)
				bytes += bitmap_size(m->seg[i].len);
		}
		assert(bytes == m->bitmap_bytes);
		for (uint64_t lo = 0; lo < m->n; lo = chunk_end(m, lo))
			check_chunk(m, lo);
		return;
	}
	for (size_t i = from > 0 ? from - 1 : 0; i < MIN(to + 1, m->nseg); i++)
		check_segment(m, i, false);
	check_chunk(m, lo0);
	check_chunk(m, lo1);
}
#else
static void check_invariants(const struct sharemap *m _unused_, size_t from _unused_, size_t to _unused_,
			     uint64_t lo0 _unused_, uint64_t lo1 _unused_)
{
}
#endif

int sharemap_new(uint64_t n, enum share_state initial, struct sharemap **ret)
{
	_cleanup_free_ struct sharemap *m = NULL;

	assert(ret);
	if (n == 0 || !valid_state(initial))
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->seg = calloc(SEG_MIN_CAP, sizeof(*m->seg));
	if (!m->seg)
		return -ENOMEM;
	m->cap = SEG_MIN_CAP;
	m->n = n;
	m->seg[0] = (struct segment){ .start = 0, .len = n, .state = initial };
	m->nseg = 1;
	check_invariants(m, 0, 1, 0, 0);
	*ret = TAKE_PTR(m);
	return 0;
}

struct sharemap *sharemap_free(struct sharemap *m)
{
	if (m) {
		for (size_t i = 0; i < m->nseg; i++)
			free(m->seg[i].bits);
		free(m->seg);
		free(m);
	}
	return NULL;
}

uint64_t sharemap_granules(const struct sharemap *m)
{
	return m->n;
}

/* One end chunk of a set: what it holds afterwards, decided before anything changes. */
struct chunk_plan {
	uint64_t lo, hi;	/* the chunk */
	uint64_t a, b;		/* the part of the set range inside it */
	uint64_t runs;		/* maximal runs inside the chunk once the set is done */
	uint64_t *old_bits;	/* its bitmap before the set, NULL if it was held as runs */
	uint64_t *bits;		/* its bitmap afterwards (old_bits or a new one), NULL if held as runs */
};

/* Only the pairs of neighbouring bits that touch [a, b) can change; inside it all become equal. */
static uint64_t runs_after_bitmap(const struct segment *s, uint64_t a, uint64_t b, bool v)
{
	uint64_t lo = a > 0 ? a - 1 : 0, hi = MIN(b, s->len - 1);
	uint64_t before = lo < hi ? bits_transitions(s->bits, lo, hi) : 0;
	uint64_t after = (a > 0 && bit_get(s->bits, a - 1) != v) + (b < s->len && bit_get(s->bits, b) != v);

	return s->runs - before + after;
}

/*
 * A chunk held as runs has only run segments in it, and neighbouring runs differ, so the runs on either
 * side of [a, b) are counted by two binary searches each; [a, b) adds one run, less a merge on each side.
 */
static uint64_t runs_after_runs(const struct sharemap *m, const struct chunk_plan *p, enum share_state state)
{
	uint64_t runs = 1;

	if (p->a > p->lo) {
		size_t i = seg_index(m, p->lo), j = seg_index(m, p->a - 1);

		runs += j - i + 1 - (m->seg[j].state == state);
	}
	if (p->b < p->hi) {
		size_t i = seg_index(m, p->b), j = seg_index(m, p->hi - 1);

		runs += j - i + 1 - (m->seg[i].state == state);
	}
	return runs;
}

static void plan_chunk(const struct sharemap *m, uint64_t a, uint64_t b, enum share_state state,
		       struct chunk_plan *p)
{
	const struct segment *s;

	p->lo = chunk_floor(a);
	p->hi = chunk_end(m, p->lo);
	p->a = a;
	p->b = b;
	/* A bitmap starts at its chunk, so the segment at lo is the bitmap if there is one. */
	s = &m->seg[seg_index(m, p->lo)];
	p->old_bits = s->bits;
	p->bits = NULL;
	if (s->bits)
		p->runs = runs_after_bitmap(s, a - p->lo, b - p->lo, state == SHARE_PRIVATE);
	else
		p->runs = runs_after_runs(m, p, state);
}

struct fill_ctx {
	uint64_t *bits;
	uint64_t lo;
};

static int fill_piece(uint64_t start, uint64_t len, enum share_state state, void *arg)
{
	struct fill_ctx *f = arg;

	if (state == SHARE_PRIVATE)
		bits_fill(f->bits, start - f->lo, start - f->lo + len, true);
	return 0;
}

/*
 * Picks the chunk's bitmap if it is to be one: the old one, updated only at commit, or a new one filled
 * now from the old contents plus the set, which leaves the map itself untouched.
 */
static int plan_bits(const struct sharemap *m, struct chunk_plan *p, enum share_state state)
{
	struct fill_ctx f = { .lo = p->lo };

	if (!want_bitmap(p->runs, p->hi - p->lo))
		return 0;
	if (p->old_bits) {
		p->bits = p->old_bits;
		return 0;
	}
	f.bits = calloc(bitmap_words(p->hi - p->lo), sizeof(uint64_t));
	if (!f.bits)
		return -ENOMEM;
	(void)for_each_piece(m, p->lo, p->hi, fill_piece, &f);
	bits_fill(f.bits, p->a - p->lo, p->b - p->lo, state == SHARE_PRIVATE);
	p->bits = f.bits;
	return 0;
}

struct emitter {
	struct segment *seg;
	size_t n;
};

/* Appends a segment, merging a run into a preceding run of the same state. */
static void emit(struct emitter *e, const struct segment *s)
{
	struct segment *last = e->n ? &e->seg[e->n - 1] : NULL;

	assert(!last || seg_end(last) == s->start);
	if (last && !last->bits && !s->bits && last->state == s->state) {
		last->len += s->len;
		return;
	}
	assert(e->n < EMIT_MAX);
	e->seg[e->n++] = *s;
}

static int emit_piece(uint64_t start, uint64_t len, enum share_state state, void *arg)
{
	emit(arg, &(struct segment){ .start = start, .len = len, .state = state });
	return 0;
}

/* Re-emits the current contents of [from, to) as runs. */
static void emit_old(const struct sharemap *m, struct emitter *e, uint64_t from, uint64_t to)
{
	if (from < to)
		(void)for_each_piece(m, from, to, emit_piece, e);
}

static void emit_chunk(const struct sharemap *m, struct emitter *e, const struct chunk_plan *p,
		       enum share_state state)
{
	if (p->bits) {
		emit(e, &(struct segment){ .start = p->lo, .len = p->hi - p->lo, .bits = p->bits,
					   .runs = (uint32_t)p->runs });
		return;
	}
	emit_old(m, e, p->lo, p->a);
	emit_piece(p->a, p->b - p->a, state, e);
	emit_old(m, e, p->b, p->hi);
}

static bool is_kept(const struct chunk_plan *p, size_t np, const uint64_t *bits)
{
	for (size_t i = 0; i < np; i++)
		if (p[i].bits && p[i].bits == bits)
			return true;
	return false;
}

int sharemap_set(struct sharemap *m, uint64_t start, uint64_t len, enum share_state state)
{
	/* ~8 KiB: bounded by EMIT_MAX, and a heap buffer would be one more way to fail. */
	struct segment buf[EMIT_MAX];
	struct emitter e = { .seg = buf };
	struct chunk_plan p[2] = {};
	size_t np, i0, i1, removed;
	uint64_t end;
	int r;

	if (!valid_state(state) || len == 0 || start >= m->n || len > m->n - start)
		return -EINVAL;
	end = start + len;

	/* Only the chunks of the first and the last granule can end up mixed: all between become state. */
	if (chunk_floor(start) == chunk_floor(end - 1)) {
		plan_chunk(m, start, end, state, &p[0]);
		np = 1;
	} else {
		plan_chunk(m, start, chunk_end(m, chunk_floor(start)), state, &p[0]);
		plan_chunk(m, chunk_floor(end - 1), end, state, &p[1]);
		np = 2;
	}
	for (size_t i = 0; i < np; i++) {
		r = plan_bits(m, &p[i], state);
		if (r < 0)
			goto fail;
	}

	/*
	 * Rewrite the segments from the one holding the first chunk's start to the one holding the last
	 * chunk's end, plus the run on either side if there is one: the new segments may merge with it.
	 */
	i0 = seg_index(m, p[0].lo);
	if (i0 > 0 && !m->seg[i0 - 1].bits)
		i0--;
	i1 = seg_index(m, p[np - 1].hi - 1);
	if (i1 + 1 < m->nseg && !m->seg[i1 + 1].bits)
		i1++;

	emit_old(m, &e, m->seg[i0].start, p[0].lo);
	emit_chunk(m, &e, &p[0], state);
	if (np == 2) {
		if (p[0].hi < p[1].lo)
			emit_piece(p[0].hi, p[1].lo - p[0].hi, state, &e);
		emit_chunk(m, &e, &p[1], state);
	}
	emit_old(m, &e, p[np - 1].hi, seg_end(&m->seg[i1]));

	removed = i1 - i0 + 1;
	r = reserve(m, m->nseg - removed + e.n);
	if (r < 0)
		goto fail;

	/* Nothing fails from here on. */
	for (size_t i = 0; i < np; i++) {
		if (!p[i].bits)
			continue;
		if (p[i].bits == p[i].old_bits)
			bits_fill(p[i].bits, p[i].a - p[i].lo, p[i].b - p[i].lo, state == SHARE_PRIVATE);
		else
			m->bitmap_bytes += bitmap_size(p[i].hi - p[i].lo);
	}
	for (size_t i = i0; i <= i1; i++) {
		struct segment *s = &m->seg[i];

		if (s->bits && !is_kept(p, np, s->bits)) {
			m->bitmap_bytes -= bitmap_size(s->len);
			free(s->bits);
		}
	}
	memmove(&m->seg[i0 + e.n], &m->seg[i1 + 1], (m->nseg - i1 - 1) * sizeof(*m->seg));
	memcpy(&m->seg[i0], buf, e.n * sizeof(*buf));
	m->nseg = m->nseg - removed + e.n;
	shrink(m);
	check_invariants(m, i0, i0 + e.n, p[0].lo, p[np - 1].lo);
	return 0;

fail:
	for (size_t i = 0; i < np; i++)
		if (p[i].bits != p[i].old_bits)
			free(p[i].bits);
	return r;
}

enum share_state sharemap_get(const struct sharemap *m, uint64_t granule)
{
	const struct segment *s;

	assert(granule < m->n);
	if (granule >= m->n)
		return SHARE_SHARED;
	s = &m->seg[seg_index(m, granule)];
	if (!s->bits)
		return s->state;
	return bit_get(s->bits, granule - s->start) ? SHARE_PRIVATE : SHARE_SHARED;
}

/* The part of the range past the end of the map counts as nothing. */
uint64_t sharemap_count_not(const struct sharemap *m, uint64_t start, uint64_t len, enum share_state state)
{
	uint64_t end, count = 0;

	assert(valid_state(state));
	if (start >= m->n)
		return 0;
	end = start + MIN(len, m->n - start);
	for (size_t i = seg_index(m, start); start < end; i++) {
		const struct segment *s = &m->seg[i];
		uint64_t stop = MIN(end, seg_end(s));

		if (!s->bits) {
			if (s->state != state)
				count += stop - start;
		} else {
			uint64_t priv = bits_count(s->bits, start - s->start, stop - s->start);

			count += state == SHARE_PRIVATE ? stop - start - priv : priv;
		}
		start = stop;
	}
	return count;
}

struct walk_merge {
	piece_fn fn;
	void *arg;
	uint64_t start, len;
	enum share_state state;
};

/* Holds back each run until the next one shows it cannot grow any more. */
static int walk_piece(uint64_t start, uint64_t len, enum share_state state, void *arg)
{
	struct walk_merge *w = arg;
	int r;

	if (w->len && w->state == state) {
		w->len += len;
		return 0;
	}
	if (w->len) {
		r = w->fn(w->start, w->len, w->state, w->arg);
		if (r)
			return r;
	}
	w->start = start;
	w->len = len;
	w->state = state;
	return 0;
}

/* An empty range walks nothing; one reaching past the end is -EINVAL. */
int sharemap_walk(const struct sharemap *m, uint64_t start, uint64_t len,
		  int (*fn)(uint64_t start, uint64_t len, enum share_state state, void *arg), void *arg)
{
	struct walk_merge w = { .fn = fn, .arg = arg };
	int r;

	if (start > m->n || len > m->n - start)
		return -EINVAL;
	if (len == 0)
		return 0;
	r = for_each_piece(m, start, start + len, walk_piece, &w);
	if (r)
		return r;
	return fn(w.start, w.len, w.state, arg);
}

size_t sharemap_bytes(const struct sharemap *m)
{
	return sizeof(*m) + m->cap * sizeof(*m->seg) + m->bitmap_bytes;
}

size_t sharemap_segments(const struct sharemap *m)
{
	return m->nseg;
}
