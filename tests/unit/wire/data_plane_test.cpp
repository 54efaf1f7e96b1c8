// The data plane over real loopback sockets: two or three data planes, each on its own I/O
// threads, the holders' handlers answering from plain code (the front door is tested elsewhere).
// Asserts what a forwarding node relies on: answers matched to their requests with many in
// flight, strangers refused, a dead peer's requests retried on the next holder at once, a slow
// one's hedged on the next holder (its own answer still taken if it comes first), a connection
// that carries nothing back replaced by a fresh one, every request over at forward_timeout and
// answered exactly once, a client's mistake not retried.
#include "shoal/wire/data_plane.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "shoal/cluster/data_plane_protocol.hpp"
#include "shoal/wire/api_codec.hpp"

namespace shoal {
namespace {

using namespace std::chrono_literals;
namespace net = boost::asio;

// I/O threads, as the HTTP server runs them: one io_context each.
class io_threads {
 public:
  explicit io_threads(size_t n) {
    for (size_t i = 0; i < n; ++i) {
      contexts_.push_back(std::make_unique<net::io_context>(1));
      guards_.push_back(net::make_work_guard(*contexts_.back()));
    }
    for (auto& c : contexts_) threads_.emplace_back([io = c.get()] { io->run(); });
  }
  ~io_threads() { stop(); }
  void stop() {
    guards_.clear();
    for (auto& c : contexts_) c->stop();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  std::vector<net::io_context*> contexts() {
    std::vector<net::io_context*> out;
    for (auto& c : contexts_) out.push_back(c.get());
    return out;
  }

 private:
  std::vector<std::unique_ptr<net::io_context>> contexts_;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards_;
  std::vector<std::thread> threads_;
};

// A node's data plane with its own threads. Destroyed in order: the plane stops, then its threads.
struct node {
  node(const std::string& name, const std::string& secret, data_plane_handler handler,
       std::chrono::milliseconds hedge_after = 5000ms,
       std::chrono::milliseconds forward_timeout = 10000ms, size_t io_threads = 2)
      : threads(io_threads) {
    data_plane_options o;
    o.node_id = name;
    o.secret = secret;
    o.hedge_after = hedge_after;
    o.forward_timeout = forward_timeout;
    plane = std::make_unique<data_plane>(o);
    status s = plane->listen();
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    plane->start(threads.contexts(), std::move(handler));
    info.id = name;
    info.name = name;
    info.data_address = "127.0.0.1:" + std::to_string(plane->port());
  }
  ~node() {
    plane->stop();
    threads.stop();
  }
  io_threads threads;
  std::unique_ptr<data_plane> plane;
  peer_info info;
};

infer_request request(const std::string& text) {
  infer_request r;
  r.id = model_id{"acme", "bot"};
  r.version = 1;
  r.texts = {text};
  return r;
}

// Answers each request with its own text as the label, and `who` as the second.
data_plane_handler echo(std::string who, std::atomic<int>* calls = nullptr) {
  return [who, calls](infer_request req, std::function<void(result<infer_result>)> reply) {
    if (calls) ++*calls;
    infer_result r;
    r.id = req.id;
    r.version = req.version.value_or(0);
    r.rows.push_back({prediction{req.texts.at(0), 1.0f}, prediction{who, 0.5f}});
    reply(std::move(r));
  };
}

// Collects answers; waits for a count.
struct answers {
  std::mutex m;
  std::vector<result<infer_result>> got;
  std::vector<std::chrono::steady_clock::time_point> at;
  std::function<void(result<infer_result>)> sink() {
    return [this](result<infer_result> r) {
      std::lock_guard<std::mutex> lock(m);
      got.push_back(std::move(r));
      at.push_back(std::chrono::steady_clock::now());
    };
  }
  bool wait_for(size_t n, std::chrono::milliseconds limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      {
        std::lock_guard<std::mutex> lock(m);
        if (got.size() >= n) return true;
      }
      std::this_thread::sleep_for(2ms);
    }
    return false;
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(m);
    return got.size();
  }
};

TEST(data_plane, answers_match_their_requests_with_many_in_flight_answered_in_any_order) {
  // The holder answers in batches of 50, last request first.
  std::mutex held_m;
  std::vector<std::pair<infer_request, std::function<void(result<infer_result>)>>> held;
  node holder("holder", "k", [&](infer_request req, std::function<void(result<infer_result>)> reply) {
    std::vector<std::pair<infer_request, std::function<void(result<infer_result>)>>> batch;
    {
      std::lock_guard<std::mutex> lock(held_m);
      held.emplace_back(std::move(req), std::move(reply));
      if (held.size() < 50) return;
      batch.swap(held);
    }
    for (auto it = batch.rbegin(); it != batch.rend(); ++it) echo("holder")(it->first, it->second);
  });
  node asker("asker", "k", echo("asker"));
  std::vector<answers> each(200);
  for (int i = 0; i < 200; ++i) {
    asker.plane->forward({holder.info}, request("text " + std::to_string(i)), each[i].sink());
  }
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(each[i].wait_for(1, 5000ms)) << "request " << i << " unanswered";
    ASSERT_TRUE(each[i].got[0].is_ok()) << each[i].got[0].error().to_string();
    EXPECT_EQ(each[i].got[0]->rows.at(0).at(0).label, "text " + std::to_string(i));
    EXPECT_EQ(each[i].got[0]->rows.at(0).at(1).label, "holder");
  }
}

TEST(data_plane, a_stranger_without_the_cluster_secret_is_refused) {
  std::atomic<int> calls{0};
  node holder("holder", "right secret", echo("holder", &calls));
  node stranger("stranger", "wrong secret", echo("stranger"));
  answers a;
  stranger.plane->forward({holder.info}, request("hello"), a.sink());
  ASSERT_TRUE(a.wait_for(1, 5000ms));
  ASSERT_FALSE(a.got[0].is_ok());
  EXPECT_EQ(a.got[0].error().code(), status_code::unavailable);
  EXPECT_NE(a.got[0].error().message().find("cluster secret"), std::string::npos)
      << a.got[0].error().message();
  EXPECT_EQ(calls.load(), 0) << "the holder must not answer a stranger";

  // And the other way: a node with the secret does not send requests to a stranger's port.
  std::atomic<int> stranger_calls{0};
  node fake("fake", "wrong secret", echo("fake", &stranger_calls));
  node member("member", "right secret", echo("member"));
  answers b;
  member.plane->forward({fake.info, holder.info}, request("hello"), b.sink());
  ASSERT_TRUE(b.wait_for(1, 5000ms));
  ASSERT_TRUE(b.got[0].is_ok()) << b.got[0].error().to_string();
  EXPECT_EQ(b.got[0]->rows.at(0).at(1).label, "holder") << "went on to the real holder";
  EXPECT_EQ(stranger_calls.load(), 0);
}

TEST(data_plane, a_dead_peers_requests_go_to_the_next_holder_at_once) {
  // The first holder takes requests and never answers; then it dies.
  std::mutex m;
  std::vector<std::function<void(result<infer_result>)>> never;
  auto silent = std::make_unique<node>(
      "silent", "k", [&](infer_request, std::function<void(result<infer_result>)> reply) {
        std::lock_guard<std::mutex> lock(m);
        never.push_back(std::move(reply));
      });
  node second("second", "k", echo("second"));
  node asker("asker", "k", echo("asker"));
  answers a;
  for (int i = 0; i < 20; ++i) {
    asker.plane->forward({silent->info, second.info}, request(std::to_string(i)), a.sink());
  }
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    std::lock_guard<std::mutex> lock(m);
    if (never.size() == 20) break;
  }
  ASSERT_EQ(a.size(), 0u);
  const auto killed = std::chrono::steady_clock::now();
  silent.reset();  // its connections close, as a kill -9's do
  ASSERT_TRUE(a.wait_for(20, 5000ms));
  for (size_t i = 0; i < 20; ++i) {
    ASSERT_TRUE(a.got[i].is_ok()) << a.got[i].error().to_string();
    EXPECT_EQ(a.got[i]->rows.at(0).at(1).label, "second");
    EXPECT_LT(a.at[i] - killed, 100ms) << "retried at once, not after a timeout";
  }
  {
    std::lock_guard<std::mutex> lock(m);
    for (auto& reply : never) reply(status::unavailable("too late"));  // goes nowhere
  }
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(a.size(), 20u) << "each request answered once";
}

