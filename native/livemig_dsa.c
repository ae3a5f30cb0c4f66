// livemig's native part for real Intel DSA work queues: only what JavaScript cannot do.
//
//   cpu()                       CPUID leaf 7: MOVDIR64B (ECX[28]), ENQCMD (ECX[29]), WAITPKG (ECX[5])
//   address(view)               the virtual address of a typed array's first byte (a view over a
//                               SharedArrayBuffer: its memory never moves)
//   mapPortal(fd)               mmap the 4 KiB submission portal of an opened /dev/dsa/wqX.Y
//                               (PROT_WRITE, MAP_SHARED | MAP_POPULATE); a handle, or -errno
//   unmapPortal(handle)         0, or -EBADF when it is not a live portal handle
//   adoptFd(fd)                 the addon owns an opened WQ node from now on: a handle
//   closeFd(handle)             close it (0, or -EBADF)
//   writeFd(handle, view, off, len)
//                               write(2) of view[off, off+len) on the adopted fd: bytes, or -errno
//   pollFds(handles, n, timeoutUs, revents)
//                               ppoll(2) for POLLIN|POLLPRI on adopted fds (the kernel reports a
//                               WQ's software error as readable); revents[i] per handle (POLLNVAL
//                               for a closed one); the number with events
//   submit(handle, op, desc, tries)
//                               op 0: ENQCMD (shared WQ), retried while ZF says "not accepted",
//                               up to `tries` times; op 1: MOVDIR64B (dedicated WQ, posted).
//                               sfence before each; the portal offset rotates by 64 bytes per
//                               submission within the page, as Intel's libraries do.
//                               Returns 1 + refusals when accepted, 0 when refused `tries` times.
//                               Handles are checked and used under a lock that release takes:
//                               a closed or stale handle throws EBADF, never touches memory.
//   waitAny(view, offsets, n, timeoutUs, method, firstSleepUs)
//                               wait until one of the status bytes view[offsets[i]] is non-zero:
//                               method 2 (sleep): nanosleep through firstSleepUs (the expected
//                               wait), then look in growing steps (5 µs .. 1 ms); 1 (UMWAIT):
//                               UMONITOR/UMWAIT (C0.2) in ~10 µs slices; 0 (pause): a pause loop
//                               that backs off to short sleeps. (true/false: 1/0, as in ABI 1.)
//                               Returns i, or -1 on timeout.
//                               Called by the dsa_completion worker thread, never the main thread.
//   faultAddress()              the address of a reserved PROT_NONE page: any access faults (the
//                               selftest's deliberately faulting descriptor)
//   testing.peek/poke/movdir64b test-only (test/accel/native-testing.ts, not in the public API): read
//                               and write bytes at an address with process_vm_readv/writev (a bad
//                               address gives a short count, not a crash), and MOVDIR64B into
//                               ordinary memory.
//
// The descriptor write() path of kernels >= 6.10 needs nothing native: the driver calls
// fs.writeSync on the opened node. The instructions are emitted as .byte sequences (the
// encodings of idxd-config's and DPDK's headers), so this builds without -menqcmd/-mmovdir64b,
// and nothing executes an instruction CPUID does not report.

#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

#include <cpuid.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

// ---- CPU features ----

static struct {
  int movdir64b, enqcmd, waitpkg, movdiri;
  unsigned max_leaf;
} cpu;
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;

static void cpu_init(void) {
  unsigned a = 0, b = 0, c = 0, d = 0;
  cpu.max_leaf = __get_cpuid_max(0, 0);
  if (cpu.max_leaf >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    cpu.waitpkg = (c >> 5) & 1;
    cpu.movdiri = (c >> 27) & 1;
    cpu.movdir64b = (c >> 28) & 1;
    cpu.enqcmd = (c >> 29) & 1;
  }
}

// ---- Instructions ----

static inline void sfence(void) { __asm__ volatile("sfence" ::: "memory"); }
static inline void cpu_pause(void) { __asm__ volatile("pause" ::: "memory"); }
static inline uint64_t rdtsc(void) {
  uint32_t lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64_t)hi << 32) | lo;
}

// MOVDIR64B (%rdx), %rax: 66 0F 38 F8 /r. 64-byte direct store; destination 64-byte aligned.
static inline void movdir64b(volatile void *dst, const void *src) {
  __asm__ volatile(".byte 0x66, 0x0f, 0x38, 0xf8, 0x02" : : "a"(dst), "d"(src) : "memory");
}

