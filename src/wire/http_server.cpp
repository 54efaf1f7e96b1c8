// http_server: the Beast server (http_server.hpp says what it does). Over 500 lines: one session
// class with every error path of HTTP/1.1 (limits, chunking, keep-alive, linger, pause) and the
// lag probe; they share the session's state, and splitting them would expose it.
#include "shoal/wire/http_server.hpp"

#include "shoal/base/json_string.hpp"
#include "shoal/serving/overload.hpp"
#include "wire/listener.hpp"

#include <array>
#include <cstdio>
#include <ctime>
#include <atomic>
#include <charconv>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

namespace shoal {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

// Request headers beyond this are refused with 431; real V2 clients send a few hundred bytes.
constexpr uint32_t max_header_bytes = 16 * 1024;
// After an error reply, how long the server keeps reading (and discarding) what the client still
// sends before closing, so the client reads the reply instead of a connection reset.
constexpr std::chrono::seconds linger_time{2};
// Pause before accepting again after accept failed (e.g. out of file descriptors).
constexpr std::chrono::milliseconds accept_backoff{50};

constexpr std::string_view continue_100 = "HTTP/1.1 100 Continue\r\n\r\n";

// {"error": message}, for the errors the server itself answers.
std::string json_error(std::string_view message) {
  std::string out = "{\"error\":";
  append_json_string(out, message);
  return out + "}";
}

bool is_header_safe(std::string_view s) { return s.find_first_of("\r\n") == std::string_view::npos; }

// The Date header's value (RFC 9110 5.6.7 IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT"):
// formatted once a second per thread, so a reply costs a clock read. Names spelled out rather
// than strftime's %a/%b, which follow the locale.
std::string_view http_date() {
  static constexpr const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  thread_local std::time_t formatted = -1;
  thread_local char text[32];
  const std::time_t now = std::time(nullptr);
  if (now != formatted) {
    std::tm t{};
    gmtime_r(&now, &t);
    std::snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[t.tm_wday % 7],
                  t.tm_mday, months[t.tm_mon % 12], t.tm_year + 1900, t.tm_hour, t.tm_min,
                  t.tm_sec);
    formatted = now;
  }
  return text;
}

class session;

// The io_context of the I/O thread this is (null on any other thread), for http_defer.
thread_local net::io_context* this_thread_context = nullptr;

// One I/O thread's lag probe (options.on_lag). Touched only on its thread.
struct lag_probe {
  explicit lag_probe(net::io_context& io) : timer(io) {}
  net::steady_timer timer;
  lag_probe_state state;
};
thread_local lag_probe* this_thread_probe = nullptr;

}  // namespace

struct http_server::core : std::enable_shared_from_this<core> {
  http_server_options options;
  http_handler handler;

  // Declared first so they are destroyed last: everything below lives on them.
  std::vector<std::unique_ptr<net::io_context>> contexts;  // one per I/O thread
  std::vector<net::executor_work_guard<net::io_context::executor_type>> work;
  std::optional<tcp::acceptor> acceptor;                   // on contexts[0]
  std::optional<net::steady_timer> accept_timer;           // on contexts[0]
  std::vector<std::unique_ptr<net::steady_timer>> tick_timers;  // one per context (on_tick)
  std::vector<std::unique_ptr<lag_probe>> probes;              // one per context (on_lag)
  size_t next_context = 0;                                 // touched by the accept loop only
  uint16_t port = 0;
  std::vector<std::thread> threads;

  // stop() sets `stopped`, then waits until no respond() is between its check and its post, so no
  // write is posted to a context after stop() drained it (that would keep the session alive forever).
  std::atomic<bool> stopped{false};
  std::atomic<int> posting{0};
  std::mutex stop_mutex;
  bool stop_done = false;

  // Live connections, so stop() can close idle ones. Touched once per connection, not per request.
  std::mutex sessions_mutex;
  std::unordered_set<session*> sessions;

