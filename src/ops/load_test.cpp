// load_test: `shoal bench`, an open-loop load generator (load_test.hpp). Over 500 lines: the
// command line, the HTTP and ZeroMQ senders, the rate ramp and the report are one tool.
#include "shoal/ops/load_test.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

namespace shoal {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;

const std::vector<std::string>& default_texts() {
  static const std::vector<std::string> texts = {
      "where is my parcel",     "cancel my order please", "i want a refund",
      "are you open on sunday", "talk to a human",        "hello there",
      "my package has not arrived", "thanks bye"};
  return texts;
}

// JSON string escaping for the request bodies (texts may hold quotes, backslashes, controls).
std::string json_string(const std::string& s) { return nlohmann::json(s).dump(); }

double ms_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

latency_summary summarize(std::vector<float>& v) {
  latency_summary s;
  s.count = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    size_t i = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size()))) ;
    return static_cast<double>(v[std::min(v.size() - 1, i == 0 ? 0 : i - 1)]);
  };
  s.p50 = at(0.50);
  s.p90 = at(0.90);
  s.p99 = at(0.99);
  s.p999 = at(0.999);
  s.max = v.back();
  double sum = 0;
  for (float x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  return s;
}

// The node's CPU ticks (user + system) and resident memory, from /proc.
struct proc_sample {
  bool ok = false;
  uint64_t ticks = 0;
  double rss_mb = 0;
};

proc_sample sample_process(int pid) {
  proc_sample s;
  if (pid <= 0) return s;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return s;
  auto close = line.rfind(')');
  if (close == std::string::npos) return s;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  // fields after the command: state(3) ... utime(14) stime(15)
  uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) s.rss_mb = std::stod(line.substr(6)) / 1024.0;
  }
  s.ticks = utime + stime;
  s.ok = true;
  return s;
}

// One request's life.
struct request_slot {
  size_t step = 0;
  clock_type::time_point due;
};

struct step_samples {
  step_report report;
  std::vector<float> ok, ok_wire, refused;
};

class generator {
 public:
  generator(const load_test_options& o, std::function<void(const std::string&)> progress)
      : o_(o), progress_(std::move(progress)), timer_(io_), work_(io_.get_executor()) {
    const auto& texts = o_.texts.empty() ? default_texts() : o_.texts;
    for (const auto& model : o_.models) {
      for (const auto& text : texts) {
        std::string body = "{\"inputs\":[{\"name\":\"text\",\"shape\":[1],\"datatype\":\"BYTES\","
                           "\"data\":[" + json_string(text) + "]}],\"parameters\":{\"top_k\":" +
                           std::to_string(o_.top_k) + "}}";
        std::string req = "POST /v2/models/" + model + "/infer HTTP/1.1\r\nHost: " +
                          o_.targets.front().first +
                          "\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n";
        if (!o_.key.empty()) req += "Authorization: Bearer " + o_.key + "\r\n";
        if (o_.max_queue_ms > 0) {
          char budget[64];
          std::snprintf(budget, sizeof(budget), "Shoal-Max-Queue-Ms: %g\r\n", o_.max_queue_ms);
          req += budget;
        }
        req += "\r\n" + body;
        requests_.push_back(std::move(req));
      }
    }
  }

  status resolve() {
    for (const auto& [host, port] : o_.targets) {
      boost::system::error_code ec;
      tcp::resolver resolver(io_);
      auto found = resolver.resolve(host, std::to_string(port), ec);
      if (ec) return status::invalid_argument("cannot resolve " + host + ": " + ec.message());
      endpoints_.emplace_back(found.begin(), found.end());
      idle_.emplace_back();
      // A first connection, synchronously: an unreachable node is an error, not a table of
      // errors.
      tcp::socket probe(io_);
      net::connect(probe, endpoints_.back(), ec);
      if (ec) {
        return status::unavailable("cannot connect to " + host + ":" + std::to_string(port) +
                                   ": " + ec.message() + " (is `shoal node` running there?)");
      }
    }
    return status::ok();
  }

