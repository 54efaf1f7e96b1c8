// data_plane: the sockets of node-to-node inference (data_plane.hpp says what it does). Over 500
// lines: one link class for both ends of a connection (connect or accept, TLS or not, the
// handshake, framing, in-flight requests and their failover); the ends share all but the
// handshake's direction, and splitting them would duplicate the read and write loops.
#include "shoal/wire/data_plane.hpp"

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "shoal/base/host_port.hpp"
#include "shoal/base/log.hpp"
#include "shoal/cluster/data_plane_protocol.hpp"
#include "shoal/wire/api_codec.hpp"
#include "wire/listener.hpp"

namespace shoal {

namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using steady = std::chrono::steady_clock;

namespace {

constexpr size_t read_chunk = 64 * 1024;
constexpr std::chrono::milliseconds sweep_interval{50};
constexpr int64_t log_every_ms = 10000;  // per peer address, for refusals and lost peers

// The context of the I/O thread this is, once the data plane has run anything on it (null on
// any other thread). Set by our handlers; one thread runs one context for its whole life.
thread_local net::io_context* this_io = nullptr;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now().time_since_epoch())
      .count();
}

// One forwarded request: the targets it may still ask, and who waits for its answer. Owned by
// the I/O thread that forwards it; its attempts are on that thread's connections, one or more at
// a time (a slow attempt is hedged, not abandoned).
struct forward_job {
  uint64_t id = 0;
  model_id model;
  uint32_t version = 0;
  std::shared_ptr<const std::string> request;  // the encoded Request (carries `id`)
  std::vector<peer_info> targets;
  size_t next = 0;                             // the next target not asked yet
  size_t in_flight = 0;                        // attempts sent or waiting, not over yet
  bool asked_again = false;                    // a holder re-asked over a fresh connection
  steady::time_point deadline;                 // no answer by then: it fails
  std::string errors;                          // "n2: why; n3: why"
  std::optional<status> refusal;               // a holder's 429, answered if none does better
  std::function<void(result<infer_result>)> done;  // empty once answered
};
using job_ptr = std::shared_ptr<forward_job>;

class link;

// What one I/O thread owns: its connections to peers (by data address), its inbound ones, its
// request ids. Touched only on that thread.
struct thread_links {
  net::io_context* io = nullptr;
  std::map<std::string, std::shared_ptr<link>> out;  // by data address
  std::set<std::shared_ptr<link>> in;
  // Connections that carried nothing back while requests waited: no new requests go to them;
  // each closes once its requests are over (answered elsewhere, answered late, or past their
  // deadline).
  std::set<std::shared_ptr<link>> retired;
  uint64_t next_id = 1;
};

}  // namespace

struct data_plane::core : std::enable_shared_from_this<core> {
  data_plane_options options;
  data_plane_handler handler;
  std::vector<net::io_context*> contexts;
  std::vector<std::unique_ptr<thread_links>> threads;  // one per context, same order
  std::optional<ssl::context> tls_server;
  std::optional<ssl::context> tls_client;
  std::optional<tcp::acceptor> acceptor;  // on contexts[0]
  size_t next_accept = 0;                 // the accept loop's round robin
  uint16_t port = 0;
  int listen_fd = -1;  // bound by listen(), taken over by the acceptor in start()
  bool listen_protocol_v6 = false;
  std::atomic<size_t> next_post{0};       // round robin for forwards from other threads

  // Posting from other threads (actor replies, membership) checks `stopped` under this count,
  // so nothing is posted to a context after stop() (same scheme as http_server).
  std::atomic<bool> started{false};
  std::atomic<bool> stopped{false};
  std::atomic<int> posting{0};

  // Rate-limits warnings per peer address. Touched on rare events only (refusals, lost peers).
  std::mutex log_mutex;
  std::map<std::string, int64_t> last_log_ms;