TEST(data_plane, a_peer_no_longer_alive_in_membership_has_its_requests_retried) {
  std::mutex m;
  std::vector<std::function<void(result<infer_result>)>> held;
  node paused("paused", "k", [&](infer_request, std::function<void(result<infer_result>)> reply) {
    std::lock_guard<std::mutex> lock(m);
    held.push_back(std::move(reply));
  });
  node second("second", "k", echo("second"));
  node asker("asker", "k", echo("asker"));
  answers a;
  asker.plane->forward({paused.info, second.info}, request("x"), a.sink());
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    std::lock_guard<std::mutex> lock(m);
    if (!held.empty()) break;
  }
  auto peers = std::make_shared<peer_directory>();
  peers->self_id = "asker";
  peers->alive["second"] = second.info;  // membership declared "paused" dead
  const auto told = std::chrono::steady_clock::now();
  asker.plane->peers_changed(peers);
  ASSERT_TRUE(a.wait_for(1, 5000ms));
  ASSERT_TRUE(a.got[0].is_ok());
  EXPECT_EQ(a.got[0]->rows.at(0).at(1).label, "second");
  EXPECT_LT(a.at[0] - told, 50ms);
  std::lock_guard<std::mutex> lock(m);
  for (auto& reply : held) reply(status::unavailable("late"));
}

