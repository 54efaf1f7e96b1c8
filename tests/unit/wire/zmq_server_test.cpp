// Over 500 lines: every case of zmq_server in one suite, so it reads as its specification.
#include "shoal/wire/zmq_server.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "shoal/wire/zmq_client.hpp"
#include "support/busy.hpp"

namespace shoal {
namespace {

using namespace std::chrono_literals;

// Threads that run posted work, each after `delay`: replies come back from other threads, later,
// in whatever order the workers finish.
class worker_pool {
 public:
  explicit worker_pool(int n, std::chrono::milliseconds delay = 0ms) : delay_(delay) {
    for (int i = 0; i < n; ++i) threads_.emplace_back([this] { work(); });
  }
  ~worker_pool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void post(std::function<void()> f) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(f));
    }
    cv_.notify_one();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> f;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return done_ || !queue_.empty(); });
        if (queue_.empty()) return;
        f = std::move(queue_.front());
        queue_.pop_front();
      }
      if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
      f();
    }
  }
  std::chrono::milliseconds delay_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool done_ = false;
  std::vector<std::thread> threads_;
};

std::unique_ptr<zmq_server> start_server(zmq_handler handler, size_t max_message_bytes = 1 << 20) {
  zmq_server_options o;
  o.port = 0;
  o.max_message_bytes = max_message_bytes;
  auto s = zmq_server::start(o, std::move(handler));
  EXPECT_TRUE(s) << s.error().to_string();
  return s ? std::move(s).value() : nullptr;
}

zmq_handler echo_handler(std::atomic<int>* calls = nullptr) {
  return [calls](std::string bytes, zmq_respond respond) {
    if (calls != nullptr) ++*calls;
    respond("re:" + bytes);
  };
}

std::string address_of(const zmq_server& s) { return "127.0.0.1:" + std::to_string(s.port()); }

// A raw ZeroMQ socket of the test's own, with a receive timeout so a failure cannot hang.
zmq::socket_t raw_socket(zmq::context_t& ctx, zmq::socket_type type, const zmq_server& s) {
  zmq::socket_t sock(ctx, type);
  sock.set(zmq::sockopt::linger, 0);
  sock.set(zmq::sockopt::rcvtimeo, 5000);
  sock.connect("tcp://" + address_of(s));
  return sock;
}

std::vector<std::string> send_and_receive(zmq::socket_t& sock,
                                          const std::vector<std::string>& frames) {
  for (size_t i = 0; i < frames.size(); ++i) {
    auto flags = i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
    sock.send(zmq::buffer(frames[i]), flags);
  }
  std::vector<zmq::message_t> reply;
  if (!zmq::recv_multipart(sock, std::back_inserter(reply))) return {"<timeout>"};
  std::vector<std::string> out;
  for (auto& m : reply) out.push_back(m.to_string());
  return out;
}