  // Returns this thread's links when it is one of the I/O threads, else null.
  thread_links* this_thread() {
    for (auto& t : threads) {
      if (t->io == this_io) return t.get();
    }
    for (auto& t : threads) {
      if (t->io->get_executor().running_in_this_thread()) return t.get();
    }
    return nullptr;
  }
  // Runs `fn` on `io` unless stopped; returns whether it was posted.
  template <class F>
  bool post_to(net::io_context& io, F&& fn) {
    posting.fetch_add(1);
    bool ok = !stopped.load();
    if (ok) net::post(io, std::forward<F>(fn));
    posting.fetch_sub(1);
    return ok;
  }
  // Runs `fn` now when this is `io`'s thread, else posts it there unless stopped (then the
  // context may be gone: a reply from an actor can come after the node stopped). The common case,
  // a reply on the thread that read the request, touches nothing shared.
  template <class F>
  void run_on(net::io_context& io, F&& fn) {
    if (this_io == &io) return fn();
    post_to(io, std::forward<F>(fn));
  }
  bool should_log(const std::string& key) {
    std::lock_guard<std::mutex> lock(log_mutex);
    int64_t now = now_ms();
    auto [it, fresh] = last_log_ms.try_emplace(key, now);
    if (!fresh && now - it->second < log_every_ms) return false;
    it->second = now;
    return true;
  }

  void do_accept();
  // Asks the job's next target (posted: a failing connection retries after it left the map).
  void ask_next(thread_links& t, job_ptr job, bool posted);
  void send(thread_links& t, job_ptr job, const peer_info& target);
  // One attempt is over without an answer: asks the next target, else waits for the attempts
  // still out, else fails the job.
  void attempt_failed(thread_links& t, job_ptr job, const std::string& why);
  // One attempt is slow (hedge_after): asks the next target too; when none is left and the
  // attempt's connection `stuck_on` carried nothing back (it has been retired), asks that
  // target again over a fresh connection, once per request. The first answer wins.
  void hedge(thread_links& t, job_ptr job, const peer_info* stuck_on);
  void finish(job_ptr job, result<infer_result> r) {
    auto done = std::move(job->done);
    if (done) done(std::move(r));
  }
};

namespace {

// Either a plain socket or a TLS stream over one; the link is written once for both.
class stream {
 public:
  stream(net::io_context& io, ssl::context* tls) {
    if (tls != nullptr) {
      tls_.emplace(io, *tls);
    } else {
      plain_.emplace(io);
    }
  }
  tcp::socket& socket() { return tls_ ? tls_->next_layer() : *plain_; }
  bool is_tls() const { return tls_.has_value(); }
  ssl::stream<tcp::socket>& tls() { return *tls_; }
  template <class Buffer, class Handler>
  void async_read_some(const Buffer& b, Handler&& h) {
    if (tls_) {
      tls_->async_read_some(b, std::forward<Handler>(h));
    } else {
      plain_->async_read_some(b, std::forward<Handler>(h));
    }
  }
  template <class Buffer, class Handler>
  void async_write(const Buffer& b, Handler&& h) {
    if (tls_) {
      net::async_write(*tls_, b, std::forward<Handler>(h));
    } else {
      net::async_write(*plain_, b, std::forward<Handler>(h));
    }
  }
  void close() {
    error_code ignored;
    socket().shutdown(tcp::socket::shutdown_both, ignored);
    socket().close(ignored);
  }

 private:
  std::optional<tcp::socket> plain_;
  std::optional<ssl::stream<tcp::socket>> tls_;
};

// One connection, either end. The client end (`outbound`) connects, proves itself and sends
// requests; the server end accepts, checks the proof and answers. Every member runs on its I/O
// thread.
class link : public std::enable_shared_from_this<link> {
 public:
  enum class phase { connecting, handshake, ready, closed };

  link(std::shared_ptr<data_plane::core> core, thread_links& t, bool outbound, peer_info peer)
      : core_(std::move(core)),
        t_(t),
        outbound_(outbound),
        peer_(std::move(peer)),
        stream_(*t.io, outbound ? (core_->tls_client ? &*core_->tls_client : nullptr)
                                : (core_->tls_server ? &*core_->tls_server : nullptr)),
        timer_(*t.io) {}