// ENQCMD (%rdx), %rax: F2 0F 38 F8 /r. Non-posted; ZF=1 means the WQ did not accept it.
static inline int enqcmd(volatile void *dst, const void *src) {
  uint8_t retry;
  __asm__ volatile(".byte 0xf2, 0x0f, 0x38, 0xf8, 0x02\n\tsetz %0"
                   : "=r"(retry)
                   : "a"(dst), "d"(src)
                   : "memory", "cc");
  return retry;
}

// UMONITOR %rax: F3 (REX.W) 0F AE /6.
static inline void umonitor(volatile void *addr) {
  __asm__ volatile(".byte 0xf3, 0x48, 0x0f, 0xae, 0xf0" : : "a"(addr) : "memory");
}

// UMWAIT %ecx: F2 (REX.W) 0F AE /6; deadline (TSC) in EDX:EAX. state 0 = C0.2, 1 = C0.1.
static inline void umwait(uint32_t state, uint64_t deadline) {
  __asm__ volatile(".byte 0xf2, 0x48, 0x0f, 0xae, 0xf1"
                   :
                   : "c"(state), "a"((uint32_t)deadline), "d"((uint32_t)(deadline >> 32))
                   : "memory", "cc");
}

// ---- Helpers ----

#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      napi_throw_error(env, "ELIVEMIGNAPI", "N-API call failed: " #call); \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

static napi_value num(napi_env env, double v) {
  napi_value r;
  napi_create_double(env, v, &r);
  return r;
}

static napi_value boolean(napi_env env, int v) {
  napi_value r;
  napi_get_boolean(env, v != 0, &r);
  return r;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
  if (argc < want) {
    napi_throw_type_error(env, NULL, "missing arguments");
    return 0;
  }
  return 1;
}

static int get_double(napi_env env, napi_value v, double *out) {
  if (napi_get_value_double(env, v, out) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a number");
    return 0;
  }
  return 1;
}

static int get_int(napi_env env, napi_value v, int64_t *out) {
  if (napi_get_value_int64(env, v, out) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected an integer");
    return 0;
  }
  return 1;
}

/** Data pointer and byte length of a typed array (over an ArrayBuffer or SharedArrayBuffer). */
static int get_view(napi_env env, napi_value v, uint8_t **data, size_t *bytes) {
  bool is = false;
  napi_is_typedarray(env, v, &is);
  if (!is) {
    napi_throw_type_error(env, NULL, "expected a typed array");
    return 0;
  }
  napi_typedarray_type type;
  size_t length, offset;
  void *p;
  if (napi_get_typedarray_info(env, v, &type, &length, &p, NULL, &offset) != napi_ok) {
    napi_throw_type_error(env, NULL, "cannot read the typed array");
    return 0;
  }
  size_t el = 1;
  switch (type) {
    case napi_int16_array:
    case napi_uint16_array:
      el = 2;
      break;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array:
      el = 4;
      break;
    case napi_float64_array:
    case napi_bigint64_array:
    case napi_biguint64_array:
      el = 8;
      break;
    default:
      el = 1;
  }
  *data = (uint8_t *)p;
  *bytes = length * el;
  return 1;
}

// ---- cpu() ----

static napi_value js_cpu(napi_env env, napi_callback_info info) {
  (void)info;
  pthread_once(&cpu_once, cpu_init);
  napi_value o;
  CHECK(napi_create_object(env, &o));
  CHECK(napi_set_named_property(env, o, "movdir64b", boolean(env, cpu.movdir64b)));
  CHECK(napi_set_named_property(env, o, "enqcmd", boolean(env, cpu.enqcmd)));
  CHECK(napi_set_named_property(env, o, "waitpkg", boolean(env, cpu.waitpkg)));
  CHECK(napi_set_named_property(env, o, "movdiri", boolean(env, cpu.movdiri)));
  CHECK(napi_set_named_property(env, o, "maxLeaf", num(env, cpu.max_leaf)));
  return o;
}

// ---- address(view) ----

static napi_value js_address(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  uint8_t *data;
  size_t bytes;
  if (!get_view(env, argv[0], &data, &bytes)) return NULL;
  return num(env, (double)(uintptr_t)data);
}