// The lag probe, as on the HTTP threads: while requests come, the loop reports how late it came
// back to a probe due every millisecond; a handler that keeps the thread working for 5 ms makes it
// late by about that much, one that holds it blocked as long does not (not the thread's own
// backlog); once requests stop, one idle report, then silence. Reports run on the I/O thread.
TEST(zmq_server, the_lag_probe_measures_a_busy_thread_and_reports_idle_once_requests_stop) {
  std::mutex m;
  std::vector<double> busy_lags;
  int idle_reports = 0;
  std::thread::id probe_thread, handler_thread;
  zmq_server_options o;
  o.port = 0;
  o.lag_probe_interval = 1ms;
  o.on_lag = [&](double lag_ms, bool idle) {
    std::lock_guard<std::mutex> lock(m);
    probe_thread = std::this_thread::get_id();
    if (idle) {
      ++idle_reports;
    } else {
      busy_lags.push_back(lag_ms);
    }
  };
  auto started = zmq_server::start(o, [&](std::string bytes, zmq_respond respond) {
    {
      std::lock_guard<std::mutex> lock(m);
      handler_thread = std::this_thread::get_id();
    }
    if (bytes == "work") testing::busy_for_cpu(5ms);
    if (bytes == "blocked") std::this_thread::sleep_for(5ms);
    respond("re:" + bytes);
  });
  ASSERT_TRUE(started) << started.error().to_string();
  auto server = std::move(started).value();
  zmq::context_t ctx;
  auto req = raw_socket(ctx, zmq::socket_type::req, *server);
  auto max_lag_of = [&](const char* slow) {
    {
      std::lock_guard<std::mutex> lock(m);
      busy_lags.clear();
    }
    for (int i = 0; i < 20; ++i) {
      const std::string what = i % 2 == 0 ? slow : "fast";
      EXPECT_EQ(send_and_receive(req, {what}), std::vector<std::string>{"re:" + what});
    }
    std::this_thread::sleep_for(30ms);
    std::lock_guard<std::mutex> lock(m);
    EXPECT_FALSE(busy_lags.empty());
    return busy_lags.empty() ? -1.0 : *std::max_element(busy_lags.begin(), busy_lags.end());
  };
  EXPECT_GE(max_lag_of("work"), 4.0) << "a probe due during 5 ms of work comes 4+ ms late";
  EXPECT_LT(max_lag_of("blocked"), 2.0) << "a blocked thread is not behind on its own work";
  size_t reports = 0;
  {
    std::lock_guard<std::mutex> lock(m);
    EXPECT_GE(idle_reports, 1) << "an idle report after the last request";
    EXPECT_EQ(probe_thread, handler_thread);
    reports = busy_lags.size() + static_cast<size_t>(idle_reports);
  }
  std::this_thread::sleep_for(20ms);
  std::lock_guard<std::mutex> lock(m);
  EXPECT_EQ(busy_lags.size() + static_cast<size_t>(idle_reports), reports)
      << "an idle thread is not probed";
}

TEST(zmq_server, picks_a_port_and_reports_it) {
  auto server = start_server(echo_handler());
  ASSERT_TRUE(server);
  EXPECT_NE(server->port(), 0);
  EXPECT_EQ(server->endpoint(), "tcp://127.0.0.1:" + std::to_string(server->port()));
}

TEST(zmq_server, answers_a_req_client) {
  auto server = start_server(echo_handler());
  zmq::context_t ctx;
  auto req = raw_socket(ctx, zmq::socket_type::req, *server);
  EXPECT_EQ(send_and_receive(req, {"hello"}), std::vector<std::string>{"re:hello"});
  EXPECT_EQ(send_and_receive(req, {"again"}), std::vector<std::string>{"re:again"});
}

TEST(zmq_server, answers_a_dealer_client_with_its_envelope_echoed) {
  auto server = start_server(echo_handler());
  zmq::context_t ctx;
  auto dealer = raw_socket(ctx, zmq::socket_type::dealer, *server);
  EXPECT_EQ(send_and_receive(dealer, {"bare"}), std::vector<std::string>{"re:bare"});
  EXPECT_EQ(send_and_receive(dealer, {"", "req-style"}),
            (std::vector<std::string>{"", "re:req-style"}));
  // As a proxy in front of a REQ client would send it: routing frames, delimiter, body.
  EXPECT_EQ(send_and_receive(dealer, {"hop-1", "hop-2", "", "routed"}),
            (std::vector<std::string>{"hop-1", "hop-2", "", "re:routed"}));
}

TEST(zmq_server, answers_from_another_thread_later) {
  worker_pool workers(1, 30ms);
  auto server = start_server([&workers](std::string bytes, zmq_respond respond) {
    workers.post([bytes, respond] { respond("late:" + bytes); });
  });
  auto client = zmq_client::connect(address_of(*server), 5s);
  ASSERT_TRUE(client);
  auto reply = client->call("q");
  ASSERT_TRUE(reply) << reply.error().to_string();
  EXPECT_EQ(*reply, "late:q");
}