  void do_accept();
  void on_accept(const error_code& ec, tcp::socket socket);
  // Runs options.on_tick on the timer's thread every tick_interval until stop().
  void schedule_tick(net::steady_timer& timer) {
    timer.expires_after(options.tick_interval);
    timer.async_wait([this, &timer](const error_code& ec) {
      if (ec || stopped.load()) return;
      options.on_tick();
      schedule_tick(timer);
    });
  }
  // A request was read on this thread: probe its lag unless a probe is under way.
  void note_request() {
    lag_probe* p = this_thread_probe;
    if (p != nullptr && p->state.note_request()) arm(*p);
  }
  void arm(lag_probe& p) {
    p.timer.expires_at(p.state.arm(options.lag_probe_interval));
    p.timer.async_wait([this, &p](const error_code& ec) {
      if (ec || stopped.load()) {
        p.state.disarm();
        return;
      }
      const auto reading = p.state.fire();
      options.on_lag(reading.lag_ms, reading.idle);
      if (!reading.idle) arm(p);
    });
  }
  void stop();
};

namespace {

// One connection. Every member function except respond() runs on the connection's io_context
// thread (or on stop()'s thread once the I/O threads have exited), so none needs a lock.
class session : public std::enable_shared_from_this<session> {
 public:
  session(std::shared_ptr<http_server::core> core, net::io_context& context, tcp::socket socket)
      : core_(std::move(core)), context_(context), stream_(std::move(socket)) {}

  ~session() {
    std::lock_guard<std::mutex> lock(core_->sessions_mutex);
    core_->sessions.erase(this);
  }

  session(const session&) = delete;
  session& operator=(const session&) = delete;

  void start() {
    if (core_->stopped.load()) return;
    // Replies are first tried with a plain write (see write()): the socket must not block.
    error_code ec;
    stream_.socket().non_blocking(true, ec);
    if (ec) return stream_.close();
    {
      std::lock_guard<std::mutex> lock(core_->sessions_mutex);
      core_->sessions.insert(this);
    }
    do_read();
  }

  // Any thread. Posts (or, on the connection's own thread, runs) the write.
  void respond(http_reply reply) {
    core_->posting.fetch_add(1);
    if (!core_->stopped.load()) {
      net::dispatch(context_, [self = shared_from_this(), reply = std::move(reply)]() mutable {
        self->on_reply(std::move(reply));
      });
    }
    core_->posting.fetch_sub(1);
  }

  // stop()'s thread, after the I/O threads exited.
  void close_now() { stream_.close(); }