  // Runs one step (a rate for some seconds); requests still in flight from earlier steps go on.
  // Returns the step's figures so far (answers still in flight count once they arrive).
  step_report run_step(double rate, double seconds) {
    const size_t index = steps_.size();
    steps_.emplace_back();
    steps_.back().report.rate = rate;
    steps_.back().report.seconds = seconds;
    const auto start = clock_type::now();
    const auto end = start + std::chrono::duration_cast<clock_type::duration>(
                                 std::chrono::duration<double>(seconds));
    const auto interval = std::chrono::duration_cast<clock_type::duration>(
        std::chrono::duration<double>(1.0 / rate));
    proc_sample before = sample_process(o_.pid);
    next_due_ = start;
    step_end_ = end;
    interval_ = interval;
    current_step_ = index;
    if (o_.spin) {
      // Never sleeps: sends what is due and handles what is ready, over and over.
      for (auto now = clock_type::now(); now < end; now = clock_type::now()) {
        send_due(now);
        io_.poll();
      }
    } else {
      schedule();
      io_.run_until(end);
    }
    proc_sample after = sample_process(o_.pid);
    auto& r = steps_[index].report;
    if (before.ok && after.ok) {
      r.node_cpu_percent = 100.0 * static_cast<double>(after.ticks - before.ticks) /
                           static_cast<double>(sysconf(_SC_CLK_TCK)) / seconds;
      r.node_rss_mb = after.rss_mb;
    }
    r.connections = open_;
    step_report so_far = summary(steps_[index]);
    report_progress(so_far);
    return so_far;
  }

  // After the last step: answers still in flight get up to the timeout; what still waits for a
  // connection is not sent.
  void finish() {
    timer_.cancel();
    const auto deadline = clock_type::now() + std::chrono::milliseconds(o_.timeout_ms);
    while (busy_ > 0 && clock_type::now() < deadline) {
      io_.run_for(std::chrono::milliseconds(50));
    }
    for (const auto& w : waiting_) ++steps_[w.step].report.not_sent;
    waiting_.clear();
    for (auto& c : conns_) {
      boost::system::error_code ec;
      c->stream.socket().close(ec);
    }
    io_.run_for(std::chrono::milliseconds(100));
  }

  std::vector<step_report> reports() const {
    std::vector<step_report> out;
    for (const auto& s : steps_) out.push_back(summary(s));
    return out;
  }

 private:
  // A step's report with its latency percentiles (the samples are copied: a step still running
  // keeps collecting).
  static step_report summary(step_samples s) {
    s.report.ok_latency = summarize(s.ok);
    s.report.ok_wire = summarize(s.ok_wire);
    s.report.refused_latency = summarize(s.refused);
    return s.report;
  }

  void report_progress(const step_report& r) {
    if (!progress_) return;
    char line[256];
    std::snprintf(line, sizeof(line),
                  "step %zu: %.0f req/s for %.0f s: %llu ok, %llu refused, p99 %.2f ms",
                  steps_.size(), r.rate, r.seconds, static_cast<unsigned long long>(r.ok),
                  static_cast<unsigned long long>(r.refused + r.unavailable), r.ok_latency.p99);
    progress_(line);
  }

  struct connection {
    explicit connection(net::io_context& io) : stream(io) {}
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    std::optional<http::response_parser<http::string_body>> parser;
    request_slot slot;
    clock_type::time_point written;
    size_t target = 0;  // index into endpoints_
  };