TEST(data_plane, a_silent_peer_is_hedged_after_hedge_after_and_its_late_answer_dropped) {
  std::mutex m;
  std::vector<std::pair<infer_request, std::function<void(result<infer_result>)>>> held;
  node slow("slow", "k", [&](infer_request req, std::function<void(result<infer_result>)> reply) {
    std::lock_guard<std::mutex> lock(m);
    held.emplace_back(std::move(req), std::move(reply));
  });
  node second("second", "k", echo("second"));
  node asker("asker", "k", echo("asker"), 200ms);
  answers a;
  const auto sent = std::chrono::steady_clock::now();
  asker.plane->forward({slow.info, second.info}, request("x"), a.sink());
  ASSERT_TRUE(a.wait_for(1, 5000ms));
  EXPECT_GE(a.at[0] - sent, 200ms);
  ASSERT_TRUE(a.got[0].is_ok());
  EXPECT_EQ(a.got[0]->rows.at(0).at(1).label, "second");
  {
    std::lock_guard<std::mutex> lock(m);
    ASSERT_EQ(held.size(), 1u);
    echo("slow")(held[0].first, held[0].second);  // the late answer
  }
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(a.size(), 1u) << "the late answer must not be delivered a second time";
}

TEST(data_plane, a_clients_mistake_is_answered_at_once_and_a_refusal_tries_the_next_holder) {
  std::atomic<int> second_calls{0};
  node says_not_found("nf", "k", [](infer_request, std::function<void(result<infer_result>)> reply) {
    reply(status::not_found("model acme/bot has no version 1"));
  });
  node second("second", "k", echo("second", &second_calls));
  node asker("asker", "k", echo("asker"));
  answers a;
  asker.plane->forward({says_not_found.info, second.info}, request("x"), a.sink());
  ASSERT_TRUE(a.wait_for(1, 5000ms));
  ASSERT_FALSE(a.got[0].is_ok());
  EXPECT_EQ(a.got[0].error().code(), status_code::not_found);
  EXPECT_EQ(second_calls.load(), 0);

  node busy("busy", "k", [](infer_request, std::function<void(result<infer_result>)> reply) {
    reply(status::resource_exhausted("this node is overloaded"));
  });
  answers b;
  asker.plane->forward({busy.info, second.info}, request("y"), b.sink());
  ASSERT_TRUE(b.wait_for(1, 5000ms));
  ASSERT_TRUE(b.got[0].is_ok()) << b.got[0].error().to_string();
  EXPECT_EQ(second_calls.load(), 1);
  answers c;
  asker.plane->forward({busy.info}, request("z"), c.sink());
  ASSERT_TRUE(c.wait_for(1, 5000ms));
  ASSERT_FALSE(c.got[0].is_ok());
  EXPECT_EQ(c.got[0].error().code(), status_code::resource_exhausted)
      << "the last holder's refusal is what the client gets: " << c.got[0].error().to_string();
}