 private:
  void do_read() {
    parser_.emplace();
    parser_->body_limit(core_->options.max_body_bytes);
    parser_->header_limit(max_header_bytes);
    stream_.expires_after(core_->options.idle_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(error_code ec) {
    if (core_->stopped.load()) return;
    if (ec) return on_read_error(ec);
    if (parser_->is_done()) return on_request();
    if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      stream_.expires_after(core_->options.idle_timeout);
      net::async_write(stream_, net::buffer(continue_100.data(), continue_100.size()),
                       [self = shared_from_this()](error_code ec, size_t) {
                         if (self->core_->stopped.load()) return;
                         if (ec) return self->stream_.close();
                         self->read_body();
                       });
      return;
    }
    read_body();
  }

  void read_body() {
    // The body usually came in with the header and waits in buffer_: parse it here and answer in
    // this same turn of the event loop. (http::async_read would post its completion behind every
    // other handler the thread has, delaying each request by a whole round under load.)
    while (!parser_->is_done() && buffer_.size() > 0) {
      error_code ec;
      const size_t used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec == http::error::need_more) break;
      if (ec) return on_read_error(ec);
      if (used == 0) break;
    }
    if (parser_->is_done()) return on_request();
    stream_.expires_after(core_->options.idle_timeout);
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](error_code ec, size_t) {
      if (self->core_->stopped.load()) return;
      if (ec) return self->on_read_error(ec);
      self->on_request();
    });
  }

  void on_read_error(error_code ec) {
    if (ec == http::error::body_limit) {
      return send_error(413, "request body is over the limit of " +
                                 std::to_string(core_->options.max_body_bytes) +
                                 " bytes: send a smaller body (split a large batch)");
    }
    if (ec == http::error::header_limit) {
      return send_error(431, "request headers are over the limit of " +
                                 std::to_string(max_header_bytes) + " bytes");
    }
    // end_of_stream: the client closed between requests; partial_message: it closed mid-request.
    // Neither can read a reply. Anything else from the HTTP parser is the client's malformed input.
    if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      return send_error(400, "malformed HTTP request: " + ec.message());
    }
    stream_.close();  // timeout, reset, eof: nothing to say
  }

  void on_request() {
    auto& msg = parser_->get();
    keep_alive_ = msg.keep_alive();
    http10_ = msg.version() == 10;
    head_ = msg.method() == http::verb::head;

    http_request request;
    request.method.assign(msg.method_string().data(), msg.method_string().size());
    request.target.assign(msg.target().data(), msg.target().size());
    auto content_type = msg[http::field::content_type];
    request.content_type.assign(content_type.data(), content_type.size());
    if (auto it = msg.find(http::field::authorization); it != msg.end()) {
      request.authorization.assign(it->value().data(), it->value().size());
      request.has_authorization = true;
    }
    if (auto it = msg.find("Shoal-Max-Queue-Ms"); it != msg.end()) {
      request.max_queue_ms.assign(it->value().data(), it->value().size());
    }
    if (auto it = msg.find("Inference-Header-Content-Length"); it != msg.end()) {
      request.inference_header_length.assign(it->value().data(), it->value().size());
    }
    request.body = std::move(msg.body());

    awaiting_reply_ = true;
    core_->note_request();
    std::string failure;
    try {
      core_->handler(std::move(request), http_respond([self = shared_from_this()](http_reply r) {
                       self->respond(std::move(r));
                     }));
      return;
    } catch (const std::exception& e) {
      failure = e.what();
    } catch (...) {
      failure = "unknown exception";
    }
    if (!awaiting_reply_) return;  // it replied, then threw
    http_reply reply;
    reply.status = 500;
    reply.body = json_error("internal error: the request handler failed (" + failure + ")");
    on_reply(std::move(reply));
  }

  void on_reply(http_reply reply) {
    if (!awaiting_reply_ || core_->stopped.load()) return;  // a second reply, or shutting down
    awaiting_reply_ = false;
    write(std::move(reply), !keep_alive_, false);
  }

  // Replies to a request the server refused, then closes.
  void send_error(int status, const std::string& message) {
    http_reply reply;
    reply.status = status;
    reply.body = json_error(message);
    head_ = false;
    http10_ = false;
    write(std::move(reply), true, true);
  }

  void write(http_reply reply, bool close, bool linger) {
    const int code = reply.status >= 100 && reply.status <= 999 ? reply.status : 500;
    const auto reason = http::obsolete_reason(http::int_to_status(static_cast<unsigned>(code)));
    char num[24];

    head_buf_.clear();
    head_buf_ += "HTTP/1.1 ";
    head_buf_.append(num, std::to_chars(num, num + sizeof num, code).ptr);
    head_buf_ += ' ';
    head_buf_.append(reason.data(), reason.size());
    head_buf_ += "\r\nServer: shoal\r\nDate: ";
    head_buf_ += http_date();
    head_buf_ += "\r\nContent-Type: ";
    head_buf_ += is_header_safe(reply.content_type) ? std::string_view(reply.content_type)
                                                    : std::string_view("application/octet-stream");
    head_buf_ += "\r\nContent-Length: ";
    head_buf_.append(num, std::to_chars(num, num + sizeof num, reply.body.size()).ptr);
    head_buf_ += "\r\n";
    for (const auto& [name, value] : reply.headers) {
      if (name.empty() || !is_header_safe(name) || !is_header_safe(value)) continue;
      head_buf_ += name;
      head_buf_ += ": ";
      head_buf_ += value;
      head_buf_ += "\r\n";
    }
    if (close) {
      head_buf_ += "Connection: close\r\n";
    } else if (http10_) {
      head_buf_ += "Connection: keep-alive\r\n";
    }
    head_buf_ += "\r\n";
    body_ = std::move(reply.body);
    pause_ = reply.pause_reading;

    std::array<net::const_buffer, 2> buffers{net::buffer(head_buf_),
                                            head_ ? net::const_buffer() : net::buffer(body_)};
    // Sent at once when the socket takes it all (a reply nearly always fits its send buffer):
    // the connection then waits for its next request in this same turn of the event loop.
    // (async_write would post its completion behind every other handler the thread has: under
    // load, a whole round later, and the client's next request would wait that long unread.)
    error_code ec;
    const size_t sent = stream_.socket().write_some(buffers, ec);
    if (ec && ec != net::error::would_block && ec != net::error::try_again) {
      return on_write(ec, close, linger);
    }
    if (!ec && sent == net::buffer_size(buffers)) return on_write({}, close, linger);
    // The rest, when the socket can take it.
    if (sent < buffers[0].size()) {
      buffers[0] += sent;
    } else {
      buffers[1] += sent - buffers[0].size();
      buffers[0] = net::const_buffer();
    }
    stream_.expires_after(core_->options.idle_timeout);
    net::async_write(stream_, buffers,
                     [self = shared_from_this(), close, linger](error_code ec, size_t) {
                       self->on_write(ec, close, linger);
                     });
  }

  void on_write(error_code ec, bool close, bool linger) {
    if (core_->stopped.load()) return;
    if (ec) return stream_.close();
    if (!close && pause_.count() > 0) {
      if (!pause_timer_) pause_timer_.emplace(context_);
      pause_timer_->expires_after(pause_);
      pause_timer_->async_wait([self = shared_from_this()](error_code wait_ec) {
        if (wait_ec || self->core_->stopped.load()) return;
        self->do_read();
      });
      return;
    }
    if (!close) return do_read();
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    if (!linger) return stream_.close();
    stream_.expires_after(linger_time);
    drain();
  }

  // Reads and drops what the client still sends until it closes or linger_time passes.
  void drain() {
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(64 * 1024),
                            [self = shared_from_this()](error_code ec, size_t) {
                              if (self->core_->stopped.load()) return;
                              if (ec) return self->stream_.close();
                              self->drain();
                            });
  }

  std::shared_ptr<http_server::core> core_;  // first: the contexts outlive the stream
  net::io_context& context_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string head_buf_;  // the reply's status line and headers, reused across requests
  std::string body_;      // the reply's body while it is written
  std::chrono::milliseconds pause_{0};               // before reading the next request
  std::optional<net::steady_timer> pause_timer_;
  bool keep_alive_ = false;
  bool http10_ = false;
  bool head_ = false;
  bool awaiting_reply_ = false;  // a request went to the handler and has no reply yet
};

}  // namespace