  void schedule(clock_type::time_point not_before = clock_type::time_point()) {
    timer_.expires_at(std::max(next_due_, not_before));
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      const auto now = clock_type::now();
      send_due(now);
      if (next_due_ < step_end_) schedule(now + min_tick);
    });
  }

  // Dispatches every request of the step due by `now`.
  void send_due(clock_type::time_point now) {
    while (next_due_ <= now && next_due_ < step_end_) {
      dispatch({current_step_, next_due_});
      next_due_ += interval_;
    }
  }

  void dispatch(request_slot slot) {
    ++steps_[slot.step].report.due;
    // Requests go round robin over the targets (one node, or the front ends of a cluster): an
    // idle connection to this request's target, else a new one, else any idle connection.
    const size_t target = next_target_++ % endpoints_.size();
    auto& idle = idle_[target];
    if (!idle.empty()) {
      auto c = idle.back();
      idle.pop_back();
      send(c, slot);
    } else if (open_ < o_.connections) {
      open(slot, target);
    } else if (auto c = take_any_idle()) {
      send(c, slot);
    } else if (o_.drop_when_busy) {
      ++steps_[slot.step].report.client_shed;
    } else {
      waiting_.push_back(slot);
    }
  }

  std::shared_ptr<connection> take_any_idle() {
    for (auto& idle : idle_) {
      if (idle.empty()) continue;
      auto c = idle.back();
      idle.pop_back();
      return c;
    }
    return nullptr;
  }

  void open(request_slot slot, size_t target) {
    auto c = std::make_shared<connection>(io_);
    conns_.push_back(c);
    ++open_;
    ++busy_;
    c->slot = slot;
    c->target = target;
    c->stream.expires_after(std::chrono::milliseconds(o_.timeout_ms));
    c->stream.async_connect(endpoints_[target], [this, c](const boost::system::error_code& ec,
                                                  const tcp::endpoint&) {
      if (ec) {
        fail(c);
        return;
      }
      boost::system::error_code ignored;
      c->stream.socket().set_option(tcp::no_delay(true), ignored);
      --busy_;
      send(c, c->slot);
    });
  }

  void send(const std::shared_ptr<connection>& c, request_slot slot) {
    ++busy_;
    c->slot = slot;
    c->written = clock_type::now();
    const std::string& req = requests_[next_request_++ % requests_.size()];
    c->stream.expires_after(std::chrono::milliseconds(o_.timeout_ms));
    net::async_write(c->stream, net::buffer(req),
                     [this, c](const boost::system::error_code& ec, size_t) {
                       if (ec) {
                         fail(c);
                         return;
                       }
                       c->parser.emplace();
                       c->parser->body_limit(1 << 20);
                       http::async_read(c->stream, c->buffer, *c->parser,
                                        [this, c](const boost::system::error_code& ec2, size_t) {
                                          if (ec2) {
                                            fail(c);
                                            return;
                                          }
                                          answered(c);
                                        });
                     });
  }

  void answered(const std::shared_ptr<connection>& c) {
    const auto now = clock_type::now();
    auto& s = steps_[c->slot.step];
    const int code = static_cast<int>(c->parser->get().result_int());
    const bool keep = c->parser->get().keep_alive();
    const float latency = static_cast<float>(ms_between(c->slot.due, now));
    if (code == 200) {
      ++s.report.ok;
      s.ok.push_back(latency);
      s.ok_wire.push_back(static_cast<float>(ms_between(c->written, now)));
    } else if (code == 429 || code == 503) {
      (code == 429 ? s.report.refused : s.report.unavailable)++;
      s.refused.push_back(latency);
    } else {
      ++s.report.other;
    }
    c->parser.reset();
    --busy_;
    if (keep) {
      release(c);
    } else {
      retire(c);
    }
  }

  void release(const std::shared_ptr<connection>& c) {
    if (!waiting_.empty()) {
      auto next = waiting_.front();
      waiting_.pop_front();
      send(c, next);
    } else {
      idle_[c->target].push_back(c);
    }
  }

  void fail(const std::shared_ptr<connection>& c) {
    ++steps_[c->slot.step].report.errors;
    --busy_;
    retire(c);
  }

  // Closes `c`; the oldest request waiting for a connection gets a new one.
  void retire(const std::shared_ptr<connection>& c) {
    close(c);
    if (!waiting_.empty()) {
      auto next = waiting_.front();
      waiting_.pop_front();
      open(next, c->target);
    }
  }

  void close(const std::shared_ptr<connection>& c) {
    boost::system::error_code ec;
    c->stream.socket().close(ec);
    conns_.erase(std::remove(conns_.begin(), conns_.end(), c), conns_.end());
    --open_;
  }

  // The timer's shortest period (load_test.hpp): due requests go out in groups above 10,000/s.
  static constexpr std::chrono::microseconds min_tick{100};
  const load_test_options& o_;
  std::function<void(const std::string&)> progress_;
  net::io_context io_{1};
  net::steady_timer timer_;
  // Keeps run_until() running to the step's end even when nothing is due or in flight.
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::vector<std::vector<tcp::endpoint>> endpoints_;  // per target
  size_t next_target_ = 0;                              // the next request's target
  std::vector<std::string> requests_;
  size_t next_request_ = 0;
  std::vector<step_samples> steps_;
  std::vector<std::shared_ptr<connection>> conns_;
  std::vector<std::vector<std::shared_ptr<connection>>> idle_;  // per target
  std::deque<request_slot> waiting_;
  size_t open_ = 0;
  size_t busy_ = 0;  // connections connecting or with a request out
  size_t current_step_ = 0;
  clock_type::time_point next_due_, step_end_;
  clock_type::duration interval_{};
};