// Holds each request and answers it from another thread `delay` later.
struct late_answers {
  explicit late_answers(std::string who, std::chrono::milliseconds delay)
      : who(std::move(who)), delay(delay) {}
  ~late_answers() {
    for (auto& t : threads) t.join();
  }
  data_plane_handler handler() {
    return [this](infer_request req, std::function<void(result<infer_result>)> reply) {
      std::lock_guard<std::mutex> lock(m);
      ++calls;
      threads.emplace_back([this, req = std::move(req), reply = std::move(reply)] {
        std::this_thread::sleep_for(delay);
        echo(who)(req, reply);
      });
    };
  }
  std::string who;
  std::chrono::milliseconds delay;
  std::mutex m;
  int calls = 0;
  std::vector<std::thread> threads;
};

// Keeps each request it is given and never answers.
struct silent_holder {
  data_plane_handler handler() {
    return [this](infer_request, std::function<void(result<infer_result>)> reply) {
      std::lock_guard<std::mutex> lock(m);
      held.push_back(std::move(reply));
    };
  }
  size_t calls() {
    std::lock_guard<std::mutex> lock(m);
    return held.size();
  }
  std::mutex m;
  std::vector<std::function<void(result<infer_result>)>> held;
};

TEST(data_plane, a_slow_holder_is_hedged_not_abandoned_and_its_answer_wins_when_first) {
  // "slow" answers after 600 ms; "silent" never. A lossy link looks like "slow" from the asker:
  // giving up on it at hedge_after and waiting only on the next holder would fail the request.
  late_answers slow_handler("slow", 600ms);
  node slow("slow", "k", slow_handler.handler());
  silent_holder quiet;
  node silent("silent", "k", quiet.handler());
  node asker("asker", "k", echo("asker"), 200ms, 5000ms);
  answers a;
  const auto sent = std::chrono::steady_clock::now();
  asker.plane->forward({slow.info, silent.info}, request("x"), a.sink());
  ASSERT_TRUE(a.wait_for(1, 5000ms));
  ASSERT_TRUE(a.got[0].is_ok()) << a.got[0].error().to_string();
  EXPECT_EQ(a.got[0]->rows.at(0).at(1).label, "slow");
  EXPECT_GE(a.at[0] - sent, 600ms);
  EXPECT_LT(a.at[0] - sent, 1500ms);
  // The next holder was asked too, after hedge_after (and, silent on its connection, once more
  // over a fresh one at 400 ms, when no holder was left to ask).
  EXPECT_GE(quiet.calls(), 1u);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(a.size(), 1u);
}

