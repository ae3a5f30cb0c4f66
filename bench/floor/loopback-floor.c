// The machine's floor for a multifd-style RAM migration over loopback TCP: what a minimal C
// implementation with no user-space copy at all needs, to compare livemig (and QEMU) against.
//
// Source: RAM populated (every page written, a fraction R of them non-zero, spread evenly as
// `livemig run --normal-page-ratio R` spreads them). N sender threads each own 1/N of RAM; per
// 128-page packet they check every page against a zero page with memcmp and writev() a header
// (the normal pages' offsets) plus the normal pages straight from RAM.
// Destination: a separate process, RAM freshly mapped and never touched (as a user's destination
// is); N receiver threads read each header and readv() the normal pages straight into RAM.
// Zero pages cost the destination nothing: its fresh RAM already reads as zero.
//
// Between populating the source and the first send it waits IDLE_MS (default 200: the receivers
// are in accept()). livemig's bench passes several seconds: on a VM whose balloon reports free
// memory to the host, memory freed a moment ago (by the run before) is still backed by the host
// and cheap to touch, memory free for longer is not, and a livemig destination, which starts
// seconds after the run before it ended, always gets the latter (docs/benchmarks.md).
//
// Measured: from the first send until every receiver is done; CPU of both processes over that
// window (getrusage), and of each sender and receiver thread (its own CPU clock). The
// destination checks its RAM afterwards against what the source wrote (a function of the page
// number). The source is populated after the destination is forked: a fork write-protects
// every page table entry of the parent for copy-on-write, and on a VM that shadows the guest's
// page tables that pass made the senders' first kernel reads of the pages (writev) half as
// expensive as a migrating process's, whose RAM no fork has touched (docs/benchmarks.md).
//
//   cc -O2 -pthread -o loopback-floor loopback-floor.c
//   ./loopback-floor RAM_MIB CHANNELS RATIO [IDLE_MS]
// prints one line: total_ms=... src_cpu_ms=... dst_cpu_ms=... send_cpu_ms=A,B,...
// recv_cpu_ms=A,B,... normal_pages=... zero_pages=... sent_bytes=... verified=ok|BAD
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define PACKET_PAGES 128
#define MAX_CHANNELS 16

struct header {
  uint32_t normal; // UINT32_MAX ends the stream
  uint32_t zero;
  uint64_t offset[PACKET_PAGES];
};

static size_t ram_size;
static int channels;
static double ratio;
static uint8_t *src_ram, *dst_ram;
static int listeners[MAX_CHANNELS];
// Written by each channel's thread before it ends, read after pthread_join.
static double thread_cpu_ms[MAX_CHANNELS];
static size_t normal_count[MAX_CHANNELS], zero_count[MAX_CHANNELS], sent[MAX_CHANNELS];
static const uint8_t zero_page[PAGE];

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static double cpu_s(int who) {
  struct rusage r;
  getrusage(who, &r);
  return r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6;
}

static double thread_cpu_now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void die(const char *what) {
  perror(what);
  exit(2);
}

// Page i is normal when the running count floor(i * R) steps, as livemig's fill spreads them.
static int page_is_normal(size_t i) {
  return (size_t)((double)(i + 1) * ratio) > (size_t)((double)i * ratio);
}

// Word k of normal page i as the source writes it (zero pages are all zero).
static uint64_t normal_word(size_t i, int k) {
  return (i * 2654435761u + k + 1) | 1;
}

static void populate_source(void) {
  for (size_t i = 0; i < ram_size / PAGE; i++) {
    uint64_t *w = (uint64_t *)(src_ram + i * PAGE);
    if (page_is_normal(i)) {
      for (int k = 0; k < PAGE / 8; k++) w[k] = normal_word(i, k);
    } else {
      w[0] = 1;
      w[0] = 0;
    }
  }
}