TEST(zmq_server, routes_every_reply_to_its_own_client_under_load) {
  worker_pool workers(4);
  auto server = start_server([&workers](std::string bytes, zmq_respond respond) {
    workers.post([bytes, respond] { respond("re:" + bytes); });
  });
  constexpr int clients = 20;
  constexpr int requests = 50;
  std::atomic<int> matched{0};
  std::vector<std::string> failures(clients);
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      auto client = zmq_client::connect(address_of(*server), 5s);
      if (!client) {
        failures[c] = client.error().to_string();
        return;
      }
      for (int r = 0; r < requests; ++r) {
        std::string body = "client-" + std::to_string(c) + "-request-" + std::to_string(r);
        auto reply = client->call(body);
        if (!reply) {
          failures[c] = reply.error().to_string();
          return;
        }
        if (*reply != "re:" + body) {
          failures[c] = "asked " + body + ", got " + *reply;
          return;
        }
        ++matched;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int c = 0; c < clients; ++c) EXPECT_EQ(failures[c], "") << "client " << c;
  EXPECT_EQ(matched.load(), clients * requests);
}

TEST(zmq_server, routes_pipelined_requests_answered_out_of_order) {
  // The handler holds every reply until all have arrived, then answers newest first.
  constexpr int n = 100;
  std::mutex mu;
  std::vector<std::pair<std::string, zmq_respond>> held;
  auto server = start_server([&](std::string bytes, zmq_respond respond) {
    std::lock_guard<std::mutex> lock(mu);
    held.emplace_back(std::move(bytes), std::move(respond));
    if (held.size() == n) {
      for (auto it = held.rbegin(); it != held.rend(); ++it) it->second("re:" + it->first);
    }
  });
  zmq::context_t ctx;
  auto dealer = raw_socket(ctx, zmq::socket_type::dealer, *server);
  std::set<std::string> expected;
  for (int i = 0; i < n; ++i) {
    std::string body = "p" + std::to_string(i);
    dealer.send(zmq::buffer(body), zmq::send_flags::none);
    expected.insert("re:" + body);
  }
  std::set<std::string> got;
  std::string first;
  for (int i = 0; i < n; ++i) {
    zmq::message_t m;
    ASSERT_TRUE(dealer.recv(m)) << "reply " << i << " missing";
    if (i == 0) first = m.to_string();
    got.insert(m.to_string());
  }
  EXPECT_EQ(got, expected);
  EXPECT_EQ(first, "re:p99");
}

// Writes `bytes` to the port over plain TCP, then waits until the server hangs up.
void send_raw_tcp(uint16_t port, const std::string& bytes) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ssize_t sent = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  EXPECT_GT(sent, 0);
  ::shutdown(fd, SHUT_WR);
  char buf[512];
  while (::recv(fd, buf, sizeof buf, 0) > 0) {
  }
  ::close(fd);
}

TEST(zmq_server, survives_garbage_on_a_raw_tcp_connection) {
  std::atomic<int> calls{0};
  auto server = start_server(echo_handler(&calls));
  std::string noise;
  for (int i = 0; i < 4096; ++i) noise += char((i * 131 + 7) & 0xFF);
  send_raw_tcp(server->port(), "GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n");
  send_raw_tcp(server->port(), noise);
  // A ZMTP 3.0 signature that goes on with nonsense.
  send_raw_tcp(server->port(), std::string("\xFF\0\0\0\0\0\0\0\x01\x7F\x03\x00NULL", 15) + noise);
  send_raw_tcp(server->port(), std::string("\xFF\0\0", 3));
  // libzmq reads a peer whose first byte is not 0xFF as ZMTP 1.0, so some garbage may arrive as
  // well-framed messages: those reach the handler like any bad request (the node answers them with
  // an error). What matters is that the server is still serving.
  auto client = zmq_client::connect(address_of(*server), 5s);
  ASSERT_TRUE(client);
  auto reply = client->call("still there?");
  ASSERT_TRUE(reply) << reply.error().to_string();
  EXPECT_EQ(*reply, "re:still there?");
}

TEST(zmq_server, drops_a_malformed_envelope_and_keeps_serving) {
  std::atomic<int> calls{0};
  auto server = start_server(echo_handler(&calls));
  zmq::context_t ctx;
  auto dealer = raw_socket(ctx, zmq::socket_type::dealer, *server);
  dealer.send(zmq::buffer(std::string("no-delimiter")), zmq::send_flags::sndmore);
  dealer.send(zmq::buffer(std::string("body")), zmq::send_flags::none);
  // Same connection, so this one is read after the malformed one.
  EXPECT_EQ(send_and_receive(dealer, {"ok"}), std::vector<std::string>{"re:ok"});
  EXPECT_EQ(server->dropped_messages(), 1u);
  EXPECT_EQ(calls.load(), 1);
}