// ---- Handles: portals and WQ file descriptors ----
//
// Every use of a portal mapping or of a WQ fd goes through a handle and happens under
// `handle_lock` (read side), and releasing one takes the write side: a thread that still
// submits when the work queue is closed either finishes before the portal is unmapped or the fd
// closed, or is refused with EBADF. It never stores into an unmapped page or writes descriptors
// into an fd number the process has since reused. A handle carries a generation, so a stale one
// stays refused after its table entry is reused.

#define MAX_HANDLES 64
#define PORTAL_SIZE 4096
#define PORTAL_STRIDE 64

struct entry {
  uint32_t gen;    // bumped each time the entry is taken
  int fd;          // an adopted WQ fd (closed on release), or -1
  uint8_t *base;   // a mapped portal, or NULL
  uint32_t next;   // portal offset rotation, __atomic_fetch_add under the read lock
};
static struct entry entries[MAX_HANDLES];
static pthread_rwlock_t handle_lock;
static pthread_once_t handle_once = PTHREAD_ONCE_INIT;

static void handle_init(void) {
  pthread_rwlockattr_t a;
  pthread_rwlockattr_init(&a);
  // A release waits for the submitters inside, but new ones queue behind it.
  pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&handle_lock, &a);
  pthread_rwlockattr_destroy(&a);
  for (int i = 0; i < MAX_HANDLES; i++) entries[i].fd = -1;
}

static int entry_free(const struct entry *e) { return !e->base && e->fd < 0; }

/** Take a free entry for `base` or `fd`: a handle (gen * MAX_HANDLES + index), or -EMFILE. */
static int64_t handle_take(uint8_t *base, int fd) {
  pthread_once(&handle_once, handle_init);
  int64_t h = -EMFILE;
  pthread_rwlock_wrlock(&handle_lock);
  for (int i = 0; i < MAX_HANDLES; i++) {
    struct entry *e = &entries[i];
    if (!entry_free(e)) continue;
    e->gen = e->gen >= (1u << 23) ? 1 : e->gen + 1;
    e->base = base;
    e->fd = fd;
    e->next = 0;
    h = (int64_t)e->gen * MAX_HANDLES + i;
    break;
  }
  pthread_rwlock_unlock(&handle_lock);
  return h;
}

/** The live entry of `h`, or NULL. Called with the lock held. */
static struct entry *handle_entry(int64_t h) {
  if (h < MAX_HANDLES || h >= (int64_t)(1u << 23) * MAX_HANDLES + MAX_HANDLES) return NULL;
  struct entry *e = &entries[h % MAX_HANDLES];
  if (e->gen != (uint32_t)(h / MAX_HANDLES) || entry_free(e)) return NULL;
  return e;
}

/** Throw EBADF for a handle that is not (or no longer) live, saying which. */
static void throw_closed(napi_env env, const char *kind, int64_t h) {
  char msg[200];
  if (h < MAX_HANDLES)
    snprintf(msg, sizeof msg, "%" PRId64 " is not a %s handle of the livemig addon", h, kind);
  else
    snprintf(msg, sizeof msg,
             "%s handle %" PRId64
             " is closed: its work queue was closed while this thread still used it",
             kind, h);
  napi_throw_error(env, "EBADF", msg);
}

/** Release `h` (wanting a portal or an fd): waits for every user inside, then unmaps/closes. */
static int handle_release(int64_t h, int portal) {
  pthread_once(&handle_once, handle_init);
  pthread_rwlock_wrlock(&handle_lock);
  struct entry *e = handle_entry(h);
  uint8_t *base = NULL;
  int fd = -1;
  if (e && (portal ? e->base != NULL : e->fd >= 0)) {
    base = e->base;
    fd = e->fd;
    e->base = NULL;
    e->fd = -1;
  }
  pthread_rwlock_unlock(&handle_lock);
  if (base) munmap(base, PORTAL_SIZE);
  if (fd >= 0) close(fd);
  return base || fd >= 0 ? 0 : -EBADF;
}

/** The one integer argument of a call. */
static int get_one_int(napi_env env, napi_callback_info info, int64_t *out) {
  napi_value argv[1];
  return get_args(env, info, 1, argv) && get_int(env, argv[0], out);
}