static int destination_matches(void) {
  for (size_t i = 0; i < ram_size / PAGE; i++) {
    const uint64_t *w = (const uint64_t *)(dst_ram + i * PAGE);
    if (!page_is_normal(i)) {
      if (memcmp(w, zero_page, PAGE) != 0) return 0;
      continue;
    }
    for (int k = 0; k < PAGE / 8; k++)
      if (w[k] != normal_word(i, k)) return 0;
  }
  return 1;
}

// readv/writev until every iovec is done (they may move fewer bytes than asked).
static void move_all(int fd, struct iovec *iov, int count, int writing) {
  while (count > 0) {
    ssize_t n = writing ? writev(fd, iov, count) : readv(fd, iov, count);
    if (n <= 0) die(writing ? "writev" : "readv");
    while (n > 0) {
      if ((size_t)n >= iov->iov_len) {
        n -= iov->iov_len;
        iov++;
        count--;
      } else {
        iov->iov_base = (uint8_t *)iov->iov_base + n;
        iov->iov_len -= n;
        n = 0;
      }
    }
  }
}

static void *sender(void *arg) {
  long ch = (long)arg;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  socklen_t len = sizeof sa;
  if (getsockname(listeners[ch], (struct sockaddr *)&sa, &len)) die("getsockname");
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) die("connect");
  struct header h;
  struct iovec iov[PACKET_PAGES + 1];
  size_t share = ram_size / channels, lo = ch * share, hi = ch == channels - 1 ? ram_size : lo + share;
  for (size_t p = lo; p < hi; p += (size_t)PACKET_PAGES * PAGE) {
    uint32_t n = 0, z = 0;
    for (size_t q = p; q < p + (size_t)PACKET_PAGES * PAGE && q < hi; q += PAGE) {
      if (memcmp(src_ram + q, zero_page, PAGE) != 0) {
        h.offset[n] = q;
        iov[1 + n].iov_base = src_ram + q;
        iov[1 + n].iov_len = PAGE;
        n++;
      } else {
        z++;
      }
    }
    h.normal = n;
    h.zero = z;
    iov[0].iov_base = &h;
    iov[0].iov_len = sizeof h;
    move_all(fd, iov, n + 1, 1);
    normal_count[ch] += n;
    zero_count[ch] += z;
    sent[ch] += sizeof h + (size_t)n * PAGE;
  }
  h.normal = UINT32_MAX;
  struct iovec end = {&h, sizeof h};
  move_all(fd, &end, 1, 1);
  sent[ch] += sizeof h;
  close(fd);
  thread_cpu_ms[ch] = thread_cpu_now_ms();
  return NULL;
}

