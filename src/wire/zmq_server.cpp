#include "shoal/wire/zmq_server.hpp"

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <exception>
#include <iterator>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "shoal/base/log.hpp"
#include "shoal/serving/overload.hpp"

namespace shoal {
namespace {

constexpr const char* reply_endpoint = "inproc://shoal-zmq-replies";

// How many messages one socket may drain before the loop looks at the other: keeps replies flowing
// while a burst of requests arrives, and the other way round.
constexpr int drain_batch = 256;

// The respond side of the reply pipe, shared by every respond callback. Outlives the server when a
// callback does; stop() closes the socket so that later replies are dropped.
struct reply_channel {
  std::mutex mu;
  std::optional<zmq::socket_t> push;  // guarded by mu; empty once stopped
};

std::string error_text(const zmq::error_t& e) { return e.what(); }

// Returns true when the frames preceding the body form an envelope we can route a reply with:
// the identity alone (DEALER), or frames ending in an empty delimiter (REQ, possibly via proxies).
bool routable(const std::vector<zmq::message_t>& frames) {
  if (frames.size() < 2) return false;
  return frames.size() == 2 || frames[frames.size() - 2].size() == 0;
}

}  // namespace

struct zmq_server::impl {
  zmq::context_t ctx;
  zmq::socket_t router;
  zmq::socket_t pull;
  std::shared_ptr<reply_channel> channel = std::make_shared<reply_channel>();
  zmq_handler handler;
  std::function<void()> after_requests;  // options.after_requests
  std::function<void(double, bool)> on_lag;  // options.on_lag
  std::chrono::steady_clock::duration lag_probe_interval;

  lag_probe_state probe;  // on_lag's; touched by the I/O thread only
  std::thread io;
  std::atomic<uint64_t> dropped{0};
  std::string endpoint;
  uint16_t port = 0;
  std::mutex stop_mu;
  bool stopped = false;