static napi_value js_map_portal(napi_env env, napi_callback_info info) {
  int64_t fd;
  if (!get_one_int(env, info, &fd)) return NULL;
  void *p = mmap(NULL, PORTAL_SIZE, PROT_WRITE, MAP_SHARED | MAP_POPULATE, (int)fd, 0);
  if (p == MAP_FAILED) return num(env, -errno);
  int64_t h = handle_take(p, -1);
  if (h < 0) munmap(p, PORTAL_SIZE);
  return num(env, (double)h);
}

static napi_value js_unmap_portal(napi_env env, napi_callback_info info) {
  int64_t h;
  return get_one_int(env, info, &h) ? num(env, handle_release(h, 1)) : NULL;
}

static napi_value js_adopt_fd(napi_env env, napi_callback_info info) {
  int64_t fd;
  if (!get_one_int(env, info, &fd)) return NULL;
  if (fd < 0 || fd > INT32_MAX) {
    napi_throw_range_error(env, NULL, "an fd is a non-negative integer");
    return NULL;
  }
  return num(env, (double)handle_take(NULL, (int)fd));
}

static napi_value js_close_fd(napi_env env, napi_callback_info info) {
  int64_t h;
  return get_one_int(env, info, &h) ? num(env, handle_release(h, 0)) : NULL;
}

static napi_value js_write_fd(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  int64_t h, off, len;
  uint8_t *src;
  size_t bytes;
  if (!get_int(env, argv[0], &h) || !get_view(env, argv[1], &src, &bytes) ||
      !get_int(env, argv[2], &off) || !get_int(env, argv[3], &len))
    return NULL;
  if (off < 0 || len < 0 || (uint64_t)off + (uint64_t)len > bytes) {
    napi_throw_range_error(env, NULL, "offset and length must lie inside the view");
    return NULL;
  }
  pthread_once(&handle_once, handle_init);
  pthread_rwlock_rdlock(&handle_lock);
  struct entry *e = handle_entry(h);
  if (!e || e->fd < 0) {
    pthread_rwlock_unlock(&handle_lock);
    throw_closed(env, "work queue fd", h);
    return NULL;
  }
  ssize_t r = write(e->fd, src + off, (size_t)len);
  int err = errno;
  pthread_rwlock_unlock(&handle_lock);
  return num(env, r < 0 ? -(double)err : (double)r);
}

static napi_value js_poll_fds(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  uint8_t *hp, *rp;
  size_t hbytes, rbytes;
  int64_t n;
  double timeout_us;
  if (!get_view(env, argv[0], &hp, &hbytes) || !get_int(env, argv[1], &n) ||
      !get_double(env, argv[2], &timeout_us) || !get_view(env, argv[3], &rp, &rbytes))
    return NULL;
  if (n < 0 || n > MAX_HANDLES || (size_t)n * 4 > hbytes || (size_t)n * 4 > rbytes) {
    napi_throw_range_error(env, NULL, "n must fit the handles and revents arrays (at most 64)");
    return NULL;
  }
  const int32_t *hs = (const int32_t *)hp;
  int32_t *rev = (int32_t *)rp;
  struct pollfd fds[MAX_HANDLES];
  pthread_once(&handle_once, handle_init);
  pthread_rwlock_rdlock(&handle_lock);
  for (int64_t i = 0; i < n; i++) {
    struct entry *e = handle_entry(hs[i]);
    fds[i].fd = e && e->fd >= 0 ? e->fd : -1;
    fds[i].events = POLLIN | POLLPRI;
    fds[i].revents = 0;
  }
  int64_t ns = timeout_us > 0 ? (int64_t)(timeout_us * 1000) : 0;
  struct timespec ts = {ns / 1000000000, ns % 1000000000};
  int r = ppoll(fds, (nfds_t)n, &ts, NULL);
  for (int64_t i = 0; i < n; i++) rev[i] = fds[i].fd < 0 ? POLLNVAL : fds[i].revents;
  pthread_rwlock_unlock(&handle_lock);
  int ready = 0;
  for (int64_t i = 0; i < n; i++) ready += rev[i] != 0;
  return num(env, r < 0 && ready == 0 ? -(double)errno : ready);
}