  tcp::socket& socket() { return stream_.socket(); }
  const peer_info& peer() const { return peer_; }
  bool closed() const { return phase_ == phase::closed; }
  // The peer as errors and logs name it: its name, else its data address.
  const std::string& who() const { return peer_.name.empty() ? peer_.data_address : peer_.name; }

  // ---- client end ----

  void connect() {
    auto hp = parse_host_port(peer_.data_address);
    if (!hp) return fail("its data address " + peer_.data_address + " is not HOST:PORT");
    arm_handshake_timer();
    auto resolver = std::make_shared<tcp::resolver>(*t_.io);
    resolver->async_resolve(
        hp->host, std::to_string(hp->port),
        [self = shared_from_this(), resolver](const error_code& ec,
                                              tcp::resolver::results_type found) {
          if (self->closed()) return;
          if (ec) return self->fail("cannot resolve " + self->peer_.data_address + ": " + ec.message());
          net::async_connect(self->socket(), found,
                             [self](const error_code& e, const tcp::endpoint&) {
                               if (self->closed()) return;
                               if (e) return self->fail("cannot connect: " + e.message());
                               error_code ignored;
                               self->socket().set_option(tcp::no_delay(true), ignored);
                               self->tls_handshake(ssl::stream_base::client);
                             });
        });
  }

  // Sends a request now, or once the handshake is done.
  void send(job_ptr job) {
    if (!job->done) return;  // answered while this connection was being made
    if (phase_ != phase::ready) return waiting_.push_back(std::move(job));
    if (!pending_.try_emplace(job->id, attempt{job, steady::now()}).second) {
      return core_->attempt_failed(t_, job, who() + ": asked twice on one connection");
    }
    write_frame(*job->request);
    arm_sweep();
  }

  // ---- server end ----

  void accept_started() {
    error_code ignored;
    socket().set_option(tcp::no_delay(true), ignored);
    arm_handshake_timer();
    tls_handshake(ssl::stream_base::server);
  }

  // ---- both ----

  // Closes the connection; requests in flight or waiting go to their next holder at once.
  void fail(const std::string& why) {
    if (phase_ == phase::closed) return;
    const bool was_ready = phase_ == phase::ready;
    phase_ = phase::closed;
    error_code ignored;
    timer_.cancel(ignored);
    stream_.close();
    auto self = shared_from_this();  // the maps below may hold the last reference
    if (outbound_) {
      auto it = t_.out.find(peer_.data_address);
      if (it != t_.out.end() && it->second.get() == this) t_.out.erase(it);
      t_.retired.erase(self);
    } else {
      t_.in.erase(self);
    }
    if (outbound_ && (!pending_.empty() || !waiting_.empty() || !was_ready) &&
        core_->should_log("lost " + peer_.data_address)) {
      log_warn("data plane: connection to a peer failed; its requests go to the next holder",
               {{"peer", who()},
                {"address", peer_.data_address},
                {"in_flight", pending_.size() + waiting_.size()},
                {"error", why}});
    }
    const std::string reason = who() + ": " + why;
    auto pending = std::exchange(pending_, {});
    auto waiting = std::exchange(waiting_, {});
    for (auto& [id, a] : pending) core_->attempt_failed(t_, a.job, reason);
    for (auto& job : waiting) core_->attempt_failed(t_, job, reason);
  }

 private:
  struct attempt {
    job_ptr job;
    steady::time_point sent;
    bool hedged = false;  // the next holder (or a fresh connection) was asked too
  };

  void arm_handshake_timer() {
    timer_.expires_after(core_->options.handshake_timeout);
    timer_.async_wait([weak = weak_from_this()](const error_code& ec) {
      auto self = weak.lock();
      if (ec || !self || self->phase_ == phase::ready) return;
      self->fail("no handshake within " +
                 std::to_string(self->core_->options.handshake_timeout.count()) + " ms");
    });
  }

