// A fault-injection layer for the store's file I/O, loaded into a real node with LD_PRELOAD:
// it fails one chosen call (the Nth write, pwrite, fsync, fdatasync, rename or ftruncate on a
// file under the data directory) the way a failing disk does, and passes everything else through.
// The node's code is not changed or rebuilt for it; the crash tests (tests/faults/crash.py) run
// every call site of a workload once with a failure this way.
//
// Environment:
//   SHOAL_FAIL_DIR    the data directory; only files under it are touched (sockets, logs and
//                     everything else pass through)
//   SHOAL_FAIL_OP     write | pwrite | fsync | fdatasync | rename | ftruncate
//   SHOAL_FAIL_AT     N: the Nth such call fails (1-based); 0 or unset: none fails
//   SHOAL_FAIL_ERRNO  the error it fails with (default EIO; 28 is ENOSPC)
//   SHOAL_FAIL_COUNT  a file to which, at every matching call, the call's kind and running count
//                     are appended ("fsync 3"), so a test learns how many call sites a workload
//                     has
// Once the chosen call has failed, a line "failed OP N" is appended to SHOAL_FAIL_COUNT too.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

enum { MAX_FD = 65536 };
// fd -> "is a file under SHOAL_FAIL_DIR". Written by open/close on any thread; an fd number is
// owned by one open file at a time, so a byte per fd needs no lock.
static _Atomic unsigned char tracked[MAX_FD];
static _Atomic long counts[6];
static const char* kinds[6] = {"write", "pwrite", "fsync", "fdatasync", "rename", "ftruncate"};

static const char* dir(void) {
  static const char* d = NULL;
  static int read = 0;
  if (!read) {
    d = getenv("SHOAL_FAIL_DIR");
    read = 1;
  }
  return d;
}

static int under_dir(const char* path) {
  const char* d = dir();
  if (d == NULL || path == NULL) return 0;
  size_t n = strlen(d);
  return strncmp(path, d, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

#define REAL(ret, name, ...)                     \
  static ret (*real_##name)(__VA_ARGS__) = NULL; \
  if (real_##name == NULL) real_##name = dlsym(RTLD_NEXT, #name)

static void note(const char* line) {
  const char* f = getenv("SHOAL_FAIL_COUNT");
  if (f == NULL) return;
  REAL(int, open, const char*, int, ...);
  REAL(ssize_t, write, int, const void*, size_t);
  REAL(int, close, int);
  int fd = real_open(f, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  ssize_t ignored = real_write(fd, line, strlen(line));
  (void)ignored;
  real_close(fd);
}

// Returns nonzero when this call (of kind k) must fail; counts it either way.
static int should_fail(int k) {
  long n = atomic_fetch_add(&counts[k], 1) + 1;
  const char* op = getenv("SHOAL_FAIL_OP");
  const char* at = getenv("SHOAL_FAIL_AT");
  char line[64];
  snprintf(line, sizeof line, "%s %ld\n", kinds[k], n);
  note(line);
  if (op == NULL || at == NULL || strcmp(op, kinds[k]) != 0 || atol(at) != n) return 0;
  snprintf(line, sizeof line, "failed %s %ld\n", kinds[k], n);
  note(line);
  const char* e = getenv("SHOAL_FAIL_ERRNO");
  errno = e != NULL ? atoi(e) : EIO;
  return 1;
}

static void track(int fd, const char* path) {
  if (fd >= 0 && fd < MAX_FD) atomic_store(&tracked[fd], (unsigned char)under_dir(path));
}

static int is_tracked(int fd) { return fd >= 0 && fd < MAX_FD && atomic_load(&tracked[fd]); }

// Paths the store opens are absolute (the data directory is made absolute at start).
int open(const char* path, int flags, ...) {
  REAL(int, open, const char*, int, ...);
  mode_t mode = 0;
  if (flags & (O_CREAT | O_TMPFILE)) {
    va_list ap;
    va_start(ap, flags);
    mode = va_arg(ap, mode_t);
    va_end(ap);
  }
  int fd = real_open(path, flags, mode);
  track(fd, path);
  return fd;
}

int open64(const char* path, int flags, ...) {
  REAL(int, open64, const char*, int, ...);
  mode_t mode = 0;
  if (flags & (O_CREAT | O_TMPFILE)) {
    va_list ap;
    va_start(ap, flags);
    mode = va_arg(ap, mode_t);
    va_end(ap);
  }
  int fd = real_open64(path, flags, mode);
  track(fd, path);
  return fd;
}

int close(int fd) {
  REAL(int, close, int);
  if (fd >= 0 && fd < MAX_FD) atomic_store(&tracked[fd], 0);
  return real_close(fd);
}

ssize_t write(int fd, const void* buf, size_t n) {
  REAL(ssize_t, write, int, const void*, size_t);
  if (is_tracked(fd) && should_fail(0)) return -1;
  return real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  REAL(ssize_t, pwrite, int, const void*, size_t, off_t);
  if (is_tracked(fd) && should_fail(1)) return -1;
  return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void* buf, size_t n, off_t off) {
  REAL(ssize_t, pwrite64, int, const void*, size_t, off_t);
  if (is_tracked(fd) && should_fail(1)) return -1;
  return real_pwrite64(fd, buf, n, off);
}

int fsync(int fd) {
  REAL(int, fsync, int);
  if (is_tracked(fd) && should_fail(2)) return -1;
  return real_fsync(fd);
}

int fdatasync(int fd) {
  REAL(int, fdatasync, int);
  if (is_tracked(fd) && should_fail(3)) return -1;
  return real_fdatasync(fd);
}

int rename(const char* from, const char* to) {
  REAL(int, rename, const char*, const char*);
  if (under_dir(from) && should_fail(4)) return -1;
  return real_rename(from, to);
}

int ftruncate(int fd, off_t len) {
  REAL(int, ftruncate, int, off_t);
  if (is_tracked(fd) && should_fail(5)) return -1;
  return real_ftruncate(fd, len);
}

int ftruncate64(int fd, off_t len) {
  REAL(int, ftruncate64, int, off_t);
  if (is_tracked(fd) && should_fail(5)) return -1;
  return real_ftruncate64(fd, len);
}
