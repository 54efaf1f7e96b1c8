// The data plane over real loopback sockets: two or three data planes, each on its own I/O
// threads, the holders' handlers answering from plain code (the front door is tested elsewhere).
// Asserts what a forwarding node relies on: answers matched to their requests with many in
// flight, strangers refused, a dead peer's requests retried on the next holder at once, a silent
// one's after attempt_timeout, each request answered exactly once, a client's mistake not
// retried.
#include "shoal/wire/data_plane.hpp"

#include <gtest/gtest.h>

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
       std::chrono::milliseconds attempt_timeout = 5000ms)
      : threads(2) {
    data_plane_options o;
    o.node_id = name;
    o.secret = secret;
    o.attempt_timeout = attempt_timeout;
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

TEST(data_plane, a_silent_peer_is_left_after_attempt_timeout_and_its_late_answer_dropped) {
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