// Raises the open-files limit to its hard maximum (a run may hold many connections).
void raise_file_limit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

std::optional<double> parse_number(const std::string& s) {
  try {
    size_t used = 0;
    double v = std::stod(s, &used);
    if (used != s.size() || !std::isfinite(v)) return std::nullopt;
    return v;
  } catch (...) {
    return std::nullopt;
  }
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  if (!s.empty() && s.back() == sep) out.emplace_back();
  return out;
}

// Whether a ramp step kept the SLO: answers came, p99 within it, nothing refused or failed, and
// at least 90% of what was due answered 200.
bool kept_slo(const step_report& r, const load_test_options& o) {
  return r.ok > 0 && (o.slo_ms <= 0 || r.ok_latency.p99 <= o.slo_ms) &&
         r.refused + r.unavailable + r.errors == 0 &&
         static_cast<double>(r.ok) >= 0.9 * static_cast<double>(r.due);
}

}  // namespace

result<load_test_report> run_load_test(const load_test_options& o,
                                       const std::function<void(const std::string&)>& progress) {
  if (o.models.empty()) return status::invalid_argument("no model: give --model TENANT/MODEL");
  if (o.steps.empty() && o.ramp_step <= 0) {
    return status::invalid_argument("no load: give --rate R, --rates R1,R2,... or --ramp");
  }
  for (const auto& s : o.steps) {
    if (!(s.rate > 0) || !(s.seconds > 0)) {
      return status::invalid_argument("every step needs a rate and seconds above 0");
    }
  }
  raise_file_limit();
  generator g(o, progress);
  SHOAL_RETURN_IF_ERROR(g.resolve());
  load_test_report report;
  if (!o.steps.empty()) {
    for (const auto& s : o.steps) g.run_step(s.rate, s.seconds);
  } else {
    // The ramp stops at the first step that misses, judged when the step ends; the answers still
    // in flight then arrive later, so the verdict is taken again below on the final figures.
    for (double rate = o.ramp_start; rate <= o.ramp_max + 1e-9; rate += o.ramp_step) {
      if (!kept_slo(g.run_step(rate, o.ramp_seconds), o) && o.slo_ms > 0) break;
    }
  }
  g.finish();
  report.steps = g.reports();
  if (o.steps.empty()) {
    for (const auto& r : report.steps) {
      if (kept_slo(r, o)) {
        report.sustainable_rate = r.rate;
        continue;
      }
      if (o.slo_ms <= 0) continue;
      char why[160];
      std::snprintf(why, sizeof(why),
                    "at %.0f req/s: p99 %.2f ms (SLO %.2f ms), %llu of %llu answered 200, "
                    "%llu errors",
                    r.rate, r.ok_latency.p99, o.slo_ms, static_cast<unsigned long long>(r.ok),
                    static_cast<unsigned long long>(r.due),
                    static_cast<unsigned long long>(r.errors));
      report.stopped_because = why;
      break;
    }
  }
  return report;
}

