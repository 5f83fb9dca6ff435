/* SPDX-License-Identifier: MIT */
/*
 * fuzz: what every fuzz target of tests/fuzz/ provides, and what replay-main.c calls.
 *
 * A target is one LLVMFuzzerTestOneInput. Built with clang and -fsanitize=fuzzer (-Dfuzzing=true) it is
 * a libFuzzer binary; built by the normal build it is linked with replay-main.c, a plain main() that
 * runs every file of a corpus through it, so the checked-in corpus and every crash reproducer under
 * crashes/ are replayed by every build, under ASan too.
 *
 * Seed checks: a corpus file named op-NAME[-anything], event-NAME[-anything] or reply-NAME[-anything]
 * is a seed that must do what its name says (the codec decodes it as that op's args, that event, or that
 * op's reply; the daemon answers that op with a result, or sends that event). fuzz_seed_check() runs one
 * such file and says whether it did; fuzz_seed_check_done() says whether every op and event (and, for
 * the codec, every reply) had a seed that passed. A target that rejected everything at byte 0 would fail
 * these, however long it ran.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gmem-proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 0 when the seed named name (a basename) does what its name promises; otherwise -1 with why filled. */
int fuzz_seed_check(const char *name, const uint8_t *data, size_t size, char *why, size_t whylen);
/* 0 when every op and every event had a seed that passed; otherwise -1, with what is missing printed. */
int fuzz_seed_check_done(void);

/* Seed names: the index of the longest name (of n, read through get) that follows prefix in base and is
 * followed by '.', '-' or the end; -1 if none. "op-create.json" names op "create". */
static inline int fuzz_match_name(const char *base, const char *prefix, int n, const char *(*get)(int))
{
	size_t pl = strlen(prefix);
	int best = -1;
	size_t best_len = 0;

	if (strncmp(base, prefix, pl) != 0)
		return -1;
	for (int i = 0; i < n; i++) {
		const char *nm = get(i);
		size_t l = strlen(nm);
		if (strncmp(base + pl, nm, l) != 0)
			continue; /* base is at least pl + l long from here on */
		char next = base[pl + l];
		if ((next == '.' || next == '-' || next == '\0') && l > best_len) {
			best = i;
			best_len = l;
		}
	}
	return best;
}

static inline const char *fuzz_op_name(int i)
{
	return gmem_ops[i].name;
}

static inline const char *fuzz_event_name(int i)
{
	return gmem_events[i].name;
}