  // The I/O thread: the only user of `router` and `pull` until it returns.
  void run() {
    zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0},
                               {pull.handle(), 0, ZMQ_POLLIN, 0}};
    bool running = true;
    while (running) {
      try {
        zmq::poll(items, 2, poll_timeout());
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;
        if (e.num() != ETERM) log_error("zmq server: poll failed", {{"error", error_text(e)}});
        break;  // ETERM: stop() shut the context down
      }
      if (probe.armed() && std::chrono::steady_clock::now() >= probe.due()) fire_probe();
      // Replies first: they finish work that is already done.
      if ((items[1].revents & ZMQ_POLLIN) != 0) running = send_replies();
      if (running && (items[0].revents & ZMQ_POLLIN) != 0) {
        running = take_requests();
        if (after_requests) run_after_requests();
      }
    }
    router.close();
    pull.close();
  }

  // Until the probe is due (rounded up to poll's milliseconds), or forever when none is armed.
  std::chrono::milliseconds poll_timeout() const {
    if (!probe.armed()) return std::chrono::milliseconds(-1);
    auto left = probe.due() - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) return std::chrono::milliseconds(0);
    return std::chrono::ceil<std::chrono::milliseconds>(left);
  }

  // A request was taken: probe the thread's lag unless a probe is under way.
  void note_request() {
    if (on_lag && probe.note_request()) probe.arm(lag_probe_interval);
  }

  void fire_probe() {
    const auto reading = probe.fire();
    try {
      on_lag(reading.lag_ms, reading.idle);
    } catch (...) {
      log_error("zmq server: on_lag threw");
    }
    if (!reading.idle) probe.arm(lag_probe_interval);
  }

  void run_after_requests() {
    try {
      after_requests();
    } catch (const std::exception& e) {
      log_error("zmq server: after_requests threw", {{"error", e.what()}});
    } catch (...) {
      log_error("zmq server: after_requests threw");
    }
  }

  // Moves queued replies from the pipe to the ROUTER. Returns false when the context is ending.
  bool send_replies() {
    for (int n = 0; n < drain_batch; ++n) {
      std::vector<zmq::message_t> frames;
      try {
        if (!zmq::recv_multipart(pull, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
          return true;
        }
      } catch (const zmq::error_t& e) {
        return e.num() != ETERM;
      }
      for (size_t i = 0; i < frames.size(); ++i) {
        auto more = i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
        try {
          // A ROUTER never blocks: it drops a reply to a peer that is gone or over its
          // high-water mark. The client then times out, which is what it would see anyway.
          (void)router.send(frames[i], more | zmq::send_flags::dontwait);
        } catch (const zmq::error_t& e) {
          if (e.num() == ETERM) return false;
          log_warn("zmq server: reply dropped", {{"error", error_text(e)}});
          break;
        }
      }
    }
    return true;
  }

  // Hands arrived requests to the handler. Returns false when the context is ending.
  bool take_requests() {
    for (int n = 0; n < drain_batch; ++n) {
      std::vector<zmq::message_t> frames;
      try {
        if (!zmq::recv_multipart(router, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
          return true;
        }
      } catch (const zmq::error_t& e) {
        if (e.num() == ETERM) return false;
        ++dropped;  // e.g. a message that vanished with its peer mid-way
        continue;
      }
      if (!routable(frames)) {
        ++dropped;
        continue;
      }
      std::vector<std::string> envelope;
      envelope.reserve(frames.size() - 1);
      for (size_t i = 0; i + 1 < frames.size(); ++i) envelope.push_back(frames[i].to_string());
      std::string body = frames.back().to_string();
      frames.clear();
      note_request();
      dispatch(std::move(envelope), std::move(body));
    }
    return true;
  }

  void dispatch(std::vector<std::string> envelope, std::string body) {
    auto answered = std::make_shared<std::atomic<bool>>(false);
    zmq_respond respond = [ch = channel, envelope = std::move(envelope),
                           answered](std::string reply) {
      if (answered->exchange(true)) return;
      std::lock_guard<std::mutex> lock(ch->mu);
      if (!ch->push) return;  // stopped
      try {
        for (const auto& frame : envelope) {
          (void)ch->push->send(zmq::buffer(frame), zmq::send_flags::sndmore);
        }
        (void)ch->push->send(zmq::message_t(std::move(reply)), zmq::send_flags::none);
      } catch (const zmq::error_t&) {
        // Only when the context is ending: the reply is dropped like any after stop().
      }
    };
    try {
      handler(std::move(body), std::move(respond));
    } catch (const std::exception& e) {
      log_error("zmq server: the request handler threw", {{"error", e.what()}});
    } catch (...) {
      log_error("zmq server: the request handler threw");
    }
  }
};

zmq_server::zmq_server(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

zmq_server::~zmq_server() { stop(); }

result<std::unique_ptr<zmq_server>> zmq_server::start(zmq_server_options options,
                                                      zmq_handler handler) {
  bool ipv6 = options.host.find(':') != std::string::npos;
  std::string host = ipv6 ? "[" + options.host + "]" : options.host;
  std::string address =
      "tcp://" + host + ":" + (options.port == 0 ? std::string("*") : std::to_string(options.port));

  auto p = std::make_unique<impl>();
  p->handler = std::move(handler);
  p->after_requests = std::move(options.after_requests);
  p->on_lag = std::move(options.on_lag);
  p->lag_probe_interval = options.lag_probe_interval;
  try {
    p->router = zmq::socket_t(p->ctx, zmq::socket_type::router);
    p->router.set(zmq::sockopt::linger, 0);
    p->router.set(zmq::sockopt::maxmsgsize, options.max_message_bytes == 0
                                                ? int64_t(-1)
                                                : int64_t(options.max_message_bytes));
    if (ipv6) p->router.set(zmq::sockopt::ipv6, 1);
    p->pull = zmq::socket_t(p->ctx, zmq::socket_type::pull);
    p->pull.set(zmq::sockopt::linger, 0);
    p->pull.set(zmq::sockopt::rcvhwm, 0);
    p->pull.bind(reply_endpoint);
    zmq::socket_t push(p->ctx, zmq::socket_type::push);
    push.set(zmq::sockopt::linger, 0);
    push.set(zmq::sockopt::sndhwm, 0);
    push.connect(reply_endpoint);
    p->channel->push = std::move(push);
  } catch (const zmq::error_t& e) {
    return status::unavailable("cannot set up ZeroMQ sockets for " + address + ": " +
                               error_text(e));
  }
  try {
    p->router.bind(address);
  } catch (const zmq::error_t& e) {
    std::string hint = e.num() == EADDRINUSE ? " (is another node running there?)" : "";
    return status::unavailable("cannot listen on " + address + ": " + error_text(e) + hint);
  }
  try {
    p->endpoint = p->router.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return status::unavailable("cannot read the endpoint bound for " + address + ": " +
                               error_text(e));
  }
  auto colon = p->endpoint.rfind(':');
  unsigned long port =
      colon == std::string::npos ? 0 : std::strtoul(p->endpoint.c_str() + colon + 1, nullptr, 10);
  if (port == 0 || port > 65535) {
    return status::internal("cannot tell the port of " + p->endpoint);
  }
  p->port = uint16_t(port);
  try {
    impl* raw = p.get();
    p->io = std::thread([raw] { raw->run(); });
  } catch (const std::system_error& e) {
    return status::unavailable(std::string("cannot start the ZeroMQ I/O thread: ") + e.what());
  }
  return std::unique_ptr<zmq_server>(new zmq_server(std::move(p)));
}

uint16_t zmq_server::port() const { return impl_->port; }

const std::string& zmq_server::endpoint() const { return impl_->endpoint; }

uint64_t zmq_server::dropped_messages() const { return impl_->dropped.load(); }

void zmq_server::stop() {
  if (!impl_) return;
  std::lock_guard<std::mutex> stop_lock(impl_->stop_mu);
  if (impl_->stopped) return;
  impl_->stopped = true;
  {
    std::lock_guard<std::mutex> lock(impl_->channel->mu);
    impl_->channel->push.reset();  // closes the socket; later replies are dropped
  }
  // Makes the I/O thread's poll fail with ETERM at once; it then closes its sockets and returns.
  impl_->ctx.shutdown();
  if (impl_->io.joinable()) impl_->io.join();
  impl_->ctx.close();
}

}  // namespace shoal