TEST(zmq_server, drops_an_oversize_message_and_keeps_serving) {
  std::atomic<int> calls{0};
  auto server = start_server(echo_handler(&calls), 1024);
  zmq::context_t ctx;
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  // Watch the connection: libzmq hangs up on a peer that sends more than ZMQ_MAXMSGSIZE.
  ASSERT_EQ(zmq_socket_monitor(dealer.handle(), "inproc://oversize-monitor",
                               ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED),
            0);
  zmq::socket_t monitor(ctx, zmq::socket_type::pair);
  monitor.set(zmq::sockopt::rcvtimeo, 5000);
  monitor.connect("inproc://oversize-monitor");
  dealer.connect("tcp://" + address_of(*server));
  dealer.send(zmq::buffer(std::string(4096, 'x')), zmq::send_flags::none);
  bool disconnected = false;
  while (!disconnected) {
    std::vector<zmq::message_t> event;
    ASSERT_TRUE(zmq::recv_multipart(monitor, std::back_inserter(event))) << "no disconnect seen";
    ASSERT_GE(event[0].size(), sizeof(uint16_t));
    uint16_t id = 0;
    std::memcpy(&id, event[0].data(), sizeof id);
    disconnected = id == ZMQ_EVENT_DISCONNECTED;
  }
  EXPECT_EQ(calls.load(), 0);
  auto client = zmq_client::connect(address_of(*server), 5s);
  ASSERT_TRUE(client);
  auto reply = client->call(std::string(1000, 'y'));
  ASSERT_TRUE(reply) << reply.error().to_string();
  EXPECT_EQ(*reply, "re:" + std::string(1000, 'y'));
  EXPECT_EQ(calls.load(), 1);
}

TEST(zmq_server, ignores_a_second_respond) {
  auto server = start_server([](std::string bytes, zmq_respond respond) {
    respond("first:" + bytes);
    respond("second:" + bytes);
  });
  zmq::context_t ctx;
  auto dealer = raw_socket(ctx, zmq::socket_type::dealer, *server);
  EXPECT_EQ(send_and_receive(dealer, {"a"}), std::vector<std::string>{"first:a"});
  EXPECT_EQ(send_and_receive(dealer, {"b"}), std::vector<std::string>{"first:b"});
}

TEST(zmq_server, keeps_serving_when_the_handler_throws) {
  auto server = start_server([](std::string bytes, zmq_respond respond) {
    if (bytes == "boom") throw std::runtime_error("handler bug");
    respond("re:" + bytes);
  });
  auto client = zmq_client::connect(address_of(*server), 5s);
  ASSERT_TRUE(client);
  auto lost = zmq_client::connect(address_of(*server), 200ms);
  ASSERT_TRUE(lost);
  EXPECT_EQ(lost->call("boom").error().code(), status_code::unavailable);
  auto reply = client->call("fine");
  ASSERT_TRUE(reply) << reply.error().to_string();
  EXPECT_EQ(*reply, "re:fine");
}

TEST(zmq_server, stops_promptly_with_work_outstanding) {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<zmq_respond> pending;
  auto server = start_server([&](std::string, zmq_respond respond) {
    std::lock_guard<std::mutex> lock(mu);
    pending.push_back(std::move(respond));
    cv.notify_all();
  });
  zmq::context_t ctx;
  auto dealer = raw_socket(ctx, zmq::socket_type::dealer, *server);
  dealer.send(zmq::buffer(std::string("never answered")), zmq::send_flags::none);
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return !pending.empty(); }));
  }
  auto t0 = std::chrono::steady_clock::now();
  server->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms);
  server->stop();            // idempotent
  pending[0]("after stop");  // dropped, no crash
  server.reset();
  pending[0]("after destruction");  // the callback outlives the server safely
}