static napi_value js_submit(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  int64_t h, op, tries;
  if (!get_int(env, argv[0], &h) || !get_int(env, argv[1], &op) || !get_int(env, argv[3], &tries))
    return NULL;
  uint8_t *src;
  size_t bytes;
  if (!get_view(env, argv[2], &src, &bytes)) return NULL;
  if (bytes < 64) {
    napi_throw_range_error(env, NULL, "a descriptor is 64 bytes");
    return NULL;
  }
  pthread_once(&cpu_once, cpu_init);
  pthread_once(&handle_once, handle_init);
  uint8_t desc[64] __attribute__((aligned(64)));
  memcpy(desc, src, 64);
  if (tries < 1) tries = 1;
  // Under the read lock from the check to the last store: the portal stays mapped meanwhile.
  pthread_rwlock_rdlock(&handle_lock);
  struct entry *pt = handle_entry(h);
  if (!pt || !pt->base) {
    pthread_rwlock_unlock(&handle_lock);
    throw_closed(env, "portal", h);
    return NULL;
  }
  if ((op == 0 && !cpu.enqcmd) || (op == 1 && !cpu.movdir64b) || op < 0 || op > 1) {
    pthread_rwlock_unlock(&handle_lock);
    napi_throw_error(env, "ENOTSUP",
                     op == 0   ? "this CPU does not support ENQCMD"
                     : op == 1 ? "this CPU does not support MOVDIR64B"
                               : "unknown submission instruction");
    return NULL;
  }
  double result = 0;
  if (op == 1) {
    uint32_t k = __atomic_fetch_add(&pt->next, 1, __ATOMIC_RELAXED);
    sfence();
    movdir64b(pt->base + (k % (PORTAL_SIZE / PORTAL_STRIDE)) * PORTAL_STRIDE, desc);
    result = 1;
  } else {
    for (int64_t i = 0; i < tries; i++) {
      uint32_t k = __atomic_fetch_add(&pt->next, 1, __ATOMIC_RELAXED);
      sfence();
      if (!enqcmd(pt->base + (k % (PORTAL_SIZE / PORTAL_STRIDE)) * PORTAL_STRIDE, desc)) {
        result = 1 + (double)i;
        break;
      }
      cpu_pause();
    }
  }
  pthread_rwlock_unlock(&handle_lock);
  return num(env, result);
}

// ---- waitAny(view, offsets, n, timeoutUs, method, firstSleepUs) ----

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static __thread int slack_set;

/** Sleep `ns` (a short timer slack, set once per thread). */
static void sleep_ns(int64_t ns) {
  if (!slack_set) {
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    slack_set = 1;
  }
  struct timespec ts = {ns / 1000000000, ns % 1000000000};
  nanosleep(&ts, NULL);
}

enum { WAIT_PAUSE = 0, WAIT_UMWAIT = 1, WAIT_SLEEP = 2 };
#define SLEEP_STEP_MIN_NS 5000
#define SLEEP_STEP_MAX_NS 1000000

