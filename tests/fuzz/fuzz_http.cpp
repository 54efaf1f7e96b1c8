// fuzz_http: one HTTP request as bytes, through what the node does with it before a model is
// involved. Beast's request_parser with the server's limits (http_server.cpp: 16 KiB of headers,
// the default 4 MiB body), fed the way the server feeds it (put until done; the client closing
// mid-request is put_eof); then the request as http_server hands it on: parse_route on method and
// target, bearer_key on the Authorization header, and for an infer route parse_infer_body with
// the Inference-Header-Content-Length header (V2's binary tensor data extension).
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "fuzz_target.hpp"
#include "shoal/serving/tenants.hpp"
#include "shoal/wire/http_server.hpp"
#include "shoal/wire/v2_codec.hpp"

namespace {

namespace http = boost::beast::http;

constexpr uint32_t max_header_bytes = 16 * 1024;  // http_server.cpp's limit

void route_request(const shoal::http_request& req) {
  using namespace shoal;
  if (req.has_authorization) (void)bearer_key(req.authorization);
  auto route = parse_route(req.method, req.target);
  if (!route) {
    FUZZ_CHECK(route.http_status() >= 400);
    (void)render_error(route.error().message());
    return;
  }
  if (route->what != http_route::kind::infer) return;
  auto parsed =
      parse_infer_body(*route, req.body, v2_default_max_batch, req.inference_header_length);
  if (!parsed) {
    FUZZ_CHECK(parsed.error().code() == status_code::invalid_argument);
    (void)render_error(parsed.error().message());
    return;
  }
  const infer_request& r = parsed->request;
  FUZZ_CHECK(r.id == route->id);
  FUZZ_CHECK(r.texts.empty() || r.inputs.empty());
  FUZZ_CHECK(r.texts.size() <= v2_default_max_batch);
  for (const tensor& t : r.inputs) FUZZ_CHECK(t.check_size().is_ok());
}

}  // namespace

extern "C" int SHOAL_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  http::request_parser<http::string_body> parser;
  parser.body_limit(shoal::http_server_options{}.max_body_bytes);
  parser.header_limit(max_header_bytes);
  boost::asio::const_buffer in(data, size);
  boost::system::error_code ec;
  while (!parser.is_done() && in.size() > 0) {
    const size_t used = parser.put(in, ec);
    in += used;
    if (ec == http::error::need_more) {
      ec = {};
      if (used == 0) break;
      continue;
    }
    if (ec) return 0;  // the server answers 400, 413 or 431
  }
  if (!parser.is_done()) {
    parser.put_eof(ec);
    if (ec || !parser.is_done()) return 0;
  }

  auto& msg = parser.get();
  shoal::http_request req;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  req.content_type = std::string(msg[http::field::content_type]);
  if (auto it = msg.find(http::field::authorization); it != msg.end()) {
    req.authorization = std::string(it->value());
    req.has_authorization = true;
  }
  if (auto it = msg.find("Shoal-Max-Queue-Ms"); it != msg.end()) {
    req.max_queue_ms = std::string(it->value());
  }
  if (auto it = msg.find("Inference-Header-Content-Length"); it != msg.end()) {
    req.inference_header_length = std::string(it->value());
  }
  req.body = std::move(msg.body());
  route_request(req);
  return 0;
}