  void tls_handshake(ssl::stream_base::handshake_type type) {
    phase_ = phase::handshake;
    if (!stream_.is_tls()) return after_tls();
    stream_.tls().async_handshake(type, [self = shared_from_this()](const error_code& ec) {
      if (self->closed()) return;
      if (ec) return self->fail("TLS handshake failed: " + ec.message());
      self->after_tls();
    });
  }

  void after_tls() {
    if (outbound_) {
      nonce_ = random_nonce();
      write_frame(make_hello(nonce_, core_->options.node_id));
    }
    read_more();
  }

  // The handshake's frames, in order (see data_plane_protocol.hpp).
  void on_handshake_frame(std::string_view frame) {
    const std::string& secret = core_->options.secret;
    if (outbound_) {
      if (step_ == 0) {
        auto server_nonce = check_challenge(secret, nonce_, frame);
        if (!server_nonce) return fail(server_nonce.error().message());
        write_frame(make_proof(secret, nonce_, *server_nonce));
        step_ = 1;
        return;
      }
      if (frame != data_plane_ok) {
        return fail("the peer refused the connection: " + std::string(frame));
      }
      become_ready();
      return;
    }
    if (step_ == 0) {
      auto hello = parse_hello(frame);
      if (!hello) return refuse(hello.error().message());
      peer_.id = hello->node_id;
      nonce_ = hello->nonce;
      server_nonce_ = random_nonce();
      write_frame(make_challenge(secret, nonce_, server_nonce_));
      step_ = 1;
      return;
    }
    if (status ok = check_proof(secret, nonce_, server_nonce_, frame); !ok) {
      return refuse(ok.message());
    }
    write_frame(std::string(data_plane_ok));
    become_ready();
  }

  void refuse(const std::string& why) {
    error_code ec;
    auto remote = socket().remote_endpoint(ec);
    const std::string from = ec ? std::string("?") : remote.address().to_string();
    if (core_->should_log("refused " + from)) {
      log_warn("data plane: refused a connection", {{"from", from}, {"error", why}});
    }
    write_frame("REFUSED: " + why);
    refusing_ = true;  // closed once the verdict is written
  }

  void become_ready() {
    phase_ = phase::ready;
    error_code ignored;
    timer_.cancel(ignored);
    auto waiting = std::exchange(waiting_, {});
    for (auto& job : waiting) send(std::move(job));
  }

  void read_more() {
    in_.resize(in_used_ + read_chunk);
    stream_.async_read_some(
        net::buffer(in_.data() + in_used_, read_chunk),
        [self = shared_from_this()](const error_code& ec, size_t n) {
          this_io = self->t_.io;
          if (self->closed()) return;
          if (ec) {
            return self->fail(ec == net::error::eof ? "the peer closed the connection"
                                                    : ec.message());
          }
          self->last_read_ = steady::now();
          self->in_used_ += n;
          self->on_bytes();
        });
  }

  void on_bytes() {
    std::string_view buffer(in_.data(), in_used_);
    while (!closed() && !refusing_) {
      auto frame = next_frame(buffer, core_->options.max_frame_bytes);
      if (!frame) return fail(frame.error().message());
      if (!*frame) break;
      if (phase_ == phase::ready) {
        outbound_ ? on_answer(**frame) : on_request(**frame);
      } else {
        on_handshake_frame(**frame);
      }
    }
    if (closed()) return;
    if (close_if_retired_and_idle()) return;
    const size_t rest = buffer.size();
    if (rest > 0 && buffer.data() != in_.data()) std::memmove(in_.data(), buffer.data(), rest);
    in_used_ = rest;
    if (!refusing_) read_more();
  }

