/*
 * fuzz_safetensors.c: libFuzzer target for the safetensors reader (ats_safetensors_open,
 * ats_array_read_rows), asking for the tensor "x"; the checks are in fuzz_array.h.
 * Run: make fuzz (builds with clang -fsanitize=fuzzer,address,undefined; seeds in
 * tests/fuzz/corpus/safetensors).
 */
#include "fuzz_array.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int parse(struct ats_array *a, const char *name) {
    return ats_safetensors_parse(a, name, "x");
}

static int open_x(struct ats_array **a, const char *path) {
    return ats_safetensors_open(a, path, "x");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_array_input(data, size, parse, open_x);
    return 0;
}