std::string render_load_table(const load_test_report& r, const load_test_options& o) {
  std::ostringstream out;
  char line[512];
  std::snprintf(line, sizeof(line), "%8s %6s %9s %9s %8s %8s %8s %8s %8s %9s %7s %7s %8s %6s %8s\n",
                "offered", "secs", "ok/s", "refused/s", "p50 ms", "p90 ms", "p99 ms", "p99.9",
                "max ms", "refuse99", "errors", "unsent", "shed/s", "cpu%", "rss MB");
  out << line;
  for (const auto& s : r.steps) {
    std::snprintf(line, sizeof(line),
                  "%8.0f %6.0f %9.0f %9.0f %8.3f %8.3f %8.3f %8.3f %8.1f %9.3f %7llu %7llu %8.0f "
                  "%6s %8s\n",
                  s.rate, s.seconds, static_cast<double>(s.ok) / s.seconds,
                  static_cast<double>(s.refused + s.unavailable) / s.seconds, s.ok_latency.p50,
                  s.ok_latency.p90, s.ok_latency.p99, s.ok_latency.p999, s.ok_latency.max,
                  s.refused_latency.p99, static_cast<unsigned long long>(s.errors + s.other),
                  static_cast<unsigned long long>(s.not_sent),
                  static_cast<double>(s.client_shed) / s.seconds, s.node_cpu_percent < 0 ? "-" : std::to_string(static_cast<int>(s.node_cpu_percent)).c_str(),
                  s.node_rss_mb < 0 ? "-" : std::to_string(static_cast<int>(s.node_rss_mb)).c_str());
    out << line;
  }
  out << "latency: ms from the time each request was due (open loop); refuse99: p99 of 429/503 "
         "answers; shed/s: due while every connection was busy (--drop-when-busy)\n";
  if (o.ramp_step > 0) {
    if (o.slo_ms > 0) {
      std::snprintf(line, sizeof(line), "sustainable: %.0f req/s with p99 <= %.2f ms%s%s\n",
                    r.sustainable_rate, o.slo_ms, r.stopped_because.empty() ? "" : "; missed ",
                    r.stopped_because.c_str());
    } else {
      std::snprintf(line, sizeof(line), "highest step answered in full: %.0f req/s\n",
                    r.sustainable_rate);
    }
    out << line;
  }
  return out.str();
}

std::string render_load_json(const load_test_report& r, const load_test_options& o) {
  using nlohmann::json;
  auto lat = [](const latency_summary& l) {
    return json{{"count", l.count}, {"p50_ms", l.p50}, {"p90_ms", l.p90}, {"p99_ms", l.p99},
                {"p999_ms", l.p999}, {"max_ms", l.max}, {"mean_ms", l.mean}};
  };
  json steps = json::array();
  for (const auto& s : r.steps) {
    json j = {{"rate", s.rate},
              {"seconds", s.seconds},
              {"due", s.due},
              {"ok", s.ok},
              {"refused", s.refused},
              {"unavailable", s.unavailable},
              {"other_status", s.other},
              {"errors", s.errors},
              {"not_sent", s.not_sent},
              {"client_shed", s.client_shed},
              {"ok_latency", lat(s.ok_latency)},
              {"ok_wire_latency", lat(s.ok_wire)},
              {"refused_latency", lat(s.refused_latency)},
              {"connections", s.connections}};
    if (s.node_cpu_percent >= 0) j["node_cpu_percent"] = s.node_cpu_percent;
    if (s.node_rss_mb >= 0) j["node_rss_mb"] = s.node_rss_mb;
    steps.push_back(std::move(j));
  }
  std::string targets;
  for (const auto& [host, port] : o.targets) {
    targets += (targets.empty() ? "" : ",") + host + ":" + std::to_string(port);
  }
  json out = {{"target", targets},
              {"models", o.models},
              {"connections", o.connections},
              {"steps", steps}};
  if (o.ramp_step > 0) {
    out["sustainable_rate"] = r.sustainable_rate;
    out["slo_ms"] = o.slo_ms;
    out["stopped_because"] = r.stopped_because;
  }
  return out.dump(1) + "\n";
}