void http_server::core::do_accept() {
  net::io_context& target = *contexts[next_context++ % contexts.size()];
  // The handler holds a raw pointer: the core outlives the accept, because stop() closes the
  // acceptor and drains the contexts before the server drops the core.
  acceptor->async_accept(target, [this](const error_code& ec, tcp::socket socket) {
    on_accept(ec, std::move(socket));
  });
}

void http_server::core::on_accept(const error_code& ec, tcp::socket socket) {
  if (stopped.load()) return;
  if (ec) {
    if (ec == net::error::operation_aborted) return;
    // Out of descriptors or similar: the listener is fine, try again shortly.
    accept_timer->expires_after(accept_backoff);
    accept_timer->async_wait([this](const error_code& wait_ec) {
      if (!wait_ec && !stopped.load()) do_accept();
    });
    return;
  }
  error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  auto& context = static_cast<net::io_context&>(socket.get_executor().context());
  auto s = std::make_shared<session>(shared_from_this(), context, std::move(socket));
  net::post(context, [s] { s->start(); });
  do_accept();
}

void http_server::core::stop() {
  std::lock_guard<std::mutex> lock(stop_mutex);
  if (stop_done) return;
  stop_done = true;
  stopped.store(true);
  while (posting.load() != 0) std::this_thread::yield();
  for (auto& c : contexts) c->stop();
  for (auto& t : threads) {
    if (t.joinable()) t.join();
  }
  // The I/O threads are gone: from here on this thread is the only one touching the contexts.
  error_code ignored;
  if (acceptor) acceptor->close(ignored);
  if (accept_timer) accept_timer->cancel();
  for (auto& t : tick_timers) t->cancel();
  for (auto& p : probes) p->timer.cancel();
  std::vector<std::shared_ptr<session>> open;
  {
    std::lock_guard<std::mutex> sessions_lock(sessions_mutex);
    for (session* s : sessions) {
      if (auto p = s->weak_from_this().lock()) open.push_back(std::move(p));
    }
  }
  for (auto& s : open) s->close_now();
  open.clear();
  work.clear();
  // Run what the closes completed (handlers see `stopped` and return), releasing the sessions
  // those operations held.
  for (auto& c : contexts) {
    c->restart();
    c->poll();
  }
}