static void *receiver(void *arg) {
  long ch = (long)arg;
  int fd = accept(listeners[ch], NULL, NULL);
  if (fd < 0) die("accept");
  struct header h;
  struct iovec iov[PACKET_PAGES];
  for (;;) {
    struct iovec hv = {&h, sizeof h};
    move_all(fd, &hv, 1, 0);
    if (h.normal == UINT32_MAX) break;
    if (h.normal > PACKET_PAGES) die("bad header");
    for (uint32_t i = 0; i < h.normal; i++) {
      if (h.offset[i] % PAGE || h.offset[i] >= ram_size) die("bad offset");
      iov[i].iov_base = dst_ram + h.offset[i];
      iov[i].iov_len = PAGE;
    }
    if (h.normal) move_all(fd, iov, h.normal, 0);
  }
  close(fd);
  thread_cpu_ms[ch] = thread_cpu_now_ms();
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 4 && argc != 5) {
    fprintf(stderr, "usage: %s RAM_MIB CHANNELS RATIO [IDLE_MS]\n", argv[0]);
    return 2;
  }
  ram_size = (size_t)atol(argv[1]) << 20;
  channels = atoi(argv[2]);
  ratio = atof(argv[3]);
  long idle_ms = argc == 5 ? atol(argv[4]) : 200;
  if (ram_size == 0 || ram_size % ((size_t)PACKET_PAGES * PAGE) || channels < 1 ||
      channels > MAX_CHANNELS || ratio < 0 || ratio > 1 || idle_ms < 0 || idle_ms > 600000) {
    fprintf(stderr,
            "bad arguments: RAM_MIB a multiple of 512 KiB, CHANNELS 1..%d, RATIO 0..1, "
            "IDLE_MS 0..600000\n",
            MAX_CHANNELS);
    return 2;
  }

  // Private anonymous memory, as a guest's; populated (as --mem-prealloc) once the destination
  // is forked, so that no fork touches its page table entries (see the top).
  src_ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (src_ram == MAP_FAILED) die("mmap source");
  for (int c = 0; c < channels; c++) {
    listeners[c] = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(listeners[c], (struct sockaddr *)&sa, sizeof sa) || listen(listeners[c], 1))
      die("listen");
  }

  int ready[2], report[2];
  if (pipe(ready) || pipe(report)) die("pipe");
  pid_t pid = fork();
  if (pid == 0) {
    dst_ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (dst_ram == MAP_FAILED) die("mmap destination");
    pthread_t t[MAX_CHANNELS];
    double c0 = cpu_s(RUSAGE_SELF);
    for (long c = 0; c < channels; c++) pthread_create(&t[c], NULL, receiver, (void *)c);
    if (write(ready[1], "r", 1) != 1) die("write");
    for (int c = 0; c < channels; c++) pthread_join(t[c], NULL);
    double done = now_s(), cpu = cpu_s(RUSAGE_SELF) - c0;
    int ok = destination_matches();
    char line[1024];
    int n = snprintf(line, sizeof line, "%.6f %.6f %d", done, cpu, ok);
    for (int c = 0; c < channels; c++)
      n += snprintf(line + n, sizeof line - n, " %.1f", thread_cpu_ms[c]);
    if (write(report[1], line, n) != n) die("write");
    _exit(0);
  }
  char c;
  if (read(ready[0], &c, 1) != 1) die("read");
  populate_source();
  // The receivers are in accept() by now; the memory freed before this run ages as it would
  // before a livemig destination's first touch (see the top).
  struct timespec idle = {idle_ms / 1000, (idle_ms % 1000) * 1000000};
  nanosleep(&idle, NULL);

  double t0 = now_s(), c0 = cpu_s(RUSAGE_SELF);
  pthread_t t[MAX_CHANNELS];
  for (long ch = 0; ch < channels; ch++) pthread_create(&t[ch], NULL, sender, (void *)ch);
  for (int ch = 0; ch < channels; ch++) pthread_join(t[ch], NULL);
  double src_cpu = cpu_s(RUSAGE_SELF) - c0;
  char line[1024] = {0};
  if (read(report[0], line, sizeof line - 1) <= 0) die("read report");
  waitpid(pid, NULL, 0);
  double done, dst_cpu;
  int ok, at;
  if (sscanf(line, "%lf %lf %d%n", &done, &dst_cpu, &ok, &at) != 3) die("report");
  size_t normal = 0, zero = 0, bytes = 0;
  printf("total_ms=%.1f src_cpu_ms=%.1f dst_cpu_ms=%.1f send_cpu_ms=", (done - t0) * 1e3,
         src_cpu * 1e3, dst_cpu * 1e3);
  for (int ch = 0; ch < channels; ch++) {
    printf("%s%.1f", ch ? "," : "", thread_cpu_ms[ch]);
    normal += normal_count[ch];
    zero += zero_count[ch];
    bytes += sent[ch];
  }
  // The receivers' CPU, as the destination reported it after its three fields.
  printf(" recv_cpu_ms=");
  for (int ch = 0; ch < channels; ch++) {
    double ms;
    int used;
    if (sscanf(line + at, " %lf%n", &ms, &used) != 1) die("report");
    at += used;
    printf("%s%.1f", ch ? "," : "", ms);
  }
  printf(" normal_pages=%zu zero_pages=%zu sent_bytes=%zu verified=%s\n", normal, zero, bytes,
         ok ? "ok" : "BAD");
  return ok ? 0 : 1;
}