static napi_value js_wait_any(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  size_t argc = 6;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 5) {
    napi_throw_type_error(env, NULL, "missing arguments");
    return NULL;
  }
  uint8_t *data;
  size_t bytes;
  if (!get_view(env, argv[0], &data, &bytes)) return NULL;
  uint8_t *offp;
  size_t offbytes;
  if (!get_view(env, argv[1], &offp, &offbytes)) return NULL;
  int64_t n;
  double timeout_us;
  if (!get_int(env, argv[2], &n) || !get_double(env, argv[3], &timeout_us)) return NULL;
  // The method: a number (WAIT_*), or the older boolean (true: UMWAIT, false: pause).
  int64_t method = WAIT_PAUSE;
  bool as_bool = false;
  if (napi_get_value_bool(env, argv[4], &as_bool) == napi_ok) method = as_bool ? WAIT_UMWAIT : 0;
  else if (!get_int(env, argv[4], &method)) return NULL;
  if (method < WAIT_PAUSE || method > WAIT_SLEEP) {
    napi_throw_range_error(env, NULL, "the wait method is 0 (pause), 1 (UMWAIT) or 2 (sleep)");
    return NULL;
  }
  double first_us = 0;
  if (argc >= 6 && !get_double(env, argv[5], &first_us)) return NULL;
  const int32_t *off = (const int32_t *)offp;
  if (n < 1 || (size_t)n * 4 > offbytes) {
    napi_throw_range_error(env, NULL, "n must be between 1 and the number of offsets");
    return NULL;
  }
  for (int64_t i = 0; i < n; i++) {
    if (off[i] < 0 || (size_t)off[i] >= bytes) {
      napi_throw_range_error(env, NULL, "a status offset is outside the view");
      return NULL;
    }
  }
  pthread_once(&cpu_once, cpu_init);
  if (method == WAIT_UMWAIT && !cpu.waitpkg) {
    napi_throw_error(env, "ENOTSUP", "this CPU does not support UMONITOR/UMWAIT (WAITPKG)");
    return NULL;
  }
  volatile uint8_t *base = data;
  const int64_t start = now_ns();
  const int64_t deadline = start + (int64_t)(timeout_us * 1000);
  uint32_t spins = 1;
  int64_t backoff_ns = 2000;
  // WAIT_SLEEP: first sleep through the expected wait, then look in steps of a quarter of it
  // (5 µs .. 1 ms), growing by half each time: a late record costs few wake-ups.
  int64_t first_ns = first_us > 0 ? (int64_t)(first_us * 1000) : 0;
  int64_t step_ns = first_ns / 4;
  if (step_ns < SLEEP_STEP_MIN_NS) step_ns = SLEEP_STEP_MIN_NS;
  if (step_ns > SLEEP_STEP_MAX_NS) step_ns = SLEEP_STEP_MAX_NS;
  for (;;) {
    for (int64_t i = 0; i < n; i++)
      if (base[off[i]]) return num(env, (double)i);
    const int64_t t = now_ns();
    if (t >= deadline) return num(env, -1);
    const int64_t left = deadline - t;
    if (method == WAIT_SLEEP) {
      int64_t ns = first_ns > 0 ? first_ns : step_ns;
      if (first_ns > 0) first_ns = 0;
      else if (step_ns < SLEEP_STEP_MAX_NS) step_ns += step_ns / 2;
      sleep_ns(ns < left ? ns : left);
    } else if (method == WAIT_UMWAIT) {
      // Arm the monitor on the first record, look again (a store before the arm would be
      // missed), then sleep in C0.2 until it is written or ~10 µs pass (then check the others).
      umonitor(base + off[0]);
      if (base[off[0]]) return num(env, 0);
      umwait(0, rdtsc() + 25000);
    } else if (t - start < 20000) {
      // Pause loop: 1, 2, 4, ... 256 pauses between looks.
      for (uint32_t k = 0; k < spins; k++) cpu_pause();
      if (spins < 256) spins <<= 1;
    } else {
      // Backoff: short sleeps, 2 µs doubling to 50 µs (timer slack lowered for this thread).
      sleep_ns(backoff_ns < left ? backoff_ns : left);
      if (backoff_ns < 50000) backoff_ns <<= 1;
    }
  }
}

// ---- faultAddress() ----

static void *fault_page;
static pthread_once_t fault_once = PTHREAD_ONCE_INIT;
static void fault_init(void) {
  void *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  fault_page = p == MAP_FAILED ? NULL : p;
}

static napi_value js_fault_address(napi_env env, napi_callback_info info) {
  (void)info;
  pthread_once(&fault_once, fault_init);
  if (!fault_page) {
    napi_throw_error(env, "ENOMEM", "cannot reserve a PROT_NONE page");
    return NULL;
  }
  return num(env, (double)(uintptr_t)fault_page);
}

// ---- testing: peek / poke / movdir64b ----

static int get_addr(napi_env env, napi_value v, uintptr_t *out) {
  double d;
  if (!get_double(env, v, &d)) return 0;
  if (!(d >= 0) || d > 9007199254740991.0 || d != (double)(uint64_t)d) {
    napi_throw_range_error(env, NULL, "an address is a non-negative safe integer");
    return 0;
  }
  *out = (uintptr_t)(uint64_t)d;
  return 1;
}

/** Copy [addr, addr+len) of this process page by page; stops at the first unreadable page. */
static size_t vm_copy(uintptr_t addr, uint8_t *buf, size_t len, int write) {
  size_t done = 0;
  const pid_t pid = getpid();
  while (done < len) {
    uintptr_t a = addr + done;
    size_t chunk = 4096 - (a & 4095);
    if (chunk > len - done) chunk = len - done;
    struct iovec local = {buf + done, chunk};
    struct iovec remote = {(void *)a, chunk};
    ssize_t r = write ? process_vm_writev(pid, &local, 1, &remote, 1, 0)
                      : process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (r <= 0) break;
    done += (size_t)r;
    if ((size_t)r < chunk) break;
  }
  return done;
}