std::string bench_usage() {
  return R"(usage: shoal bench --model TENANT/MODEL (--rate R | --rates R1,R2,... | --ramp START,STEP,MAX)
                   [--http HOST:PORT[,...]] [--seconds S[,S2,...]] [--slo-ms MS] [--connections N]
                   [--drop-when-busy] [--spin] [--texts FILE] [--k K] [--key KEY] [--pid PID]
                   [--max-queue-ms MS] [--timeout-ms MS] [--json]

Open-loop HTTP load on a node or a cluster: requests are due at a fixed rate whether or not earlier ones were
answered, and latency is measured from the time each was due, so queueing shows up honestly.

  --http HOST:PORT    the node's HTTP address (default 127.0.0.1:7422, or $SHOAL_HTTP); a
                      list HOST:PORT,HOST:PORT,... loads a cluster through all of those nodes
                      (requests round robin over them)
  --model T/M         the model to infer with; repeat to rotate over several
  --rate R            one step at R requests/s
  --rates R1,R2,...   steps back to back, no pause between them (e.g. 1000,20000,2000 shows
                      how a node recovers after an overload)
  --seconds S         each step's length (default 10); a list gives one per step
  --ramp A,B,C        steps from A req/s up by B to C; with --slo-ms, stops once p99 of
                      successful answers exceeds the SLO and reports the highest rate that kept it
  --slo-ms MS         the latency objective for --ramp
  --connections N     most keep-alive connections open at once (default 256); when all are busy,
                      due requests wait in the generator (and that wait counts)
  --drop-when-busy    instead, a request due while every connection is busy is not sent and
                      counted as shed by the client (a pool that fails fast)
  --spin              never sleep: the generator polls its sockets in a loop and takes a whole
                      core, so its own wake-ups (tens of microseconds each, more on a busy
                      machine) stay out of the latencies it measures; for benches that pin it
                      to a core of its own (taskset)
  --texts FILE        one text per line (default: eight short chatbot texts)
  --k K               top_k of each request (default 1)
  --key KEY           API key (or $SHOAL_KEY)
  --pid PID           the node's process id (same machine): CPU and memory per step
  --max-queue-ms MS   send Shoal-Max-Queue-Ms: MS with every request: the node refuses it
                      at once (429) while it is behind by more than that, as an open-loop client
                      that would rather retry elsewhere wants (default: none sent, the node's
                      max_queue_ms applies)
  --timeout-ms MS     an answer slower than this is an error (default 10000)
  --json              the report as JSON on stdout (progress stays on stderr)

Output: one row per step: offered rate, 200s and refusals (429/503) per second, latency
percentiles of 200s, p99 of refusals, errors, requests never sent, and the node's CPU and memory.
The generator runs on one thread; keep its rate within one core (about 80,000 req/s).

examples:
  shoal bench --model acme/bot --rate 2000 --seconds 30
  shoal bench --model acme/bot --ramp 1000,1000,20000 --slo-ms 10 --pid $(pgrep -f 'shoal node')
  shoal bench --model acme/bot --rates 1000,25000,2000 --seconds 10,30,10 --json
)";
}