  // Client end: an answer to one of our requests.
  void on_answer(std::string_view frame) {
    auto it = pending_.find(response_request_id(frame));
    if (it == pending_.end()) return;  // a late answer to an attempt already given up
    job_ptr job = std::move(it->second.job);
    pending_.erase(it);
    if (!job->done) return;  // another holder answered first
    auto r = decode_infer_response(frame);
    if (r) return core_->finish(job, std::move(r));
    const status& s = r.error();
    if (s.code() == status_code::invalid_argument || s.code() == status_code::not_found) {
      return core_->finish(job, s);  // the client's mistake: every holder would say so
    }
    if (s.code() == status_code::resource_exhausted) job->refusal = s;
    core_->attempt_failed(t_, job, who() + ": " + s.message());
  }

  // Server end: a peer's request; answered through the handler, possibly from another thread.
  void on_request(std::string_view frame) {
    auto call = decode_request(frame);
    if (!call) {
      if (call.error().request_id == 0) return fail("a frame that is no request");
      return write_frame(encode_error(call.error().request_id, call.error().error));
    }
    const uint64_t id = call->request_id;
    auto* req = std::get_if<infer_request>(&call->call);
    if (req == nullptr) {
      return write_frame(
          encode_error(id, status::invalid_argument("the data plane carries inference only")));
    }
    net::io_context& io = *t_.io;
    // The reply holds the link weakly: an answer that comes after the connection closed (or
    // after the node stopped, from an actor) goes nowhere and keeps nothing alive.
    core_->handler(std::move(*req), [weak = weak_from_this(), core = core_, &io,
                                     id](result<infer_result> r) {
      std::string bytes = r ? encode_response(id, *r) : encode_error(id, r.error());
      core->run_on(io, [weak, bytes = std::move(bytes)]() mutable {
        if (auto self = weak.lock()) self->write_frame(std::move(bytes));
      });
    });
  }

  // Queues one frame; frames queued in the same round go out in one write.
  void write_frame(std::string_view payload) {
    if (closed()) return;
    append_frame(next_, payload);
    if (writing_ || flush_posted_) return;
    flush_posted_ = true;
    net::post(*t_.io, [self = shared_from_this()] {
      self->flush_posted_ = false;
      self->flush();
    });
  }

  void flush() {
    if (closed() || writing_ || next_.empty()) return;
    std::swap(out_, next_);
    writing_ = true;
    stream_.async_write(net::buffer(out_), [self = shared_from_this()](const error_code& ec,
                                                                        size_t) {
      self->writing_ = false;
      self->out_.clear();
      if (self->closed()) return;
      if (ec) return self->fail("write failed: " + ec.message());
      if (self->refusing_) return self->fail("refused");
      self->flush();
    });
  }

  // While requests are in flight, every sweep_interval: an attempt past its request's deadline
  // is over; one older than hedge_after is hedged once (core::hedge). A connection that has read
  // nothing for hedge_after while such an attempt waited is stuck (a lossy link's retransmission
  // backoff, a wedged peer): it is retired, so new requests and a hedge to the same holder go
  // over a fresh one, and closes once its own attempts are over.
  void arm_sweep() {
    if (sweeping_ || phase_ != phase::ready) return;
    sweeping_ = true;
    timer_.expires_after(sweep_interval);
    timer_.async_wait([self = shared_from_this()](const error_code& ec) {
      self->sweeping_ = false;
      if (ec || self->closed()) return;
      self->sweep();
    });
  }

  void sweep() {
    const auto now = steady::now();
    const auto hedge_after = core_->options.hedge_after;
    std::vector<std::pair<job_ptr, std::string>> expired;
    std::vector<job_ptr> slow;
    for (auto it = pending_.begin(); it != pending_.end();) {
      attempt& a = it->second;
      if (!a.job->done) {  // answered by another attempt
        it = pending_.erase(it);
      } else if (now >= a.job->deadline) {
        const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - a.sent);
        expired.emplace_back(std::move(a.job), who() + ": no answer within " +
                                                   std::to_string(waited.count()) + " ms");
        it = pending_.erase(it);
      } else {
        if (!a.hedged && now - a.sent >= hedge_after) {
          a.hedged = true;
          slow.push_back(a.job);
        }
        ++it;
      }
    }
    const bool stuck = !slow.empty() && now - last_read_ >= hedge_after;
    if (stuck) retire(hedge_after);
    for (auto& [job, why] : expired) core_->attempt_failed(t_, job, why);
    for (auto& job : slow) core_->hedge(t_, job, stuck ? &peer_ : nullptr);
    if (closed() || close_if_retired_and_idle()) return;
    if (!pending_.empty()) arm_sweep();
  }

