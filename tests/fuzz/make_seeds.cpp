// fuzz_make_seeds OUT_DIR: writes the seed inputs of the targets whose inputs the project's own
// encoders make (api, gossip, catalog_sync) and of the text targets (http, config) under
// OUT_DIR/TARGET/. make_seeds.sh runs it and adds the model seeds (fasttext, onnx).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "shoal/cluster/catalog_sync.hpp"
#include "shoal/cluster/data_plane_protocol.hpp"
#include "shoal/cluster/gossip_codec.hpp"
#include "shoal/cluster/replicated_catalog.hpp"
#include "shoal/store/catalog.hpp"
#include "shoal/wire/api_codec.hpp"
#include "support/sample_member.hpp"

namespace {

namespace fs = std::filesystem;
using namespace shoal;
using shoal::testing::sample_member;

fs::path out_dir;
const std::string secret = "fuzz-cluster-secret";  // the fuzz targets' secret

void put(const std::string& target, const std::string& name, const std::string& bytes) {
  fs::create_directories(out_dir / target);
  std::ofstream(out_dir / target / name, std::ios::binary) << bytes;
}

const model_id bot{"acme", "bot"};
const std::string sha_a(64, 'a');

tensor fp32_tensor() {
  tensor t;
  t.name = "x";
  t.type = data_type::fp32;
  t.shape = {1, 3};
  t.data.assign(12, '\0');
  return t;
}

void api_seeds() {
  infer_request texts;
  texts.id = bot;
  texts.texts = {"hello world", "bonjour"};
  texts.top_k = 2;
  put("api", "infer_texts", encode_request(1, texts, "key-1"));
  infer_request tensors;
  tensors.id = bot;
  tensors.version = 3;
  tensors.inputs = {fp32_tensor()};
  tensors.outputs = {"y"};
  put("api", "infer_tensor", encode_request(2, tensors));
  push_request push;
  push.id = bot;
  push.bytes = "not a model";
  push.label = "staging";
  push.tags = {{"team", "nlp"}};
  put("api", "push", encode_request(3, push));
  label_request label;
  label.id = bot;
  label.label = "production";
  label.version = 2;
  put("api", "promote", encode_request(4, label));
  put("api", "models", encode_request(5, models_request{}));
  put("api", "status", encode_request(6, status_request{}));
  policy_request policy;
  policy.id = bot;
  policy.settings = {{"watch", "10m"}, {"min_agreement", "70%"}};
  put("api", "policy", encode_request(7, policy));
  trial_request trial;
  trial.id = bot;
  trial.version = 2;
  trial.share_ppm = 50000;
  put("api", "trial", encode_request(8, trial));

  infer_result r;
  r.id = bot;
  r.version = 2;
  r.rows = {{{"greet", 0.9f}, {"bye", 0.1f}}};
  put("api", "infer_response", encode_response(1, r));
  push_result pushed;
  pushed.version = 4;
  pushed.sha256 = sha_a;
  pushed.labels = {"staging"};
  put("api", "push_response", encode_response(3, pushed));
  cluster_status cs;
  put("api", "cluster_status_response", encode_response(9, cs));
  put("api", "error_response",
      encode_error(5, status::not_found("model acme/bot has no version 7")));
}

void gossip_seeds() {
  gossip_msg ping;
  ping.kind = gossip_kind::ping;
  ping.seq = 7;
  ping.from_address = "10.0.0.1:7420";
  ping.updates = {sample_member("n1"), sample_member("n2")};
  gossip_msg req = ping;
  req.kind = gossip_kind::ping_req;
  req.target_id = "n3";
  req.target_address = "10.0.0.3:7420";
  // The fuzzer seals its input itself: the payload seeds are the envelopes' payloads.
  for (auto [name, m] : {std::pair{"ping", ping}, std::pair{"ping_req", req}}) {
    auto opened = open_envelope(encode_gossip(m, secret), secret);
    put("gossip", std::string(name) + "_payload", *opened.payload);
    put("gossip", std::string(name) + "_sealed", encode_gossip(m, secret));
    put("gossip", std::string(name) + "_open", encode_gossip(m, ""));
  }
}

std::vector<catalog_change> sample_changes() {
  catalog c;
  snapshot_info s;
  s.sha256 = sha_a;
  s.size_bytes = 1234;
  s.format = "fasttext";
  s.note = "first";
  auto changes = c.plan_push(bot, s, "staging", 1000);
  for (const auto& ch : changes) (void)c.apply(ch);
  label_request l;
  l.id = bot;
  l.label = "production";
  l.version = 1;
  if (auto move = c.plan_label(l, 2000)) changes.push_back(*move);
  replicated_catalog replica("n2:7420");
  return replica.stamp(changes, 3000);
}

void catalog_sync_seeds() {
  catalog_sync_msg m;
  m.from_address = "10.0.0.2:7420";
  m.changes = sample_changes();
  put("catalog_sync", "sync_changes", encode_catalog_sync(m));
  catalog_sync_msg f;
  f.from_address = "10.0.0.2:7420";
  f.frontier = catalog_frontier{{"n2:7420", 3}, {"n3:7420", 9}};
  put("catalog_sync", "sync_frontier", encode_catalog_sync(f));
  peer_request fetch;
  fetch.what = peer_request::kind::fetch;
  fetch.sha256 = sha_a;
  put("catalog_sync", "peer_fetch", encode_peer_request(fetch));
  peer_request store;
  store.what = peer_request::kind::store;
  store.sha256 = sha_a;
  store.id = bot;
  store.version = 2;
  store.bytes = "model bytes";
  put("catalog_sync", "peer_store", encode_peer_request(store));
  peer_reply reply;
  reply.snapshot = "model bytes";
  put("catalog_sync", "peer_reply", encode_peer_reply(reply));
  const std::string cn(data_plane_nonce_bytes, 'c');
  const std::string sn(data_plane_nonce_bytes, 's');
  std::string frames;
  append_frame(frames, make_hello(cn, "n1:7420"));
  append_frame(frames, make_challenge(secret, cn, sn));
  append_frame(frames, make_proof(secret, cn, sn));
  append_frame(frames, data_plane_ok);
  put("catalog_sync", "data_plane_handshake", frames);
}

void http_seeds() {
  const std::string json =
      R"({"id":"r1","inputs":[{"name":"text","datatype":"BYTES","shape":[2],"data":["hello","bye"]}],)"
      R"("parameters":{"top_k":2},"outputs":[{"name":"labels"},{"name":"scores"}]})";
  put("http", "infer_text",
      "POST /v2/models/acme/bot/infer HTTP/1.1\r\nHost: node\r\nAuthorization: Bearer k1\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
          std::to_string(json.size()) + "\r\n\r\n" + json);
  const std::string tensor_json =
      R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1,2],"data":[[1.5,-2]]},)"
      R"({"name":"n","datatype":"INT64","shape":[2],"data":[1,2]}],"outputs":[{"name":"y"}]})";
  put("http", "infer_tensor",
      "POST /v2/models/acme/mlp/versions/3/infer HTTP/1.1\r\nHost: node\r\nContent-Length: " +
          std::to_string(tensor_json.size()) + "\r\nShoal-Max-Queue-Ms: 5\r\n\r\n" + tensor_json);
  const std::string head =
      R"({"inputs":[{"name":"x","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}},)"
      R"({"name":"s","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":7}}],)"
      R"("outputs":[{"name":"y","parameters":{"binary_data":true}}]})";
  std::string binary = head;
  binary += std::string("\x00\x00\x80\x3f\x00\x00\x00\x40", 8);
  binary += std::string(
      "\x03\x00\x00\x00"
      "abc",
      7);
  put(
      "http", "infer_binary",
      "POST /v2/models/acme%2Fmlp/infer HTTP/1.1\r\nHost: node\r\n"
      "Inference-Header-Content-Length: " +
          std::to_string(head.size()) +
          "\r\nContent-Type: application/octet-stream\r\n"
          "Transfer-Encoding: chunked\r\n\r\n" +
          [&] {
            char size[16];
            std::snprintf(size, sizeof size, "%zx", binary.size());
            return std::string(size) + "\r\n" + binary + "\r\n0\r\n\r\n";
          }());
  put("http", "live", "GET /v2/health/live HTTP/1.1\r\nHost: node\r\n\r\n");
  put("http", "model_meta", "HEAD /v2/models/acme/bot/versions/2?x=1 HTTP/1.0\r\n\r\n");
  put("http", "repo_index",
      "POST /v2/repository/index HTTP/1.1\r\nContent-Length: 14\r\n\r\n{\"ready\":true}");
}

void config_seeds() {
  put("config", "node.conf",
      "# a node\ndata_dir = data\nhttp_port = 7422\nzmq_port = 7421\nname = \"n1 #1\"\n"
      "seeds = 10.0.0.2:7420, 10.0.0.3:7420\ncluster_secret = \"ab\\\"cd\"\n"
      "tenant_limits = rate=200/s in_flight=64 models=1000 stored_mb=10240\n"
      "tenant_limits.acme = rate=5.5/s burst=10 models=unlimited\nmodel_memory_mb = 512\n");
  put("config", "keys", "# keys\nk-admin-1 admin\nk-acme-1 acme\nk-acme-2 acme ci bot\n");
  put("config", "limits", "rate=0.001/s burst=1e9 in_flight=64 models=1000 stored_mb=10240");
  put("config", "flags", "--data-dir\n/tmp/d\n--http-port\n8000\n--seeds\n10.0.0.2:7420\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds OUT_DIR\n");
    return 2;
  }
  out_dir = argv[1];
  api_seeds();
  gossip_seeds();
  catalog_sync_seeds();
  http_seeds();
  config_seeds();
  return 0;
}