int run_bench_command(const std::vector<std::string>& args) {
  load_test_options o;
  bool json = false;
  std::vector<double> seconds = {10};
  std::vector<double> rates;
  std::string http = std::getenv("SHOAL_HTTP") != nullptr ? std::getenv("SHOAL_HTTP") : "";
  if (const char* k = std::getenv("SHOAL_KEY")) o.key = k;
  auto usage = [](const std::string& what) {
    std::cerr << "shoal: bench: " << what << " (try 'shoal bench --help')\n";
    return 2;
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      std::cout << bench_usage();
      return 0;
    }
    if (a == "--json") {
      json = true;
      continue;
    }
    if (a == "--drop-when-busy") {
      o.drop_when_busy = true;
      continue;
    }
    if (a == "--spin") {
      o.spin = true;
      continue;
    }
    if (i + 1 >= args.size()) return usage(a + " needs a value");
    const std::string v = args[++i];
    auto numbers = [&](std::vector<double>& out) {
      out.clear();
      for (const auto& part : split(v, ',')) {
        auto n = parse_number(part);
        if (!n || *n <= 0) return false;
        out.push_back(*n);
      }
      return !out.empty();
    };
    auto positive = [&](double& out) {
      auto n = parse_number(v);
      if (!n || *n <= 0) return false;
      out = *n;
      return true;
    };
    double n = 0;
    if (a == "--http") {
      http = v;
    } else if (a == "--model") {
      if (v.find('/') == std::string::npos) return usage("--model needs TENANT/MODEL, got '" + v + "'");
      o.models.push_back(v);
    } else if (a == "--rate") {
      if (!positive(n)) return usage("--rate must be a number above 0, got '" + v + "'");
      rates = {n};
    } else if (a == "--rates") {
      if (!numbers(rates)) return usage("--rates must be numbers above 0, e.g. 1000,20000,2000");
    } else if (a == "--seconds") {
      if (!numbers(seconds)) return usage("--seconds must be numbers above 0, e.g. 10 or 10,30,10");
    } else if (a == "--ramp") {
      std::vector<double> r;
      if (!numbers(r) || r.size() != 3 || r[2] < r[0]) {
        return usage("--ramp must be START,STEP,MAX with START <= MAX, e.g. 1000,1000,20000");
      }
      o.ramp_start = r[0];
      o.ramp_step = r[1];
      o.ramp_max = r[2];
    } else if (a == "--slo-ms") {
      if (!positive(o.slo_ms)) return usage("--slo-ms must be a number above 0, got '" + v + "'");
    } else if (a == "--connections") {
      if (!positive(n) || n > 100000) return usage("--connections must be 1 to 100000");
      o.connections = static_cast<size_t>(n);
    } else if (a == "--texts") {
      std::ifstream in(v);
      if (!in) return usage("cannot read --texts file " + v);
      std::string line;
      while (std::getline(in, line)) {
        if (!line.empty()) o.texts.push_back(line);
      }
      if (o.texts.empty()) return usage("--texts file " + v + " has no lines");
    } else if (a == "--k") {
      if (!positive(n) || n > 1000) return usage("--k must be 1 to 1000");
      o.top_k = static_cast<uint32_t>(n);
    } else if (a == "--key") {
      o.key = v;
    } else if (a == "--pid") {
      if (!positive(n)) return usage("--pid must be a process id");
      o.pid = static_cast<int>(n);
    } else if (a == "--max-queue-ms") {
      if (!positive(n) || n > 3600000) {
        return usage("--max-queue-ms must be milliseconds above 0, at most 3600000");
      }
      o.max_queue_ms = n;
    } else if (a == "--timeout-ms") {
      if (!positive(n)) return usage("--timeout-ms must be above 0");
      o.timeout_ms = static_cast<uint32_t>(n);
    } else {
      return usage("unknown option '" + a + "'");
    }
  }
  if (!http.empty()) {
    o.targets.clear();
    for (const auto& one : split(http, ',')) {
      auto colon = one.rfind(':');
      auto port = colon == std::string::npos ? std::nullopt : parse_number(one.substr(colon + 1));
      if (!port || *port < 1 || *port > 65535 || std::floor(*port) != *port || colon == 0) {
        return usage("--http must be HOST:PORT[,HOST:PORT...], got '" + one + "'");
      }
      o.targets.emplace_back(one.substr(0, colon), static_cast<uint16_t>(*port));
    }
  }
  if (o.models.empty()) return usage("give the model to load with --model TENANT/MODEL");
  if (!rates.empty() && o.ramp_step > 0) return usage("give either --rate/--rates or --ramp");
  if (rates.empty() && o.ramp_step <= 0) return usage("give the load: --rate, --rates or --ramp");
  if (o.slo_ms > 0 && o.ramp_step <= 0) return usage("--slo-ms goes with --ramp");
  if (o.ramp_step > 0) {
    o.ramp_seconds = seconds.front();
  } else {
    if (seconds.size() != 1 && seconds.size() != rates.size()) {
      return usage("--seconds needs one value or one per rate");
    }
    for (size_t i = 0; i < rates.size(); ++i) {
      o.steps.push_back({rates[i], seconds.size() == 1 ? seconds[0] : seconds[i]});
    }
  }
  auto report = run_load_test(o, [](const std::string& line) { std::cerr << line << "\n"; });
  if (!report) {
    std::cerr << "shoal: bench: " << report.error().message() << "\n";
    return 1;
  }
  std::cout << (json ? render_load_json(*report, o) : render_load_table(*report, o));
  return 0;
}

}  // namespace shoal