TEST(zmq_server, reports_a_port_in_use_as_unavailable) {
  auto first = start_server(echo_handler());
  zmq_server_options o;
  o.port = first->port();
  auto second = zmq_server::start(o, echo_handler());
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), status_code::unavailable);
  EXPECT_NE(second.error().message().find("cannot listen on tcp://127.0.0.1:" +
                                          std::to_string(first->port())),
            std::string::npos)
      << second.error().message();
  EXPECT_NE(second.error().message().find("Address already in use"), std::string::npos)
      << second.error().message();
}

TEST(zmq_server, reports_an_unknown_interface_as_unavailable) {
  zmq_server_options o;
  o.host = "no-such-interface.invalid";
  o.port = 0;
  auto s = zmq_server::start(o, echo_handler());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), status_code::unavailable);
  EXPECT_NE(s.error().message().find("tcp://no-such-interface.invalid:*"), std::string::npos)
      << s.error().message();
}

// ---- zmq_client --------------------------------------------------------------------------------

TEST(zmq_client, times_out_where_nothing_answers) {
  uint16_t port = 0;
  {
    auto server = start_server(echo_handler());
    port = server->port();
  }  // closed: nothing listens there now
  auto client = zmq_client::connect("127.0.0.1:" + std::to_string(port), 200ms);
  ASSERT_TRUE(client);
  auto t0 = std::chrono::steady_clock::now();
  auto reply = client->call("anyone?");
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().code(), status_code::unavailable);
  EXPECT_EQ(reply.error().message(), "no answer from node 127.0.0.1:" + std::to_string(port) +
                                         " within 200ms: is `shoal node` running there?");
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 2s);
}

TEST(zmq_client, a_late_reply_never_answers_the_next_call) {
  std::mutex mu;
  zmq_respond held;
  auto server = start_server([&](std::string bytes, zmq_respond respond) {
    std::lock_guard<std::mutex> lock(mu);
    if (bytes == "slow") {
      held = std::move(respond);
      return;
    }
    if (held) held("re:slow");  // answers the first call, which has given up by now
    respond("re:" + bytes);
  });
  auto client = zmq_client::connect(address_of(*server), 300ms);
  ASSERT_TRUE(client);
  auto first = client->call("slow");
  EXPECT_EQ(first.error().code(), status_code::unavailable);
  auto second = client->call("fast");
  ASSERT_TRUE(second) << second.error().to_string();
  EXPECT_EQ(*second, "re:fast");
}

TEST(zmq_client, refuses_bad_addresses) {
  for (const char* bad :
       {"", "127.0.0.1", "127.0.0.1:", ":7421", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:http",
        "tcp://127.0.0.1:7421", "::1:7421", "[::1]7421", "host name:7421"}) {
    auto c = zmq_client::connect(bad, 1s);
    ASSERT_FALSE(c) << bad;
    EXPECT_EQ(c.error().code(), status_code::invalid_argument) << bad;
    EXPECT_EQ(c.error().message().rfind("invalid node address '", 0), 0u) << c.error().message();
  }
  EXPECT_EQ(parse_host_port("127.0.0.1:x").error().message(),
            "invalid node address '127.0.0.1:x': the port must be 1..65535");
  EXPECT_EQ(parse_host_port("localhost").error().message(),
            "invalid node address 'localhost': expected HOST:PORT, e.g. 127.0.0.1:7421");
}

TEST(zmq_client, parses_host_port) {
  auto a = parse_host_port("127.0.0.1:7421");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 7421);
  auto b = parse_host_port("node-3.internal:1");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->str(), "node-3.internal:1");
  auto c = parse_host_port("[::1]:65535");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->str(), "[::1]:65535");
}

TEST(zmq_client, reaches_a_server_on_ipv6_loopback) {
  zmq_server_options o;
  o.host = "::1";
  o.port = 0;
  auto server = zmq_server::start(o, echo_handler());
  if (!server) GTEST_SKIP() << "no IPv6 loopback here: " << server.error().message();
  auto client = zmq_client::connect("[::1]:" + std::to_string((*server)->port()), 5s);
  ASSERT_TRUE(client);
  auto reply = client->call("v6");
  ASSERT_TRUE(reply) << reply.error().to_string();
  EXPECT_EQ(*reply, "re:v6");
}

}  // namespace
}  // namespace shoal