  // Takes this connection out of the map new requests use (sweep says when).
  void retire(std::chrono::milliseconds quiet) {
    auto it = t_.out.find(peer_.data_address);
    if (it == t_.out.end() || it->second.get() != this) return;  // retired already
    retired_ = true;
    t_.retired.insert(it->second);
    t_.out.erase(it);
    if (core_->should_log("stuck " + peer_.data_address)) {
      log_warn(
          "data plane: a connection to a peer carried nothing back; new requests and slow "
          "ones go over a fresh connection",
          {{"peer", who()},
           {"address", peer_.data_address},
           {"quiet_ms", quiet.count()},
           {"in_flight", pending_.size()}});
    }
  }

  // A retired connection closes once nothing waits on it. Returns whether it closed.
  bool close_if_retired_and_idle() {
    if (!retired_ || !pending_.empty() || !waiting_.empty()) return false;
    fail("retired");
    return true;
  }

  std::shared_ptr<data_plane::core> core_;
  thread_links& t_;
  const bool outbound_;
  peer_info peer_;
  stream stream_;
  net::steady_timer timer_;  // the handshake deadline, then the in-flight sweep
  phase phase_ = phase::connecting;
  int step_ = 0;             // handshake frames seen
  std::string nonce_;        // the client's nonce
  std::string server_nonce_;
  bool refusing_ = false;
  bool sweeping_ = false;
  bool retired_ = false;  // client end: in t_.retired, taking no new requests
  std::vector<char> in_;
  size_t in_used_ = 0;
  std::string out_;          // being written
  std::string next_;         // queued for the next write
  bool writing_ = false;
  bool flush_posted_ = false;
  steady::time_point last_read_ = steady::now();   // bytes last came in
  std::unordered_map<uint64_t, attempt> pending_;  // client end: sent, not answered
  std::vector<job_ptr> waiting_;                   // client end: waiting for the handshake
};

}  // namespace

void data_plane::core::do_accept() {
  const size_t i = next_accept++ % contexts.size();
  acceptor->async_accept(
      *contexts[i], [self = shared_from_this(), i](const error_code& ec, tcp::socket socket) {
        if (self->stopped.load() || !self->acceptor->is_open()) return;
        if (!ec) {
          net::io_context& io = *self->contexts[i];
          // The socket belongs to context i; the link is made and started on its thread.
          auto holder = std::make_shared<tcp::socket>(std::move(socket));
          self->post_to(io, [self, i, holder]() mutable {
            thread_links& t = *self->threads[i];
            auto l = std::make_shared<link>(self, t, false, peer_info{});
            l->socket() = std::move(*holder);
            t.in.insert(l);
            l->accept_started();
          });
        }
        self->do_accept();
      });
}

void data_plane::core::ask_next(thread_links& t, job_ptr job, bool posted) {
  const peer_info& target = job->targets[job->next++];
  ++job->in_flight;
  if (!posted) return send(t, std::move(job), target);
  net::post(*t.io, [self = shared_from_this(), &t, job, &target] { self->send(t, job, target); });
}

void data_plane::core::send(thread_links& t, job_ptr job, const peer_info& target) {
  this_io = t.io;
  std::shared_ptr<link> l;
  auto it = t.out.find(target.data_address);
  if (it != t.out.end() && !it->second->closed()) {
    l = it->second;
  } else {
    l = std::make_shared<link>(shared_from_this(), t, true, target);
    t.out[target.data_address] = l;
    l->connect();  // fails at once only on an address that does not parse
  }
  if (l->closed()) {
    return attempt_failed(
        t, std::move(job),
        target.name + ": its data address " + target.data_address + " is not HOST:PORT");
  }
  l->send(std::move(job));
}

