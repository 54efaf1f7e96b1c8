// Over 500 lines: every case of api_codec in one suite, so it reads as its specification.
#include "shoal/wire/api_codec.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proto/shoal.pb.h"
#include "shoal/base/utf8.hpp"
#include "support/sample_member.hpp"

namespace shoal {
namespace {

using namespace std::string_literals;

// ---- utf8 --------------------------------------------------------------------------------------

TEST(utf8, validates_by_rfc_3629) {
  struct row {
    std::string text;
    size_t first_bad;
  };
  const size_t ok = std::string_view::npos;
  const std::vector<row> table = {
      {"", ok},
      {"plain ascii", ok},
      {"caf\xC3\xA9", ok},       // é
      {"\xE2\x82\xAC", ok},      // €
      {"\xF0\x9F\x98\x80", ok},  // 😀
      {"\xF4\x8F\xBF\xBF", ok},  // U+10FFFF
      {"\xEF\xBF\xBD", ok},      // U+FFFD
      {"a\xFF", 1},              // never valid
      {"\x80", 0},               // lone continuation
      {"\xC0\x80", 0},           // overlong NUL
      {"\xC1\xBF", 0},           // overlong
      {"\xE0\x80\x80", 0},       // overlong 3-byte
      {"\xF0\x80\x80\x80", 0},   // overlong 4-byte
      {"ab\xED\xA0\x80", 2},     // surrogate U+D800
      {"\xF4\x90\x80\x80", 0},   // above U+10FFFF
      {"\xF5\x80\x80\x80", 0},
      {"x\xE2\x82", 1},     // truncated
      {"\xC3", 0},          // truncated
      {"\xE2\x28\xA1", 0},  // bad continuation
  };
  for (const auto& r : table) {
    EXPECT_EQ(utf8::first_invalid_byte(r.text), r.first_bad) << "text: " << r.text;
    EXPECT_EQ(utf8::is_valid_utf8(r.text), r.first_bad == ok) << "text: " << r.text;
  }
}

TEST(utf8, replaces_each_bad_byte_with_the_replacement_character) {
  EXPECT_EQ(utf8::to_valid_utf8("ok"), "ok");
  EXPECT_EQ(utf8::to_valid_utf8("a\xFF"
                                "b\xC3"),
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD");
  EXPECT_TRUE(utf8::is_valid_utf8(utf8::to_valid_utf8("\xED\xA0\x80\xF5")));
}

// ---- requests ----------------------------------------------------------------------------------

model_id id_of(const char* tenant, const char* model) { return model_id{tenant, model}; }

decoded_request round_trip(uint64_t request_id, const api_call& call) {
  auto decoded = decode_request(encode_request(request_id, call));
  EXPECT_TRUE(decoded) << decoded.error().error.to_string();
  if (!decoded) return {};
  EXPECT_EQ(decoded->request_id, request_id);
  return *decoded;
}

TEST(api_codec, infer_request_round_trips) {
  infer_request in;
  in.id = id_of("acme", "bot");
  in.version = 3;
  in.label = "staging";
  in.texts = {"hello", "", "caf\xC3\xA9 \xF0\x9F\x98\x80"};
  in.top_k = 5;
  auto out = round_trip(42, in);
  ASSERT_TRUE(std::holds_alternative<infer_request>(out.call));
  const auto& r = std::get<infer_request>(out.call);
  EXPECT_EQ(r.id, in.id);
  EXPECT_EQ(r.version, in.version);
  EXPECT_EQ(r.label, in.label);
  EXPECT_EQ(r.texts, in.texts);
  EXPECT_EQ(r.top_k, 5u);
}

TEST(api_codec, infer_request_defaults_round_trip) {
  infer_request in;
  in.id = id_of("a", "b");
  in.texts = {"x"};
  auto r = std::get<infer_request>(round_trip(1, in).call);
  EXPECT_FALSE(r.version.has_value());
  EXPECT_EQ(r.label, "");
  EXPECT_EQ(r.top_k, 1u);
}

TEST(api_codec, top_k_zero_on_the_wire_means_one) {
  pb::Request m;
  m.set_request_id(7);
  m.mutable_infer()->set_model("acme/bot");
  m.mutable_infer()->add_texts("hi");
  auto decoded = decode_request(m.SerializeAsString());
  ASSERT_TRUE(decoded);
  EXPECT_EQ(std::get<infer_request>(decoded->call).top_k, 1u);
}

TEST(api_codec, push_request_round_trips_binary_bytes) {
  push_request in;
  in.id = id_of("acme", "bot");
  in.bytes = "\x00\xFF\xBA\x11\x00model"s;
  in.label = "staging";
  in.note = "retrained on May data \xE2\x9C\x93";
  auto r = std::get<push_request>(round_trip(9, in).call);
  EXPECT_EQ(r.id, in.id);
  EXPECT_EQ(r.bytes, in.bytes);
  EXPECT_EQ(r.label, in.label);
  EXPECT_EQ(r.note, in.note);
}

TEST(api_codec, list_models_and_status_requests_round_trip) {
  auto list = round_trip(1, list_request{id_of("t1", "m-2")});
  ASSERT_TRUE(std::holds_alternative<list_request>(list.call));
  EXPECT_EQ(std::get<list_request>(list.call).id, id_of("t1", "m-2"));
  EXPECT_TRUE(std::holds_alternative<models_request>(round_trip(2, models_request{}).call));
  EXPECT_TRUE(std::holds_alternative<status_request>(round_trip(3, status_request{}).call));
}

TEST(api_codec, label_requests_round_trip) {
  label_request promote;
  promote.id = id_of("acme", "bot");
  promote.label = "production";
  promote.action = label_action::promote;
  promote.version = 2;
  auto p = std::get<label_request>(round_trip(5, promote).call);
  EXPECT_EQ(p.id, promote.id);
  EXPECT_EQ(p.label, "production");
  EXPECT_EQ(p.action, label_action::promote);
  EXPECT_EQ(p.version, std::optional<uint32_t>(2));

  label_request rollback;
  rollback.id = id_of("acme", "bot");
  rollback.action = label_action::rollback;
  auto r = std::get<label_request>(round_trip(6, rollback).call);
  EXPECT_EQ(r.action, label_action::rollback);
  EXPECT_EQ(r.label, "");
  EXPECT_FALSE(r.version.has_value());

  rollback.version = 1;
  EXPECT_EQ(std::get<label_request>(round_trip(7, rollback).call).version,
            std::optional<uint32_t>(1));
}

// Returns the refusal of `bytes`, failing the test when they decode.
request_error refusal(const std::string& bytes) {
  auto decoded = decode_request(bytes);
  EXPECT_FALSE(decoded);
  if (decoded) return {};
  EXPECT_EQ(decoded.error().error.code(), status_code::invalid_argument)
      << decoded.error().error.to_string();
  return decoded.error();
}

std::string infer_bytes(const std::string& model, std::vector<std::string> texts,
                        uint32_t top_k = 1, const std::string& label = "") {
  pb::Request m;
  m.set_request_id(77);
  auto* in = m.mutable_infer();
  in->set_model(model);
  for (auto& t : texts) in->add_texts(t);
  in->set_top_k(top_k);
  in->set_label(label);
  return m.SerializeAsString();
}

TEST(api_codec, refuses_a_path_as_model_id) {
  auto e = refusal(infer_bytes("../x", {"hi"}));
  EXPECT_EQ(e.request_id, 77u);
  EXPECT_NE(e.error.message().find("invalid model id '../x'"), std::string::npos)
      << e.error.message();

  pb::Request m;
  m.mutable_list()->set_model("acme/../../etc");
  EXPECT_NE(refusal(m.SerializeAsString()).error.message().find("invalid model id"),
            std::string::npos);
  m.mutable_push()->set_model("Acme/bot");
  m.mutable_push()->set_data("x");
  EXPECT_NE(refusal(m.SerializeAsString()).error.message().find("tenant must match"),
            std::string::npos);
  m.mutable_label()->set_model("acme");
  m.mutable_label()->set_version(1);
  EXPECT_NE(refusal(m.SerializeAsString()).error.message().find("expected TENANT/MODEL"),
            std::string::npos);
}

TEST(api_codec, refuses_bad_label_names) {
  auto e = refusal(infer_bytes("acme/bot", {"hi"}, 1, "Prod!"));
  EXPECT_EQ(e.error.message(),
            "invalid label 'Prod!': a label name must match [a-z0-9][a-z0-9_.-]{0,63}");

  pb::Request m;
  m.mutable_push()->set_model("acme/bot");
  m.mutable_push()->set_data("x");
  m.mutable_push()->set_label("../production");
  EXPECT_NE(refusal(m.SerializeAsString()).error.message().find("invalid label '../production'"),
            std::string::npos);
  m.mutable_label()->set_model("acme/bot");
  m.mutable_label()->set_version(2);
  m.mutable_label()->set_label(std::string(65, 'a'));
  EXPECT_NE(refusal(m.SerializeAsString()).error.message().find("invalid label"),
            std::string::npos);
}

TEST(api_codec, refuses_top_k_over_the_limit) {
  auto e = refusal(infer_bytes("acme/bot", {"hi"}, 1001));
  EXPECT_EQ(e.error.message(),
            "top_k 1001 is out of range: ask for 1..1000 predictions (0 means 1)");
  EXPECT_TRUE(decode_request(infer_bytes("acme/bot", {"hi"}, 1000)));
}

TEST(api_codec, refuses_an_empty_batch) {
  auto e = refusal(infer_bytes("acme/bot", {}));
  EXPECT_EQ(e.error.message(),
            "infer request for acme/bot has no texts and no inputs: send texts (a text model) or "
            "one tensor per input (a tensor model)");
  EXPECT_EQ(e.request_id, 77u);
}

TEST(api_codec, refuses_a_batch_over_1024_texts) {
  EXPECT_TRUE(decode_request(infer_bytes("acme/bot", std::vector<std::string>(1024, "x"))));
  auto e = refusal(infer_bytes("acme/bot", std::vector<std::string>(1025, "x")));
  EXPECT_EQ(e.error.message(),
            "infer request for acme/bot has 1025 texts: at most 1024 per request");
}

TEST(api_codec, refuses_text_that_is_not_utf8_and_names_it) {
  // protobuf will not serialize a bad string field quietly, so patch the bytes after the fact.
  std::string bytes = infer_bytes("acme/bot", {"fine", "ab@@cd"});
  auto at = bytes.find("@@");
  ASSERT_NE(at, std::string::npos);
  bytes[at] = '\xFF';
  bytes[at + 1] = '\xFE';
  auto e = refusal(bytes);
  EXPECT_EQ(e.request_id, 77u);
  EXPECT_EQ(e.error.message(),
            "request field infer.texts[1] is not valid UTF-8 (bad byte at offset 2): send text "
            "as UTF-8");
  // The message itself goes back in a protobuf string: it must be UTF-8.
  EXPECT_TRUE(utf8::is_valid_utf8(e.error.message()));
}

TEST(api_codec, refuses_a_note_that_is_not_utf8) {
  pb::Request m;
  m.mutable_push()->set_model("acme/bot");
  m.mutable_push()->set_data("\xFF\xFF");  // bytes: anything goes
  m.mutable_push()->set_note("n@te");
  std::string bytes = m.SerializeAsString();
  bytes[bytes.find("n@te") + 1] = '\xC0';
  EXPECT_NE(refusal(bytes).error.message().find("push.note is not valid UTF-8"), std::string::npos);
}

TEST(api_codec, refuses_garbage_bytes) {
  for (const std::string& garbage :
       {"\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF"s, "GET / HTTP/1.1\r\n\r\n"s, "\x0A\x05hi"s,
        "\x08"s, "\x52\x02\x0A"s}) {
    auto e = refusal(garbage);
    EXPECT_FALSE(e.error.message().empty());
  }
  auto e = refusal("\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF"s);
  EXPECT_EQ(e.error.message(),
            "malformed request: 11 bytes that are not a shoal.pb.Request protobuf message");
  EXPECT_EQ(e.request_id, 0u);
}

TEST(api_codec, refuses_a_request_without_a_call) {
  pb::Request m;
  m.set_request_id(12);
  auto e = refusal(m.SerializeAsString());
  EXPECT_EQ(e.request_id, 12u);
  EXPECT_EQ(e.error.message(),
            "request 12 carries no call: expected one of infer, push, list, models, label, status, "
            "cluster_status");
  refusal("");  // the empty message is a Request with nothing in it
}

TEST(api_codec, refuses_a_push_without_bytes) {
  pb::Request m;
  m.mutable_push()->set_model("acme/bot");
  EXPECT_EQ(refusal(m.SerializeAsString()).error.message(),
            "push to acme/bot carries no model bytes: send the model file");
}

TEST(api_codec, refuses_a_promote_without_version_and_unknown_actions) {
  pb::Request m;
  m.mutable_label()->set_model("acme/bot");
  m.mutable_label()->set_action(pb::LabelRequest::PROMOTE);
  EXPECT_EQ(refusal(m.SerializeAsString()).error.message(),
            "promote of acme/bot needs the version to promote (got 0)");
  m.mutable_label()->set_action(static_cast<pb::LabelRequest::Action>(7));
  m.mutable_label()->set_version(1);
  EXPECT_EQ(refusal(m.SerializeAsString()).error.message(),
            "unknown label action 7: expected PROMOTE or ROLLBACK");
}

TEST(api_codec, ignores_unknown_fields_from_newer_clients) {
  pb::Request m;
  m.set_request_id(3);
  m.mutable_list()->set_model("acme/bot");
  std::string bytes = m.SerializeAsString();
  bytes += "\xA0\x06\x01"s;          // field 100, varint 1
  bytes += "\xAA\x06\x02\xFF\xFF"s;  // field 101, length-delimited, not UTF-8 but not ours
  auto decoded = decode_request(bytes);
  ASSERT_TRUE(decoded) << decoded.error().error.to_string();
  EXPECT_EQ(decoded->request_id, 3u);
}

// ---- responses ---------------------------------------------------------------------------------

TEST(api_codec, infer_result_round_trips) {
  infer_result in;
  in.id = id_of("acme", "bot");
  in.version = 4;
  in.rows = {{{"greet", 0.75f}, {"bye", 0.25f}}, {}, {{"caf\xC3\xA9", 1.0f}}};
  auto out = decode_infer_response(encode_response(11, in));
  ASSERT_TRUE(out) << out.error().to_string();
  EXPECT_EQ(out->id, in.id);
  EXPECT_EQ(out->version, 4u);
  EXPECT_EQ(out->rows, in.rows);
  EXPECT_EQ(response_request_id(encode_response(11, in)), 11u);
}

TEST(api_codec, labels_that_are_not_utf8_are_replaced_not_lost) {
  infer_result in;
  in.id = id_of("acme", "bot");
  in.version = 1;
  in.rows = {{{"ol\xE9", 0.5f}}};  // a Latin-1 label from a model file
  auto out = decode_infer_response(encode_response(1, in));
  ASSERT_TRUE(out) << out.error().to_string();
  EXPECT_EQ(out->rows[0][0].label, "ol\xEF\xBF\xBD");
}

TEST(api_codec, push_result_round_trips) {
  push_result in{7, std::string(64, 'a'), {"production", "staging"}, 1, 2, "only 1 node is alive"};
  auto out = decode_push_response(encode_response(2, in));
  ASSERT_TRUE(out) << out.error().to_string();
  EXPECT_EQ(out->version, 7u);
  EXPECT_EQ(out->sha256, in.sha256);
  EXPECT_EQ(out->labels, in.labels);
  EXPECT_EQ(out->copies, 1u);
  EXPECT_EQ(out->replication_factor, 2u);
  EXPECT_EQ(out->replication_note, "only 1 node is alive");
}

model_entry sample_entry(const char* model) {
  model_entry e;
  e.id = id_of("acme", model);
  for (uint32_t v = 1; v <= 3; ++v) {
    snapshot_info s;
    s.version = v;
    s.sha256 = std::string(64, char('0' + v));
    s.created_ms = 1714564800000 + v;
    s.size_bytes = 1000 * v;
    s.format = "fasttext";
    s.note = v == 2 ? "retrained \xE2\x9C\x93" : "";
    e.snapshots.push_back(s);
  }
  label_state prod;
  prod.stack = {1};
  prod.history = {{0, 1, label_action::promote, 10},
                  {1, 2, label_action::promote, 20},
                  {2, 1, label_action::rollback, 30}};
  e.labels["production"] = prod;
  label_state staging;
  staging.stack = {1, 3};
  staging.history = {{0, 1, label_action::promote, 5}, {1, 3, label_action::promote, 40}};
  e.labels["staging"] = staging;
  return e;
}

void expect_same_entry(const model_entry& a, const model_entry& b) {
  EXPECT_EQ(a.id, b.id);
  ASSERT_EQ(a.snapshots.size(), b.snapshots.size());
  for (size_t i = 0; i < a.snapshots.size(); ++i) {
    EXPECT_EQ(a.snapshots[i].version, b.snapshots[i].version);
    EXPECT_EQ(a.snapshots[i].sha256, b.snapshots[i].sha256);
    EXPECT_EQ(a.snapshots[i].created_ms, b.snapshots[i].created_ms);
    EXPECT_EQ(a.snapshots[i].size_bytes, b.snapshots[i].size_bytes);
    EXPECT_EQ(a.snapshots[i].format, b.snapshots[i].format);
    EXPECT_EQ(a.snapshots[i].note, b.snapshots[i].note);
  }
  ASSERT_EQ(a.labels.size(), b.labels.size());
  for (const auto& [name, st] : a.labels) {
    ASSERT_EQ(b.labels.count(name), 1u) << name;
    const auto& other = b.labels.at(name);
    EXPECT_EQ(st.stack, other.stack) << name;
    ASSERT_EQ(st.history.size(), other.history.size()) << name;
    for (size_t i = 0; i < st.history.size(); ++i) {
      EXPECT_EQ(st.history[i].from, other.history[i].from);
      EXPECT_EQ(st.history[i].to, other.history[i].to);
      EXPECT_EQ(st.history[i].action, other.history[i].action);
      EXPECT_EQ(st.history[i].time_ms, other.history[i].time_ms);
    }
  }
}

TEST(api_codec, model_entry_round_trips_with_label_history) {
  model_entry in = sample_entry("bot");
  std::string bytes = encode_response(3, in);
  auto out = decode_list_response(bytes);
  ASSERT_TRUE(out) << out.error().to_string();
  expect_same_entry(in, *out);

  // The wire also says which labels sit on each snapshot, for clients that only read that.
  pb::Response m;
  ASSERT_TRUE(m.ParseFromString(bytes));
  ASSERT_EQ(m.list().snapshots_size(), 3);
  EXPECT_EQ(m.list().snapshots(0).labels_size(), 1);
  EXPECT_EQ(m.list().snapshots(0).labels(0), "production");
  EXPECT_EQ(m.list().snapshots(2).labels(0), "staging");
  EXPECT_EQ(m.list().labels(1).version(), 3u);
}

TEST(api_codec, a_label_without_stack_falls_back_to_its_version) {
  pb::Response m;
  m.mutable_list()->set_model("acme/bot");
  auto* l = m.mutable_list()->add_labels();
  l->set_name("production");
  l->set_version(2);
  auto out = decode_list_response(m.SerializeAsString());
  ASSERT_TRUE(out);
  EXPECT_EQ(out->labels.at("production").current(), 2u);
}

TEST(api_codec, models_round_trip) {
  std::vector<model_entry> in = {sample_entry("bot"), sample_entry("faq")};
  auto out = decode_models_response(encode_response(4, in));
  ASSERT_TRUE(out) << out.error().to_string();
  ASSERT_EQ(out->size(), 2u);
  expect_same_entry(in[0], (*out)[0]);
  expect_same_entry(in[1], (*out)[1]);

  auto none = decode_models_response(encode_response(4, std::vector<model_entry>{}));
  ASSERT_TRUE(none) << none.error().to_string();
  EXPECT_TRUE(none->empty());
}

TEST(api_codec, label_result_and_node_status_round_trip) {
  auto l = decode_label_response(encode_response(5, label_result{"production", 2, 1}));
  ASSERT_TRUE(l);
  EXPECT_EQ(l->label, "production");
  EXPECT_EQ(l->from, 2u);
  EXPECT_EQ(l->to, 1u);

  auto s = decode_status_response(encode_response(6, node_status{"node-1", "0.1.0", 3, 9}));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->name, "node-1");
  EXPECT_EQ(s->version, "0.1.0");
  EXPECT_EQ(s->models, 3u);
  EXPECT_EQ(s->snapshots, 9u);
}

TEST(api_codec, every_error_code_comes_back_with_its_message) {
  const std::vector<status> errors = {
      status::invalid_argument("bad"),
      status::not_found("model acme/bot has no version 7 (versions: 1-3)"),
      status::already_exists("x"),
      status::failed_precondition("label production has no earlier version to roll back to"),
      status::too_large("big"),
      status::resource_exhausted("overloaded"),
      status::unavailable("draining"),
      status::corruption("checksum"),
      status::io_error("disk"),
      status::internal("bug"),
  };
  for (const auto& e : errors) {
    std::string bytes = encode_error(99, e);
    EXPECT_EQ(response_request_id(bytes), 99u);
    EXPECT_EQ(decode_infer_response(bytes).error(), e);
    EXPECT_EQ(decode_push_response(bytes).error(), e);
    EXPECT_EQ(decode_list_response(bytes).error(), e);
    EXPECT_EQ(decode_models_response(bytes).error(), e);
    EXPECT_EQ(decode_label_response(bytes).error(), e);
    EXPECT_EQ(decode_status_response(bytes).error(), e);
  }
}

TEST(api_codec, an_error_message_that_quotes_bad_bytes_still_travels) {
  auto out = decode_list_response(encode_error(1, status::invalid_argument("bad id '\xFF'")));
  EXPECT_EQ(out.error().code(), status_code::invalid_argument);
  EXPECT_EQ(out.error().message(), "bad id '\xEF\xBF\xBD'");
}

TEST(api_codec, unknown_error_codes_become_internal) {
  pb::Response m;
  m.mutable_error()->set_code(static_cast<pb::Error::Code>(42));
  m.mutable_error()->set_message("from the future");
  auto out = decode_status_response(m.SerializeAsString());
  EXPECT_EQ(out.error(), status::internal("from the future"));
  m.mutable_error()->set_code(pb::Error::NOT_FOUND);
  m.mutable_error()->clear_message();
  EXPECT_EQ(decode_status_response(m.SerializeAsString()).error(),
            status::not_found("the node reported not_found without a message"));
}

TEST(api_codec, a_reply_of_the_wrong_kind_is_internal) {
  auto out = decode_infer_response(encode_response(1, push_result{1, "abc", {}, 1, 1, ""}));
  EXPECT_EQ(out.error(),
            status::internal("the node answered with a push reply where infer was asked for"));
}

TEST(api_codec, a_garbage_reply_is_internal) {
  auto out = decode_push_response("\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF"s);
  EXPECT_EQ(out.error().code(), status_code::internal);
  EXPECT_NE(out.error().message().find("not a shoal.pb.Response"), std::string::npos);
  EXPECT_EQ(response_request_id("\xFF"s), 0u);
}

TEST(api_codec, label_action_names_match_the_wire) {
  EXPECT_STREQ(label_action_name(label_action::promote), "promote");
  EXPECT_STREQ(label_action_name(label_action::rollback), "rollback");
}

// ---- cluster status ----------------------------------------------------------------------------

using testing::sample_member;

TEST(api_codec, cluster_status_round_trips) {
  auto req = decode_request(encode_request(5, cluster_status_request{}));
  ASSERT_TRUE(req);
  EXPECT_TRUE(std::holds_alternative<cluster_status_request>(req->call));

  cluster_status st;
  member_view self;
  self.entry = sample_member("a");
  self.is_self = true;
  member_view peer;
  peer.entry = sample_member("b");
  peer.phi = 3.5;
  peer.since_heard_ms = 250;
  st.members = {self, peer};
  auto back = decode_cluster_status_response(encode_response(5, st));
  ASSERT_TRUE(back.is_ok()) << back.error().message();
  ASSERT_EQ(back->members.size(), 2u);
  EXPECT_EQ(back->members[0].entry, self.entry);
  EXPECT_TRUE(back->members[0].is_self);
  EXPECT_FALSE(back->members[0].since_heard_ms.has_value());
  EXPECT_EQ(back->members[1].entry, peer.entry);
  EXPECT_EQ(back->members[1].phi, 3.5);
  EXPECT_EQ(back->members[1].since_heard_ms, 250);
}

TEST(api_codec, a_cluster_status_with_a_bad_member_is_internal) {
  cluster_status st;
  member_view v;
  v.entry = sample_member("a");
  v.entry.cluster_address = "not an address";
  st.members = {v};
  auto back = decode_cluster_status_response(encode_response(5, st));
  ASSERT_FALSE(back.is_ok());
  EXPECT_EQ(back.error().code(), status_code::internal);
  EXPECT_EQ(back.error().message(), "the node sent a bad member: invalid member entry 'node a': "
                                    "cluster address is not HOST:PORT");
}

}  // namespace
}  // namespace shoal