static napi_value js_peek(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  uintptr_t addr;
  int64_t len;
  if (!get_addr(env, argv[0], &addr) || !get_int(env, argv[1], &len)) return NULL;
  if (len < 0 || len > (1 << 30)) {
    napi_throw_range_error(env, NULL, "length must be between 0 and 1 GiB");
    return NULL;
  }
  void *data;
  napi_value buf;
  CHECK(napi_create_buffer(env, (size_t)len, &data, &buf));
  size_t got = vm_copy(addr, data, (size_t)len, 0);
  if (got == (size_t)len) return buf;
  napi_value out;
  void *d2;
  CHECK(napi_create_buffer_copy(env, got, data, &d2, &out));
  return out;
}

static napi_value js_poke(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 2, argv)) return NULL;
  uintptr_t addr;
  if (!get_addr(env, argv[0], &addr)) return NULL;
  uint8_t *src;
  size_t bytes;
  if (!get_view(env, argv[1], &src, &bytes)) return NULL;
  bool first_last = false;
  size_t argc = 3;
  napi_value all[3];
  napi_get_cb_info(env, info, &argc, all, NULL, NULL);
  if (argc >= 3) napi_get_value_bool(env, all[2], &first_last);
  if (!first_last || bytes < 2) return num(env, (double)vm_copy(addr, src, bytes, 1));
  // A completion record: every byte but the first, then the status byte.
  size_t rest = vm_copy(addr + 1, src + 1, bytes - 1, 1);
  if (rest != bytes - 1) return num(env, (double)rest);
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  return num(env, (double)(vm_copy(addr, src, 1, 1) + rest));
}

static napi_value js_test_movdir64b(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  uint8_t *dst;
  size_t dbytes;
  if (!get_view(env, argv[0], &dst, &dbytes)) return NULL;
  uint8_t *src;
  size_t bytes;
  if (!get_view(env, argv[1], &src, &bytes)) return NULL;
  if (dbytes < 64 || bytes < 64 || ((uintptr_t)dst & 63)) {
    napi_throw_range_error(env, NULL,
                           "MOVDIR64B needs a 64-byte aligned destination view and 64 source bytes");
    return NULL;
  }
  pthread_once(&cpu_once, cpu_init);
  if (!cpu.movdir64b) {
    napi_throw_error(env, "ENOTSUP", "this CPU does not support MOVDIR64B");
    return NULL;
  }
  sfence();
  movdir64b(dst, src);
  sfence();
  return num(env, 64);
}

// ---- Module ----

static napi_value fn(napi_env env, napi_callback cb, const char *name) {
  napi_value f;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &f);
  return f;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_set_named_property(env, exports, "cpu", fn(env, js_cpu, "cpu"));
  napi_set_named_property(env, exports, "address", fn(env, js_address, "address"));
  napi_set_named_property(env, exports, "mapPortal", fn(env, js_map_portal, "mapPortal"));
  napi_set_named_property(env, exports, "unmapPortal", fn(env, js_unmap_portal, "unmapPortal"));
  napi_set_named_property(env, exports, "submit", fn(env, js_submit, "submit"));
  napi_set_named_property(env, exports, "adoptFd", fn(env, js_adopt_fd, "adoptFd"));
  napi_set_named_property(env, exports, "closeFd", fn(env, js_close_fd, "closeFd"));
  napi_set_named_property(env, exports, "writeFd", fn(env, js_write_fd, "writeFd"));
  napi_set_named_property(env, exports, "pollFds", fn(env, js_poll_fds, "pollFds"));
  napi_set_named_property(env, exports, "waitAny", fn(env, js_wait_any, "waitAny"));
  napi_set_named_property(env, exports, "faultAddress",
                          fn(env, js_fault_address, "faultAddress"));
  napi_value testing;
  napi_create_object(env, &testing);
  napi_set_named_property(env, testing, "peek", fn(env, js_peek, "peek"));
  napi_set_named_property(env, testing, "poke", fn(env, js_poke, "poke"));
  napi_set_named_property(env, testing, "movdir64b", fn(env, js_test_movdir64b, "movdir64b"));
  napi_set_named_property(env, exports, "testing", testing);
  napi_value version;
  napi_create_uint32(env, 2, &version);
  napi_set_named_property(env, exports, "abiVersion", version);
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
