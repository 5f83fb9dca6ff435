/* SPDX-License-Identifier: MIT */
/*
 * mutate: a structure-aware mutator for fuzz-requests inputs (records of fuzz-requests.c, most of them a
 * client slot followed by one JSON request). The libFuzzer build calls it from LLVMFuzzerCustomMutator.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Mutates the input in data[0..size) in place into at most max bytes, driven by seed (the same seed, the
 * same mutation). Return: the new size, or 0 when it made nothing (the caller mutates bytes instead). */
size_t fuzz_mutate_requests(uint8_t *data, size_t size, size_t max, unsigned seed);