http_server::http_server(std::shared_ptr<core> c) : core_(std::move(c)) {}

http_server::~http_server() { stop(); }

uint16_t http_server::port() const { return core_->port; }

std::vector<net::io_context*> http_server::io_contexts() const {
  std::vector<net::io_context*> out;
  for (auto& c : core_->contexts) out.push_back(c.get());
  return out;
}

void http_server::stop() { core_->stop(); }

result<std::unique_ptr<http_server>> http_server::start(http_server_options options,
                                                        http_handler handler) {
  if (!handler) return status::invalid_argument("http_server needs a handler");
  auto c = std::make_shared<core>();
  c->options = std::move(options);
  c->handler = std::move(handler);
  if (c->options.threads == 0) c->options.threads = 1;

  for (size_t i = 0; i < c->options.threads; ++i) {
    // Concurrency hint 1: each context is run by exactly one thread.
    c->contexts.push_back(std::make_unique<net::io_context>(1));
    c->work.push_back(net::make_work_guard(*c->contexts.back()));
  }
  net::io_context& first = *c->contexts.front();

  auto listening = open_listener(first, c->options.host, c->options.port);
  if (!listening) return listening.error();
  c->acceptor.emplace(std::move(*listening));
  c->accept_timer.emplace(first);
  error_code ec;
  c->port = c->acceptor->local_endpoint(ec).port();
  if (ec) {
    return status::unavailable("cannot listen on " + c->options.host + ":" +
                               std::to_string(c->options.port) + ": " + ec.message());
  }

  c->do_accept();
  if (c->options.on_tick) {
    for (auto& context : c->contexts) {
      c->tick_timers.push_back(std::make_unique<net::steady_timer>(*context));
      c->schedule_tick(*c->tick_timers.back());
    }
  }
  if (c->options.on_lag) {
    for (auto& context : c->contexts) c->probes.push_back(std::make_unique<lag_probe>(*context));
  }
  std::unique_ptr<http_server> server(new http_server(c));
  try {
    for (size_t i = 0; i < c->contexts.size(); ++i) {
      net::io_context* ctx = c->contexts[i].get();
      lag_probe* probe = c->probes.empty() ? nullptr : c->probes[i].get();
      c->threads.emplace_back([ctx, probe] {
        this_thread_context = ctx;
        this_thread_probe = probe;
        // Our handlers catch what the request handler throws; this keeps a thread alive through
        // anything else (e.g. bad_alloc in the middle of a read).
        for (;;) {
          try {
            ctx->run();
            return;
          } catch (...) {
          }
        }
      });
    }
  } catch (const std::system_error& e) {
    server->stop();
    return status::internal(std::string("cannot start I/O threads: ") + e.what());
  }
  return server;
}

bool http_defer(std::function<void()> fn) {
  if (this_thread_context == nullptr) return false;
  net::post(*this_thread_context, std::move(fn));
  return true;
}

}  // namespace shoal
