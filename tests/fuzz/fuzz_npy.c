/*
 * fuzz_npy.c: libFuzzer target for the .npy reader (ats_npy_open, ats_array_read_rows); the
 * checks are in fuzz_array.h.
 * Run: make fuzz (builds with clang -fsanitize=fuzzer,address,undefined; seeds in
 * tests/fuzz/corpus/npy).
 */
#include "fuzz_array.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int parse(struct ats_array *a, const char *name) {
    return ats_npy_parse(a, name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_array_input(data, size, parse, ats_npy_open);
    return 0;
}
