// Clears OpenSSL's per-thread error queue before every TLS I/O call libcaf_openssl makes.
//
// Why: OpenSSL's SSL_get_error() reads the thread's error queue, so the queue must be empty
// before SSL_read/SSL_write/SSL_connect/SSL_accept (see the SSL_get_error manual). CAF 0.17.6's
// openssl session never clears it: one failed handshake (say, a node with a certificate from
// another CA knocking on the cluster port) leaves errors behind on the middleman's thread, and
// the next harmless SSL_ERROR_WANT_READ on any other connection is then misread as a fatal
// error: healthy links between nodes drop every time the stranger retries. Debian ships 0.17.6,
// so the fix lives here: these definitions in the executable take precedence over libssl's for
// libcaf_openssl's calls (ordinary ELF symbol lookup), clear the queue, and call libssl's own.
//
// Only the shoal executable carries this file (an object in a static library would not be
// linked, having no caller of its own).
#include <dlfcn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstdlib>

namespace {

template <class Fn>
Fn next_symbol(const char* name) {
  void* sym = dlsym(RTLD_NEXT, name);
  if (sym == nullptr) std::abort();  // libssl is linked in: cannot happen
  return reinterpret_cast<Fn>(sym);
}

}  // namespace

extern "C" {

int SSL_read(SSL* ssl, void* buf, int num) {
  static auto real = next_symbol<int (*)(SSL*, void*, int)>("SSL_read");
  ERR_clear_error();
  return real(ssl, buf, num);
}

int SSL_write(SSL* ssl, const void* buf, int num) {
  static auto real = next_symbol<int (*)(SSL*, const void*, int)>("SSL_write");
  ERR_clear_error();
  return real(ssl, buf, num);
}

int SSL_connect(SSL* ssl) {
  static auto real = next_symbol<int (*)(SSL*)>("SSL_connect");
  ERR_clear_error();
  return real(ssl);
}

int SSL_accept(SSL* ssl) {
  static auto real = next_symbol<int (*)(SSL*)>("SSL_accept");
  ERR_clear_error();
  return real(ssl);
}

}  // extern "C"