TEST(data_plane, when_no_holder_answers_the_request_fails_at_forward_timeout_naming_each) {
  silent_holder quiet1, quiet2;
  node first("first", "k", quiet1.handler());
  node second("second", "k", quiet2.handler());
  node asker("asker", "k", echo("asker"), 100ms, 700ms);
  answers a;
  const auto sent = std::chrono::steady_clock::now();
  asker.plane->forward({first.info, second.info}, request("x"), a.sink());
  ASSERT_TRUE(a.wait_for(1, 5000ms));
  const auto took = a.at[0] - sent;
  EXPECT_GE(took, 700ms);
  EXPECT_LT(took, 1500ms);
  ASSERT_FALSE(a.got[0].is_ok());
  EXPECT_EQ(a.got[0].error().code(), status_code::unavailable);
  const std::string why = a.got[0].error().message();
  EXPECT_NE(why.find("no node holding acme/bot version 1 answered"), std::string::npos) << why;
  EXPECT_NE(why.find("first: no answer within"), std::string::npos) << why;
  EXPECT_NE(why.find("second: no answer within"), std::string::npos) << why;
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(a.size(), 1u) << "answered once";
}

// A TCP relay in front of a holder. Once told, it drops every byte on the connections it has
// relayed so far, both ways: what a sender sees of a connection stuck in retransmission backoff
// on a lossy link (nothing acknowledged, nothing comes back, the socket stays open).
class relay {
 public:
  explicit relay(uint16_t target)
      : target_(target), acceptor_(io_, {net::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    accepting_ = std::thread([this] { accept_loop(); });
  }
  ~relay() {
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    accepting_.join();
    {
      std::lock_guard<std::mutex> lock(m_);
      for (auto& s : sockets_) ::shutdown(s->native_handle(), SHUT_RDWR);
    }
    for (auto& t : pumps_) t.join();
  }
  uint16_t port() const { return port_; }
  void drop_what_is_open() { drop_below_ = accepted_.load(); }
  int accepted() const { return accepted_.load(); }

 private:
  using socket_ptr = std::shared_ptr<net::ip::tcp::socket>;
  void accept_loop() {
    for (;;) {
      auto client = std::make_shared<net::ip::tcp::socket>(io_);
      boost::system::error_code ec;
      acceptor_.accept(*client, ec);
      if (ec) return;
      auto server = std::make_shared<net::ip::tcp::socket>(io_);
      server->connect({net::ip::make_address("127.0.0.1"), target_}, ec);
      if (ec) return;
      const int index = accepted_++;
      std::lock_guard<std::mutex> lock(m_);
      sockets_.push_back(client);
      sockets_.push_back(server);
      pumps_.emplace_back([this, client, server, index] { pump(*client, *server, index); });
      pumps_.emplace_back([this, client, server, index] { pump(*server, *client, index); });
    }
  }
  void pump(net::ip::tcp::socket& from, net::ip::tcp::socket& to, int index) {
    char buffer[4096];
    for (;;) {
      boost::system::error_code ec;
      const size_t n = from.read_some(net::buffer(buffer), ec);
      if (ec) break;
      if (index < drop_below_.load()) continue;
      net::write(to, net::buffer(buffer, n), ec);
      if (ec) break;
    }
    ::shutdown(to.native_handle(), SHUT_RDWR);
  }

  uint16_t target_;
  net::io_context io_;
  net::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<int> accepted_{0};
  std::atomic<int> drop_below_{0};
  std::thread accepting_;
  std::mutex m_;
  std::vector<socket_ptr> sockets_;
  std::vector<std::thread> pumps_;
};

TEST(data_plane, a_connection_that_carries_nothing_back_is_replaced_and_its_request_asked_again) {
  std::atomic<int> calls{0};
  node holder("holder", "k", echo("holder", &calls));
  relay link_to_holder(holder.plane->port());
  peer_info via = holder.info;
  via.data_address = "127.0.0.1:" + std::to_string(link_to_holder.port());
  // One I/O thread: every forward uses the same connection to the holder.
  node asker("asker", "k", echo("asker"), 200ms, 5000ms, 1);
  answers first;
  asker.plane->forward({via}, request("one"), first.sink());
  ASSERT_TRUE(first.wait_for(1, 5000ms));
  ASSERT_TRUE(first.got[0].is_ok()) << first.got[0].error().to_string();
  ASSERT_EQ(link_to_holder.accepted(), 1);

  link_to_holder.drop_what_is_open();  // the open connection now loses everything
  answers second;
  const auto sent = std::chrono::steady_clock::now();
  asker.plane->forward({via}, request("two"), second.sink());
  ASSERT_TRUE(second.wait_for(1, 5000ms));
  ASSERT_TRUE(second.got[0].is_ok()) << second.got[0].error().to_string();
  EXPECT_EQ(second.got[0]->rows.at(0).at(0).label, "two");
  EXPECT_GE(second.at[0] - sent, 200ms) << "asked again only after hedge_after";
  EXPECT_LT(second.at[0] - sent, 2000ms) << "not left to the deadline";
  EXPECT_EQ(link_to_holder.accepted(), 2) << "over a fresh connection";
  EXPECT_EQ(calls.load(), 2) << "the copy on the stuck connection never reached the holder";

  // New requests go over the fresh connection, not to the stuck one (where they would be lost
  // and asked again over a third).
  answers third;
  asker.plane->forward({via}, request("three"), third.sink());
  ASSERT_TRUE(third.wait_for(1, 5000ms));
  ASSERT_TRUE(third.got[0].is_ok()) << third.got[0].error().to_string();
  EXPECT_EQ(link_to_holder.accepted(), 2);
  EXPECT_EQ(calls.load(), 3);
  asker.plane->stop();
}

// Reads one frame from a blocking socket; "" when the connection closed first.
std::string read_frame(net::ip::tcp::socket& s) {
  unsigned char len[4];
  boost::system::error_code ec;
  net::read(s, net::buffer(len), ec);
  if (ec) return "";
  std::string out((size_t(len[0]) << 24) | (size_t(len[1]) << 16) | (size_t(len[2]) << 8) | len[3],
                  '\0');
  net::read(s, net::buffer(out), ec);
  return ec ? "" : out;
}

void write_frame(net::ip::tcp::socket& s, std::string_view payload) {
  std::string wire;
  append_frame(wire, payload);
  net::write(s, net::buffer(wire));
}

TEST(data_plane, a_client_that_cannot_prove_the_secret_gets_no_answer) {
  std::atomic<int> calls{0};
  node holder("holder", "right secret", echo("holder", &calls));
  net::io_context io;
  net::ip::tcp::socket s(io);
  s.connect({net::ip::make_address("127.0.0.1"), holder.plane->port()});
  const std::string nonce = random_nonce();
  write_frame(s, make_hello(nonce, "intruder"));
  const std::string challenge = read_frame(s);
  ASSERT_GE(challenge.size(), data_plane_nonce_bytes);
  // A guessed proof, then a request right behind it, as a hostile client would send.
  write_frame(s, make_proof("a guess", nonce, challenge.substr(0, data_plane_nonce_bytes)));
  write_frame(s, encode_request(7, api_call{request("hello")}));
  const std::string verdict = read_frame(s);
  EXPECT_EQ(verdict.rfind("REFUSED: ", 0), 0u) << verdict;
  EXPECT_NE(verdict.find("cluster secret"), std::string::npos) << verdict;
  EXPECT_EQ(read_frame(s), "") << "then the connection closes, with no answer";
  EXPECT_EQ(calls.load(), 0);

  net::ip::tcp::socket http(io);
  http.connect({net::ip::make_address("127.0.0.1"), holder.plane->port()});
  net::write(http, net::buffer(std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
  // "GET " read as a length is over the frame limit: the connection is closed at once.
  EXPECT_EQ(read_frame(http), "");
}

TEST(data_plane, a_port_that_is_taken_is_a_clear_error) {
  node first("first", "k", echo("first"));
  data_plane_options o;
  o.port = first.plane->port();
  data_plane second(o);
  status s = second.listen();
  EXPECT_EQ(s.code(), status_code::unavailable);
  EXPECT_NE(s.message().find("data_port"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace shoal