void data_plane::core::attempt_failed(thread_links& t, job_ptr job, const std::string& why) {
  if (!job->done) return;  // answered already
  --job->in_flight;
  if (!why.empty()) job->errors += (job->errors.empty() ? "" : "; ") + why;
  if (stopped.load()) {
    return finish(job, status::unavailable("this node is stopping"));
  }
  if (job->next < job->targets.size()) {
    if (options.metrics) options.metrics->forward_retries.fetch_add(1, std::memory_order_relaxed);
    return ask_next(t, std::move(job), true);
  }
  if (job->in_flight > 0) return;  // a slower attempt may still answer
  if (job->refusal) return finish(job, *job->refusal);
  finish(job, status::unavailable("no node holding " + job->model.str() + " version " +
                                  std::to_string(job->version) + " answered (" + job->errors +
                                  "); retry in a moment"));
}

void data_plane::core::hedge(thread_links& t, job_ptr job, const peer_info* stuck_on) {
  if (!job->done || stopped.load()) return;
  if (job->next < job->targets.size()) {
    if (options.metrics) options.metrics->forward_retries.fetch_add(1, std::memory_order_relaxed);
    return ask_next(t, std::move(job), true);
  }
  // Once: a holder silent on a fresh connection too is wedged, not its connection.
  if (stuck_on == nullptr || job->asked_again) return;
  job->asked_again = true;
  if (options.metrics) options.metrics->forward_retries.fetch_add(1, std::memory_order_relaxed);
  ++job->in_flight;
  net::post(*t.io, [self = shared_from_this(), &t, job, target = *stuck_on] {
    self->send(t, job, target);
  });
}

data_plane::data_plane(data_plane_options options) : core_(std::make_shared<core>()) {
  core_->options = std::move(options);
}

data_plane::~data_plane() {
  stop();
  if (core_->listen_fd >= 0) ::close(core_->listen_fd);
}

status data_plane::listen() {
  auto& c = *core_;
  const auto& o = c.options;
  if (!o.tls_certificate.empty()) {
    try {
      for (auto method : {ssl::context::tls_server, ssl::context::tls_client}) {
        auto& ctx = method == ssl::context::tls_server ? c.tls_server.emplace(method)
                                                       : c.tls_client.emplace(method);
        ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                        ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                        ssl::context::no_tlsv1_1);
        ctx.use_certificate_chain_file(o.tls_certificate);
        ctx.use_private_key_file(o.tls_key, ssl::context::pem);
        ctx.load_verify_file(o.tls_ca);
        ctx.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
      }
    } catch (const boost::system::system_error& e) {
      return status::invalid_argument(std::string("data plane TLS: ") + e.what());
    }
  }
  // Bound on a context of its own, then handed to the I/O threads' first context in start().
  net::io_context io;
  auto acceptor = open_listener(io, o.host, o.port, "data_port");
  if (!acceptor) return acceptor.error();
  error_code ec;
  const tcp::endpoint bound = acceptor->local_endpoint(ec);
  if (!ec) c.listen_fd = acceptor->release(ec);
  if (ec) {
    return status::unavailable("cannot listen on " + o.host + ":" + std::to_string(o.port) +
                               " (data_port): " + ec.message());
  }
  c.port = bound.port();
  c.listen_protocol_v6 = bound.protocol() == tcp::v6();
  return status::ok();
}

void data_plane::start(std::vector<net::io_context*> contexts, data_plane_handler handler) {
  auto& c = *core_;
  c.handler = std::move(handler);
  c.contexts = std::move(contexts);
  for (auto* io : c.contexts) {
    auto t = std::make_unique<thread_links>();
    t->io = io;
    c.threads.push_back(std::move(t));
  }
  c.acceptor.emplace(*c.contexts.front());
  error_code ec;
  c.acceptor->assign(c.listen_protocol_v6 ? tcp::v6() : tcp::v4(), c.listen_fd, ec);
  c.listen_fd = -1;
  c.started.store(true);
  if (ec) {
    log_error("data plane: cannot take over its listening socket", {{"error", ec.message()}});
    return;
  }
  // The accept loop starts on its own thread (the acceptor belongs to it).
  c.post_to(*c.contexts.front(), [self = core_] { self->do_accept(); });
}

