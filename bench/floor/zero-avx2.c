/* The zero check's yardstick for `npm run bench:zero`: a C loop that ORs 128 bytes at a time with
 * AVX2 and stops at the first non-zero byte, per 4 KiB page, over SIZE bytes of touched zero
 * memory. It stays up between runs, so that the bench can interleave its runs with livemig's in
 * one warm process: each line read from stdin starts a run, and the run prints one line, the
 * milliseconds it took. It exits at the end of its input.
 *
 *   zero-avx2 SIZE_BYTES
 */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static int page_is_zero(const unsigned char *p) {
  for (size_t i = 0; i < 4096; i += 128) {
    __m256i a = _mm256_or_si256(_mm256_load_si256((const __m256i *)(p + i)),
                                _mm256_load_si256((const __m256i *)(p + i + 32)));
    __m256i b = _mm256_or_si256(_mm256_load_si256((const __m256i *)(p + i + 64)),
                                _mm256_load_si256((const __m256i *)(p + i + 96)));
    a = _mm256_or_si256(a, b);
    if (!_mm256_testz_si256(a, a)) return 0;
  }
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s SIZE_BYTES (then one line on stdin per run)\n", argv[0]);
    return 2;
  }
  size_t size = strtoull(argv[1], NULL, 10) & ~(size_t)4095;
  unsigned char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  /* Touch every page with a write, as livemig's bench preallocates its RAM: resident zeros. */
  for (size_t o = 0; o < size; o += 4096) m[o] = 1;
  for (size_t o = 0; o < size; o += 4096) m[o] = 0;
  char line[64];
  while (fgets(line, sizeof line, stdin) != NULL) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    size_t zeros = 0;
    for (size_t o = 0; o < size; o += 4096) zeros += page_is_zero(m + o);
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (zeros != size / 4096) return 3;
    printf("%.3f\n", (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6);
    fflush(stdout);
  }
  return 0;
}