uint16_t data_plane::port() const { return core_->port; }

void data_plane::forward(std::vector<peer_info> targets, infer_request req,
                         std::function<void(result<infer_result>)> done) {
  auto& c = *core_;
  if (!c.started.load() || c.stopped.load() || targets.empty()) {
    return done(status::unavailable("this node cannot forward " + req.id.str() + " now"));
  }
  auto job = std::make_shared<forward_job>();
  job->model = req.id;
  job->version = req.version.value_or(0);
  job->targets = std::move(targets);
  job->deadline = steady::now() + c.options.forward_timeout;
  job->done = std::move(done);
  auto start = [core = core_, job, req = std::move(req)](thread_links& t) mutable {
    job->id = t.next_id++;
    job->request = std::make_shared<const std::string>(encode_request(job->id, api_call{std::move(req)}));
    core->ask_next(t, job, false);
  };
  if (thread_links* t = c.this_thread()) return start(*t);
  const size_t i = c.next_post.fetch_add(1, std::memory_order_relaxed) % c.threads.size();
  thread_links& t = *c.threads[i];
  if (!c.post_to(*t.io, [start = std::move(start), &t]() mutable { start(t); })) {
    c.finish(job, status::unavailable("this node is stopping"));
  }
}

void data_plane::peers_changed(std::shared_ptr<const peer_directory> peers) {
  auto& c = *core_;
  if (!c.started.load() || !peers) return;
  for (auto& tp : c.threads) {
    thread_links* t = tp.get();
    c.post_to(*t->io, [t, peers] {
      std::vector<std::shared_ptr<link>> gone;
      auto listed = [&](const link& l) {
        auto it = peers->alive.find(l.peer().id);
        return it != peers->alive.end() && it->second.data_address == l.peer().data_address;
      };
      for (auto& [address, l] : t->out) {
        if (!listed(*l)) gone.push_back(l);
      }
      for (auto& l : t->retired) {
        if (!listed(*l)) gone.push_back(l);
      }
      for (auto& l : gone) l->fail("no longer alive in the member table");
    });
  }
}

void data_plane::stop() {
  auto& c = *core_;
  if (c.stopped.exchange(true)) return;
  while (c.posting.load() != 0) std::this_thread::yield();
  if (!c.started.load()) return;
  // Each thread closes its own links; stop() waits for all of them.
  struct countdown {
    std::mutex m;
    std::condition_variable cv;
    size_t left = 0;
  };
  auto done = std::make_shared<countdown>();
  done->left = c.threads.size();
  for (auto& tp : c.threads) {
    thread_links* t = tp.get();
    const bool first = t == c.threads.front().get();
    net::post(*t->io, [core = core_, done, t, first] {
      if (first && core->acceptor) {
        error_code ignored;
        core->acceptor->close(ignored);
      }
      std::vector<std::shared_ptr<link>> all;
      for (auto& [a, l] : t->out) all.push_back(l);
      for (auto& l : t->in) all.push_back(l);
      for (auto& l : t->retired) all.push_back(l);
      for (auto& l : all) l->fail("this node is stopping");
      t->out.clear();
      t->in.clear();
      t->retired.clear();
      std::lock_guard<std::mutex> lock(done->m);
      if (--done->left == 0) done->cv.notify_one();
    });
  }
  std::unique_lock<std::mutex> lock(done->m);
  // The threads run until the HTTP server stops, after this; a bound keeps a wedged thread
  // from hanging the node's exit.
  done->cv.wait_for(lock, std::chrono::seconds(5), [&] { return done->left == 0; });
}

}  // namespace shoal
