// Over 500 lines: every case of v2_codec in one suite, so it reads as its specification.
#include "shoal/wire/v2_codec.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "shoal/base/json_string.hpp"
#include "shoal/base/utf8.hpp"

namespace shoal {
namespace {

using json = nlohmann::json;
using kind = http_route::kind;

// ---- routes ------------------------------------------------------------------------------------

struct route_case {
  const char* method;
  const char* target;
  kind what;
  const char* id;  // "" for none
  std::optional<uint32_t> version;
};

TEST(v2_codec, routes_every_known_path) {
  const route_case cases[] = {
      {"GET", "/v2", kind::server_meta, "", {}},
      {"GET", "/v2/", kind::server_meta, "", {}},
      {"GET", "/v2/health/live", kind::live, "", {}},
      {"GET", "/v2/health/live/", kind::live, "", {}},
      {"GET", "/v2/health/live?verbose=1", kind::live, "", {}},
      {"GET", "/v2/health/ready", kind::ready, "", {}},
      {"GET", "/metrics", kind::metrics, "", {}},
      {"GET", "http://localhost:7422/v2/health/ready", kind::ready, "", {}},
      {"GET", "/v2/models/acme/bot", kind::model_meta, "acme/bot", {}},
      {"GET", "/v2/models/acme/bot/", kind::model_meta, "acme/bot", {}},
      {"GET", "/v2/models/acme%2Fbot", kind::model_meta, "acme/bot", {}},
      {"GET", "/v2/models/acme%2fbot", kind::model_meta, "acme/bot", {}},
      {"GET", "/v2/models/%61cme/b%6Ft", kind::model_meta, "acme/bot", {}},
      {"GET", "/v2/models/acme/bot/versions/3", kind::model_meta, "acme/bot", 3u},
      {"GET", "/v2/models/acme%2Fbot/versions/3", kind::model_meta, "acme/bot", 3u},
      {"GET", "/v2/models/acme/bot/versions/4294967295", kind::model_meta, "acme/bot", 4294967295u},
      {"GET", "/v2/models/acme/bot/ready", kind::model_ready, "acme/bot", {}},
      {"GET", "/v2/models/acme/bot/versions/12/ready", kind::model_ready, "acme/bot", 12u},
      {"GET", "/v2/models/acme%2Fbot/ready", kind::model_ready, "acme/bot", {}},
      {"POST", "/v2/models/acme/bot/infer", kind::infer, "acme/bot", {}},
      {"POST", "/v2/models/acme/bot/infer?x=y", kind::infer, "acme/bot", {}},
      {"POST", "/v2/models/acme%2Fbot/infer", kind::infer, "acme/bot", {}},
      {"POST", "/v2/models/acme/bot/versions/7/infer", kind::infer, "acme/bot", 7u},
      {"POST", "/v2/models/t-1/m_2/versions/07/infer", kind::infer, "t-1/m_2", 7u},
      {"GET", "/v2/models/acme/bot/stats", kind::model_stats, "acme/bot", {}},
      {"GET", "/v2/models/acme%2Fbot/versions/2/stats", kind::model_stats, "acme/bot", 2u},
      {"POST", "/v2/repository/index", kind::repo_index, "", {}},
      {"POST", "/v2/repository/models/acme/bot/load", kind::repo_load, "acme/bot", {}},
      {"POST", "/v2/repository/models/acme%2Fbot/unload", kind::repo_unload, "acme/bot", {}},
      // Two path parts are always the id: this is the metadata of model "ready" of tenant acme.
      {"GET", "/v2/models/acme/ready", kind::model_meta, "acme/ready", {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.method) + " " + c.target);
    auto r = parse_route(c.method, c.target);
    ASSERT_TRUE(r.is_ok()) << r.error().to_string();
    EXPECT_EQ(r.http_status(), 200);
    EXPECT_EQ(r->what, c.what);
    EXPECT_EQ(r->id.str() == "/" ? std::string() : r->id.str(), c.id);
    EXPECT_EQ(r->version, c.version);
  }
}

struct route_error_case {
  const char* method;
  const char* target;
  int http_status;
  const char* message_part;
};

TEST(v2_codec, refuses_bad_paths_with_the_right_status) {
  const route_error_case cases[] = {
      {"GET", "", 404, "no such path"},
      {"GET", "*", 404, "no such path"},
      {"GET", "/", 404, "no such path"},
      {"GET", "/v1/health/live", 404, "no such path"},
      {"GET", "/v2/health", 404, "no such path"},
      {"GET", "/v2/health/dead", 404, "no such path"},
      {"GET", "/v2//health/live", 404, "no such path"},
      {"GET", "/v2/health/live//", 404, "no such path"},
      {"GET", "/v2/models", 404, "no such path"},
      {"GET", "/v2/models/acme/bot/versions/3/infer/x", 404, "no such path"},
      {"GET", "/v2/models/acme/bot/a/b/c/d/e/f/g/h", 404, "no such path"},
      {"POST", "/nope", 404, "no such path"},  // 404 wins over 405
      {"GET", "/v2/models/../x", 400, "invalid model id"},
      {"GET", "/v2/models/..%2Fx", 400, "invalid model id"},
      {"GET", "/v2/models/acme", 400, "expected TENANT/MODEL"},
      {"GET", "/v2/models/Acme/bot", 400, "tenant must match"},
      {"GET", "/v2/models/acme/bot%2Fx", 400, "invalid model id"},
      {"GET", "/v2/models/acme%2Fbot%2Fx", 400, "invalid model id"},
      {"GET", "/v2/models/acme%2F/bot", 400, "invalid model id"},
      {"GET", "/v2/models/acme/%00bot", 400, "invalid model id"},
      {"GET", "/v2/models/acme/b%zzot", 400, "invalid percent-escape"},
      {"GET", "/v2/models/acme/bot%", 400, "invalid percent-escape"},
      {"GET", "/v2/models/acme/bot%4", 400, "invalid percent-escape"},
      {"GET", "/v2/models/acme/bot/versions/0", 400, "positive integer"},
      {"GET", "/v2/models/acme/bot/versions/-1", 400, "positive integer"},
      {"GET", "/v2/models/acme/bot/versions/abc", 400, "positive integer"},
      {"GET", "/v2/models/acme/bot/versions/1.5", 400, "positive integer"},
      {"GET", "/v2/models/acme/bot/versions/+3", 400, "positive integer"},
      {"GET", "/v2/models/acme/bot/versions/4294967296", 400, "positive integer"},
      {"GET", "/v2/models/acme/bot/versions/99999999999", 400, "positive integer"},
      {"GET", "/v2/models/acme/bot/versions", 400, "missing version"},
      {"GET", "/v2/models/acme/bot/versions/", 400, "missing version"},
      {"POST", "/v2/health/live", 405, "use GET"},
      {"GET", "/v2/repository/index", 405, "use POST"},
      {"POST", "/v2/repository/models/acme/bot", 404, "no such path"},
      {"POST", "/v2/repository/models/acme/bot/reload", 404, "no such path"},
      {"POST", "/v2/repository/models/acme", 404, "no such path"},
      {"DELETE", "/v2", 405, "use GET"},
      {"PUT", "/metrics", 405, "use GET"},
      {"POST", "/v2/models/acme/bot", 405, "use GET"},
      {"GET", "/v2/models/acme/bot/infer", 405, "use POST"},
      {"PUT", "/v2/models/acme%2Fbot/versions/2/infer", 405, "use POST"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.method) + " " + c.target);
    auto r = parse_route(c.method, c.target);
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.http_status(), c.http_status);
    EXPECT_NE(r.error().message().find(c.message_part), std::string::npos) << r.error().message();
    EXPECT_EQ(r.allow().empty(), c.http_status != 405);
  }
}

TEST(v2_codec, method_not_allowed_names_the_allowed_method) {
  auto post = parse_route("POST", "/v2/health/ready");
  EXPECT_EQ(post.http_status(), 405);
  EXPECT_EQ(post.allow(), "GET, HEAD");
  auto get = parse_route("GET", "/v2/models/acme/bot/versions/2/infer");
  EXPECT_EQ(get.allow(), "POST");
  auto head = parse_route("HEAD", "/v2/models/acme/bot/infer");
  EXPECT_EQ(head.http_status(), 405) << "HEAD is GET without the body; infer is POST only";
  EXPECT_EQ(head.allow(), "POST");
  EXPECT_EQ(std::string(allowed_method(kind::infer)), "POST");
  EXPECT_EQ(std::string(allowed_method(kind::model_meta)), "GET");
}

// Regression: HEAD on a GET path answered 405 although the server writes HEAD answers (headers,
// no body); RFC 9110 9.3.2 makes HEAD "identical to GET" without the content.
TEST(v2_codec, head_is_taken_wherever_get_is) {
  for (const char* target : {"/v2", "/v2/health/live", "/v2/health/ready", "/metrics",
                             "/v2/models/acme/bot", "/v2/models/acme/bot/versions/2/ready"}) {
    SCOPED_TRACE(target);
    auto get = parse_route("GET", target);
    auto head = parse_route("HEAD", target);
    ASSERT_TRUE(get.is_ok());
    ASSERT_TRUE(head.is_ok()) << head.error().message();
    EXPECT_EQ(*head, *get);
  }
}

TEST(v2_codec, percent_decodes_segments) {
  EXPECT_EQ(*percent_decode(""), "");
  EXPECT_EQ(*percent_decode("abc"), "abc");
  EXPECT_EQ(*percent_decode("a%2Fb"), "a/b");
  EXPECT_EQ(*percent_decode("%41%62%63"), "Abc");
  EXPECT_EQ(*percent_decode("a+b"), "a+b");
  EXPECT_EQ(*percent_decode("%25"), "%");
  EXPECT_EQ(*percent_decode("%00"), std::string(1, '\0'));
  EXPECT_EQ(*percent_decode("%ff"), "\xff");
  for (const char* bad : {"%", "%4", "%g0", "%0g", "a%", "%%41"}) {
    SCOPED_TRACE(bad);
    auto r = percent_decode(bad);
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.error().code(), status_code::invalid_argument);
  }
}

// ---- UTF-8 -------------------------------------------------------------------------------------

TEST(v2_codec, utf8_accepts_well_formed_text) {
  const char* good[] = {
      "",
      "plain ascii text that is longer than eight bytes",
      "caf\xC3\xA9",                      // U+00E9
      "\xC2\x80",                         // U+0080, the smallest two-byte form
      "\xDF\xBF",                         // U+07FF
      "\xE0\xA0\x80",                     // U+0800
      "\xE2\x82\xAC",                     // U+20AC
      "\xED\x9F\xBF",                     // U+D7FF, just below the surrogates
      "\xEE\x80\x80",                     // U+E000, just above them
      "\xEF\xBF\xBF",                     // U+FFFF
      "\xF0\x90\x80\x80",                 // U+10000
      "\xF0\x9D\x84\x9E",                 // U+1D11E
      "\xF4\x8F\xBF\xBF",                 // U+10FFFF, the last code point
      "12345678\xE2\x82\xAC" "12345678",  // multibyte between fast-path words
  };
  for (const char* s : good) {
    EXPECT_TRUE(utf8::is_valid_utf8(s)) << s;
  }
  EXPECT_TRUE(utf8::is_valid_utf8(std::string_view("a\0b", 3)));
}

TEST(v2_codec, utf8_refuses_overlongs_surrogates_and_out_of_range) {
  const char* bad[] = {
      "\x80",                  // continuation without a lead
      "\xBF",                  //
      "\xC0\x80",              // overlong NUL
      "\xC1\xBF",              // overlong U+007F
      "\xE0\x80\x80",          // overlong
      "\xE0\x9F\xBF",          // overlong U+07FF
      "\xED\xA0\x80",          // U+D800 (surrogate)
      "\xED\xBF\xBF",          // U+DFFF (surrogate)
      "\xF0\x80\x80\x80",      // overlong
      "\xF0\x8F\xBF\xBF",      // overlong U+FFFF
      "\xF4\x90\x80\x80",      // U+110000
      "\xF5\x80\x80\x80",      // lead byte above F4
      "\xFE",                  //
      "\xFF",                  //
      "\xC3",                  // truncated at the end
      "\xE2\x82",              // truncated
      "\xF0\x9D\x84",          // truncated
      "\xC3\x28",              // bad continuation
      "\xE2\x28\xA1",          // bad continuation
      "abcdefgh\xC3",          // truncated after a fast-path word
      "abcdefghijklmnop\x80",  //
  };
  for (const char* s : bad) {
    EXPECT_FALSE(utf8::is_valid_utf8(s)) << testing::PrintToString(std::string(s));
  }
}

// ---- infer body --------------------------------------------------------------------------------

http_route infer_route(std::optional<uint32_t> version = {}) {
  return {kind::infer, model_id{"acme", "bot"}, version};
}

TEST(v2_codec, parses_an_infer_body) {
  auto r = parse_infer_body(infer_route(), R"({
      "id": "req-42",
      "inputs": [{"name": "text", "shape": [3], "datatype": "BYTES",
                  "data": ["hello", "caf\u00e9 \ud83d\ude00", ""]}],
      "parameters": {"top_k": 3, "unrelated": true},
      "outputs": [{"name": "labels"}]})",
                            1024);
  ASSERT_TRUE(r.is_ok()) << r.error().to_string();
  EXPECT_EQ(r->form.request_id, "req-42");
  EXPECT_EQ(r->request.id.str(), "acme/bot");
  EXPECT_EQ(r->request.version, std::nullopt);
  EXPECT_EQ(r->request.label, "");
  EXPECT_EQ(r->request.top_k, 3u);
  ASSERT_EQ(r->request.texts.size(), 3u);
  EXPECT_EQ(r->request.texts[0], "hello");
  EXPECT_EQ(r->request.texts[1], "caf\xC3\xA9 \xF0\x9F\x98\x80");
  EXPECT_EQ(r->request.texts[2], "");
}

TEST(v2_codec, infer_defaults_top_k_to_one_and_takes_version_from_the_path) {
  auto r = parse_infer_body(
      infer_route(5), R"({"inputs":[{"name":"text","shape":[2,1],"datatype":"BYTES","data":["a","b"]}]})",
      1024);
  ASSERT_TRUE(r.is_ok()) << r.error().to_string();
  EXPECT_EQ(r->request.top_k, 1u);
  EXPECT_EQ(r->request.version, 5u);
  EXPECT_EQ(r->form.request_id, "");
  EXPECT_EQ(r->request.texts, (std::vector<std::string>{"a", "b"}));
}

TEST(v2_codec, infer_takes_a_label) {
  auto r = parse_infer_body(
      infer_route(),
      R"({"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["a"]}],"parameters":{"label":"staging","top_k":1000}})",
      1024);
  ASSERT_TRUE(r.is_ok()) << r.error().to_string();
  EXPECT_EQ(r->request.label, "staging");
  EXPECT_EQ(r->request.top_k, 1000u);
}

// Builds a body around one input whose fields are given as raw JSON.
std::string body_with(const std::string& input, const std::string& extra = "") {
  return R"({"inputs":[)" + input + "]" + extra + "}";
}

const std::string good_input = R"({"name":"text","shape":[1],"datatype":"BYTES","data":["x"]})";

struct body_case {
  std::string name;
  std::string body;
  const char* message_part;
};

TEST(v2_codec, refuses_every_bad_infer_body_with_400_and_a_reason) {
  const body_case cases[] = {
      {"empty body", "", "empty"},
      {"malformed json", "{", "not valid JSON"},
      {"trailing garbage", "{} x", "not valid JSON"},
      {"lone surrogate escape",
       body_with(R"({"name":"text","shape":[1],"datatype":"BYTES","data":["\ud800"]})"),
       "not valid JSON"},
      {"invalid utf8 in a text",
       body_with(
           "{\"name\":\"text\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"\xC0\x80\"]}"),
       "not valid UTF-8"},
      {"surrogate bytes in a text",
       body_with(
           "{\"name\":\"text\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"\xED\xA0\x80\"]}"),
       "not valid UTF-8"},
      {"above U+10FFFF in a text",
       body_with("{\"name\":\"text\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":["
                 "\"\xF4\x90\x80\x80\"]}"),
       "not valid UTF-8"},
      {"not an object", "[1,2]", "must be a JSON object"},
      {"no inputs", "{}", "no \"inputs\""},
      {"inputs not an array", R"({"inputs":{}})", "must be an array"},
      {"inputs empty", R"({"inputs":[]})", "is empty"},
      {"two inputs", body_with(good_input + "," + good_input), "has 2 inputs"},
      {"input not an object", body_with("1"), "must be an object"},
      {"no name", body_with(R"({"shape":[1],"datatype":"BYTES","data":["x"]})"),
       "\"name\":\"text\""},
      {"no datatype", body_with(R"({"name":"text","shape":[1],"data":["x"]})"),
       "\"datatype\":\"BYTES\""},
      {"wrong datatype", body_with(R"({"name":"text","shape":[1],"datatype":"FP32","data":[1.0]})"),
       "datatype is 'FP32'"},
      {"no data", body_with(R"({"name":"text","shape":[1],"datatype":"BYTES"})"), "no \"data\""},
      {"data not an array",
       body_with(R"({"name":"text","shape":[1],"datatype":"BYTES","data":"x"})"),
       "array of strings"},
      {"data empty", body_with(R"({"name":"text","shape":[0],"datatype":"BYTES","data":[]})"),
       "at least one text"},
      {"data item a number",
       body_with(R"({"name":"text","shape":[2],"datatype":"BYTES","data":["x",1]})"),
       "data[1] is an integer"},
      {"data item null",
       body_with(R"({"name":"text","shape":[1],"datatype":"BYTES","data":[null]})"),
       "data[0] is null"},
      {"nested data with a 1-D shape",
       body_with(R"({"name":"text","shape":[1],"datatype":"BYTES","data":[["x"]]})"),
       "data[0] is an array"},
      {"nested then flat",
       body_with(R"({"name":"text","shape":[2,1],"datatype":"BYTES","data":[["x"],"y"]})"),
       "data[1] is a string: nested data holds one text per row"},
      {"flat then nested",
       body_with(R"({"name":"text","shape":[2],"datatype":"BYTES","data":["x",["y"]]})"),
       "data[1] is an array: every item must be a string"},
      {"nested row of two",
       body_with(R"({"name":"text","shape":[1,2],"datatype":"BYTES","data":[["x","y"]]})"),
       "data[0] is an array of 2 items"},
      {"nested row empty",
       body_with(R"({"name":"text","shape":[1,1],"datatype":"BYTES","data":[[]]})"),
       "data[0] is an array of 0 items"},
      {"nested three deep",
       body_with(R"({"name":"text","shape":[1,1,1],"datatype":"BYTES","data":[[["x"]]]})"),
       "nested data holds one text per row"},
      {"nested row of a number",
       body_with(R"({"name":"text","shape":[1,1],"datatype":"BYTES","data":[[1]]})"),
       "nested data holds one text per row"},
      {"nested shape mismatch",
       body_with(R"({"name":"text","shape":[3,1],"datatype":"BYTES","data":[["x"],["y"]]})"),
       "does not match the 2 texts"},
      {"outputs not an array", body_with(good_input, R"(,"outputs":{"name":"labels"})"),
       "\"outputs\" must be an array"},
      {"output not an object", body_with(good_input, R"(,"outputs":["labels"])"),
       "outputs[0] must be an object with a \"name\""},
      {"output without a name", body_with(good_input, R"(,"outputs":[{"parameters":{}}])"),
       "outputs[0] must be an object with a \"name\""},
      {"unknown output", body_with(good_input, R"(,"outputs":[{"name":"probabilities"}])"),
       "unknown output 'probabilities': this model's outputs are labels (BYTES) and scores (FP32)"},
      {"output twice", body_with(good_input, R"(,"outputs":[{"name":"scores"},{"name":"scores"}])"),
       "output 'scores' is asked for twice"},
      {"output parameters not an object",
       body_with(good_input, R"(,"outputs":[{"name":"scores","parameters":3}])"),
       "outputs[0].parameters must be an object"},
      {"binary_data not a bool",
       body_with(good_input,
                 R"(,"outputs":[{"name":"scores","parameters":{"binary_data":"yes"}}])"),
       "binary_data must be true or false"},
      {"classification zero",
       body_with(good_input, R"(,"outputs":[{"name":"labels","parameters":{"classification":0}}])"),
       "outputs[0].parameters.classification must be an integer from 1 to 1000"},
      {"classification too large",
       body_with(good_input,
                 R"(,"outputs":[{"name":"labels","parameters":{"classification":1001}}])"),
       "classification must be"},
      {"classification a string",
       body_with(good_input,
                 R"(,"outputs":[{"name":"labels","parameters":{"classification":"3"}}])"),
       "classification must be"},
      {"classifications differ",
       body_with(
           good_input,
           R"(,"outputs":[{"name":"labels","parameters":{"classification":2}},{"name":"scores","parameters":{"classification":3}}])"),
       "classification 2 and 3"},
      {"classification and top_k differ",
       body_with(
           good_input,
           R"(,"outputs":[{"name":"labels","parameters":{"classification":2}}],"parameters":{"top_k":3})"),
       "top_k is 3 but an output asks for classification 2"},
      {"no shape", body_with(R"({"name":"text","datatype":"BYTES","data":["x"]})"), "no \"shape\""},
      {"shape mismatch",
       body_with(R"({"name":"text","shape":[3],"datatype":"BYTES","data":["x","y"]})"),
       "does not match"},
      {"shape 2-D",
       body_with(R"({"name":"text","shape":[1,2],"datatype":"BYTES","data":["x","y"]})"),
       "not supported"},
      {"shape 3-D", body_with(R"({"name":"text","shape":[1,1,1],"datatype":"BYTES","data":["x"]})"),
       "not supported"},
      {"shape negative",
       body_with(R"({"name":"text","shape":[-1],"datatype":"BYTES","data":["x"]})"),
       "not a list of sizes"},
      {"shape not a list",
       body_with(R"({"name":"text","shape":1,"datatype":"BYTES","data":["x"]})"),
       "not a list of sizes"},
      {"shape empty", body_with(R"({"name":"text","shape":[],"datatype":"BYTES","data":["x"]})"),
       "not a list of sizes"},
      {"parameters not an object", body_with(good_input, R"(,"parameters":[1])"),
       "\"parameters\" must be an object"},
      {"top_k zero", body_with(good_input, R"(,"parameters":{"top_k":0})"),
       "top_k must be an integer from 1 to 1000"},
      {"top_k negative", body_with(good_input, R"(,"parameters":{"top_k":-3})"), "top_k must be"},
      {"top_k too large", body_with(good_input, R"(,"parameters":{"top_k":1001})"),
       "top_k must be"},
      {"top_k huge", body_with(good_input, R"(,"parameters":{"top_k":184467440737095516150})"),
       "top_k must be"},
      {"top_k string", body_with(good_input, R"(,"parameters":{"top_k":"3"})"), "not a string"},
      {"top_k fraction", body_with(good_input, R"(,"parameters":{"top_k":2.5})"), "not a number"},
      {"top_k bool", body_with(good_input, R"(,"parameters":{"top_k":true})"), "not a boolean"},
      {"label not a string", body_with(good_input, R"(,"parameters":{"label":3})"),
       "label must be a string"},
      {"label invalid", body_with(good_input, R"(,"parameters":{"label":"../Prod"})"),
       "invalid label"},
      {"label empty", body_with(good_input, R"(,"parameters":{"label":""})"), "invalid label"},
      {"id not a string", body_with(good_input, R"(,"id":7)"), "\"id\" must be a string"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = parse_infer_body(infer_route(), c.body, 1024);
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.error().code(), status_code::invalid_argument);
    EXPECT_EQ(http_status(r.error().code()), 400);
    EXPECT_NE(r.error().message().find(c.message_part), std::string::npos) << r.error().message();
  }
}

// Regression: nested data ([["a"],["b"]] for shape [2,1]), which the protocol allows and clients
// send for 2-D tensors, was refused.
TEST(v2_codec, infer_takes_nested_data_for_a_two_dimensional_shape) {
  auto r = parse_infer_body(
      infer_route(),
      R"({"inputs":[{"name":"text","shape":[3,1],"datatype":"BYTES","data":[["a"],["b c"],[""]]}]})",
      1024);
  ASSERT_TRUE(r.is_ok()) << r.error().to_string();
  EXPECT_EQ(r->request.texts, (std::vector<std::string>{"a", "b c", ""}));
  auto over = parse_infer_body(
      infer_route(),
      R"({"inputs":[{"name":"text","shape":[3,1],"datatype":"BYTES","data":[["a"],["b"],["c"]]}]})",
      2);
  ASSERT_FALSE(over.is_ok());
  EXPECT_NE(over.error().message().find("3 texts is over the limit of 2"), std::string::npos);
}

infer_result sample_result();  // below, with the answer tests

// Regression: "outputs" was ignored: asking for labels returned scores too, and an unknown name
// was not refused.
TEST(v2_codec, infer_answers_the_outputs_asked_for) {
  auto parse = [](const std::string& outputs) {
    auto r = parse_infer_body(infer_route(), body_with(good_input, outputs), 1024);
    EXPECT_TRUE(r.is_ok()) << outputs << ": " << r.error().to_string();
    return r.is_ok() ? r->form.outputs : v2_outputs{false, false};
  };
  auto names = [](v2_outputs o) {
    std::vector<std::string> out;
    const json answer = json::parse(render_infer(sample_result(), 2, "", o));
    for (const auto& t : answer["outputs"]) {
      out.push_back(t["name"]);
    }
    return out;
  };
  using names_t = std::vector<std::string>;
  EXPECT_EQ(names(parse("")), (names_t{"labels", "scores"})) << "no outputs: all of them";
  EXPECT_EQ(names(parse(R"(,"outputs":[])")), (names_t{"labels", "scores"}));
  EXPECT_EQ(names(parse(R"(,"outputs":[{"name":"labels"}])")), (names_t{"labels"}));
  EXPECT_EQ(names(parse(R"(,"outputs":[{"name":"scores","parameters":{"binary_data":false}}])")),
            (names_t{"scores"}));
  EXPECT_EQ(names(parse(R"(,"outputs":[{"name":"scores"},{"name":"labels"}])")),
            (names_t{"labels", "scores"}));
  auto scores_only = json::parse(render_infer(sample_result(), 2, "r", v2_outputs{false, true}));
  EXPECT_EQ(scores_only["outputs"][0]["shape"], json::array({2, 2}));
  EXPECT_EQ(scores_only["outputs"][0]["data"].size(), 4u);
}

// Regression: Triton's classification parameter (tritonclient's class_count) was ignored; it asks
// for the top N classes, which is top_k here.
TEST(v2_codec, infer_reads_a_classification_count_as_top_k) {
  auto r = parse_infer_body(
      infer_route(),
      body_with(good_input,
                R"(,"outputs":[{"name":"labels","parameters":{"classification":3,"binary_data":true}}])"),
      1024);
  ASSERT_TRUE(r.is_ok()) << r.error().to_string();
  EXPECT_EQ(r->request.top_k, 3u);
  EXPECT_TRUE(r->form.outputs.labels);
  EXPECT_FALSE(r->form.outputs.scores);
  auto same = parse_infer_body(
      infer_route(),
      body_with(good_input, R"(,"outputs":[{"name":"labels","parameters":{"classification":2}},)"
                            R"({"name":"scores","parameters":{"classification":2}}],"parameters":{"top_k":2})"),
      1024);
  ASSERT_TRUE(same.is_ok()) << same.error().to_string();
  EXPECT_EQ(same->request.top_k, 2u);
}

TEST(v2_codec, refuses_a_batch_over_the_limit) {
  auto body = body_with(R"({"name":"text","shape":[4],"datatype":"BYTES","data":["a","b","c","d"]})");
  EXPECT_TRUE(parse_infer_body(infer_route(), body, 4).is_ok());
  auto r = parse_infer_body(infer_route(), body, 3);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.error().code(), status_code::invalid_argument);
  EXPECT_NE(r.error().message().find("4 texts is over the limit of 3"), std::string::npos);
}

TEST(v2_codec, refuses_a_version_in_the_path_with_a_label_in_the_body) {
  auto r = parse_infer_body(infer_route(2), body_with(good_input, R"(,"parameters":{"label":"staging"})"),
                            1024);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.error().code(), status_code::invalid_argument);
  EXPECT_NE(r.error().message().find("give one of them"), std::string::npos);
}

TEST(v2_codec, survives_deeply_nested_json) {
  std::string deep = R"({"inputs":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
  auto r = parse_infer_body(infer_route(), deep, 1024);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.error().code(), status_code::invalid_argument);
  auto unclosed = parse_infer_body(infer_route(), std::string(100000, '['), 1024);
  EXPECT_FALSE(unclosed.is_ok());
}

// Found by tests/faults/exhaustion.py: 4 MB of '[' passed the body limit and nlohmann built all
// four million levels (270 MB, a second of the front-end thread) before the 400. Now the nesting
// is measured first; strings do not count, and a legit tensor body nests far less.
TEST(v2_codec, refuses_nesting_deeper_than_32_levels_before_parsing) {
  auto deep = parse_infer_body(infer_route(), std::string(4 << 20, '['), 1024);
  ASSERT_FALSE(deep.is_ok());
  EXPECT_EQ(deep.error().code(), status_code::invalid_argument);
  EXPECT_NE(deep.error().message().find("deeper than 32 levels"), std::string::npos)
      << deep.error().message();
  EXPECT_EQ(json_nesting(R"({"a":[["[[[[{{{{"]]})", 32), 3u) << "brackets in strings";
  EXPECT_EQ(json_nesting(R"(["\"[", [1]])", 32), 2u) << "an escaped quote ends no string";
  EXPECT_EQ(json_nesting(std::string(100, '['), 32), 33u) << "stops past the limit";
  // Eight levels of tensor data inside the envelope are fine.
  std::string data = std::string(8, '[') + "1" + std::string(8, ']');
  auto ok = parse_infer_body(
      infer_route(),
      R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1,1,1,1,1,1,1,1],"data":)" + data +
          "}]}",
      1024);
  EXPECT_TRUE(ok.is_ok()) << ok.error().message();
}

// Found by tests/fuzz (regressions/http/infer-number-beyond-double): nlohmann throws out_of_range,
// not parse_error, for such a number, and it escaped parse_infer_body (the server answered 500).
TEST(v2_codec, refuses_a_number_beyond_a_double_with_400) {
  auto r = parse_infer_body(
      infer_route(), R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1e999]}]})",
      1024);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.error().code(), status_code::invalid_argument);
  EXPECT_NE(r.error().message().find("not valid JSON"), std::string::npos) << r.error().message();
}

TEST(v2_codec, error_messages_are_valid_json_even_for_binary_input) {
  auto r = parse_infer_body(
      infer_route(),
      body_with(R"({"name":"text","shape":[1],"datatype":"\u0001\u00ff\"bad","data":["x"]})"),
      1024);
  ASSERT_FALSE(r.is_ok());
  auto parsed = json::parse(render_error(r.error().message()));
  EXPECT_EQ(parsed["error"].get<std::string>(), r.error().message());
}

// ---- answers -----------------------------------------------------------------------------------

infer_result sample_result() {
  infer_result r;
  r.id = {"acme", "bot"};
  r.version = 3;
  r.rows = {
      {{"greeting", 0.75f}, {"bye", 0.2f}, {"other", 0.05f}},
      {{"q\"uote\\", 0.5f}, {"line\nbreak", 0.3f}, {"caf\xC3\xA9", 0.125f}},
  };
  return r;
}

TEST(v2_codec, renders_infer_outputs_row_major) {
  auto out = json::parse(render_infer(sample_result(), 2, "req-1"));
  EXPECT_EQ(out["model_name"], "acme/bot");
  EXPECT_EQ(out["model_version"], "3");
  EXPECT_EQ(out["id"], "req-1");
  ASSERT_EQ(out["outputs"].size(), 2u);
  const auto& labels = out["outputs"][0];
  const auto& scores = out["outputs"][1];
  EXPECT_EQ(labels["name"], "labels");
  EXPECT_EQ(labels["datatype"], "BYTES");
  EXPECT_EQ(labels["shape"], json::array({2, 2}));
  EXPECT_EQ(labels["data"], json::array({"greeting", "bye", "q\"uote\\", "line\nbreak"}));
  EXPECT_EQ(scores["name"], "scores");
  EXPECT_EQ(scores["datatype"], "FP32");
  EXPECT_EQ(scores["shape"], json::array({2, 2}));
  ASSERT_EQ(scores["data"].size(), 4u);
  const float expect[] = {0.75f, 0.2f, 0.5f, 0.3f};
  for (size_t i = 0; i < 4; ++i) {
    // Scores read back as exactly the floats the model produced.
    EXPECT_EQ(static_cast<float>(scores["data"][i].get<double>()), expect[i]) << i;
  }
}

TEST(v2_codec, infer_k_is_top_k_clamped_to_the_shortest_row) {
  auto r = sample_result();
  auto all = json::parse(render_infer(r, 10, ""));
  EXPECT_FALSE(all.contains("id"));
  EXPECT_EQ(all["outputs"][0]["shape"], json::array({2, 3}));
  EXPECT_EQ(all["outputs"][0]["data"].size(), 6u);
  EXPECT_EQ(all["outputs"][0]["data"][5], "caf\xC3\xA9");
  EXPECT_EQ(all["outputs"][1]["data"][5].get<double>(), 0.125);

  r.rows[0].pop_back();
  auto clamped = json::parse(render_infer(r, 10, ""));
  EXPECT_EQ(clamped["outputs"][1]["shape"], json::array({2, 2}));
  EXPECT_EQ(clamped["outputs"][0]["data"], json::array({"greeting", "bye", "q\"uote\\", "line\nbreak"}));

  r.rows.clear();
  auto empty = json::parse(render_infer(r, 3, ""));
  EXPECT_EQ(empty["outputs"][0]["shape"], json::array({0, 0}));
  EXPECT_TRUE(empty["outputs"][0]["data"].empty());
}

TEST(v2_codec, infer_replaces_label_bytes_that_are_not_utf8) {
  infer_result r;
  r.id = {"acme", "bot"};
  r.version = 1;
  r.rows = {{{"bad\xFF" "byte\x01", 1.0f}}};
  auto out = json::parse(render_infer(r, 1, "\xC0"));
  EXPECT_EQ(out["outputs"][0]["data"][0], "bad\xEF\xBF\xBD" "byte\x01");
  EXPECT_EQ(out["id"], "\xEF\xBF\xBD");
  EXPECT_EQ(out["outputs"][1]["data"][0].get<double>(), 1.0);
}

model_entry sample_model() {
  model_entry m;
  m.id = {"acme", "bot"};
  m.snapshots = {
      {1, "aa11", 1000, 10, "fasttext", "first", {}},
      {2, "bb22", 2000, 20, "fasttext", "with \"quotes\"", {}},
      {3, "cc33", 3000, 30, "fasttext", "", {}},
  };
  m.labels["production"].stack = {1, 3};
  m.labels["canary"].stack = {3};
  m.labels["staging"].stack = {2};
  m.labels["retired"].stack = {};
  return m;
}

TEST(v2_codec, renders_model_metadata) {
  auto meta = json::parse(render_model_meta(sample_model(), std::nullopt));
  EXPECT_EQ(meta["name"], "acme/bot");
  EXPECT_EQ(meta["versions"], json::array({"1", "2", "3"}));
  EXPECT_EQ(meta["platform"], "fasttext");
  EXPECT_EQ(meta["inputs"], json::parse(R"([{"name":"text","datatype":"BYTES","shape":[-1]}])"));
  EXPECT_EQ(meta["outputs"][0]["name"], "labels");
  EXPECT_EQ(meta["outputs"][0]["datatype"], "BYTES");
  EXPECT_EQ(meta["outputs"][1]["name"], "scores");
  EXPECT_EQ(meta["outputs"][1]["datatype"], "FP32");
  EXPECT_EQ(meta["labels"], json::parse(R"({"production":"3","canary":"3","staging":"2"})"));
  ASSERT_EQ(meta["snapshots"].size(), 3u);
  const auto& v3 = meta["snapshots"][2];
  EXPECT_EQ(v3["version"], "3");
  EXPECT_EQ(v3["sha256"], "cc33");
  EXPECT_EQ(v3["created_ms"], 3000);
  EXPECT_EQ(v3["size_bytes"], 30);
  EXPECT_EQ(v3["note"], "");
  EXPECT_EQ(v3["labels"], json::array({"canary", "production"}));
  EXPECT_EQ(meta["snapshots"][1]["note"], "with \"quotes\"");
  EXPECT_EQ(meta["snapshots"][0]["labels"], json::array());
}

TEST(v2_codec, renders_one_version_of_model_metadata) {
  auto meta = json::parse(render_model_meta(sample_model(), 2u));
  EXPECT_EQ(meta["name"], "acme/bot");
  EXPECT_EQ(meta["versions"], json::array({"2"}));
  ASSERT_EQ(meta["snapshots"].size(), 1u);
  EXPECT_EQ(meta["snapshots"][0]["sha256"], "bb22");
  EXPECT_EQ(meta["snapshots"][0]["labels"], json::array({"staging"}));
  EXPECT_EQ(meta["labels"]["production"], "3");
}

// Regression: a model that was not ready answered 200 {"ready":false}; tritonclient's and KServe's
// is_model_ready read the status code only, so they reported it ready.
TEST(v2_codec, not_ready_is_503_with_the_same_body) {
  model_entry m = sample_model();
  auto ready = answer_model_ready(m, std::nullopt, false);
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.body, R"({"name":"acme/bot","ready":true})");
  EXPECT_EQ(answer_model_ready(m, 2u, false).status, 200);

  auto draining = answer_model_ready(m, std::nullopt, true);
  EXPECT_EQ(draining.status, 503);
  EXPECT_EQ(draining.body, R"({"name":"acme/bot","ready":false})");
  EXPECT_EQ(answer_model_ready(m, 2u, true).status, 503);

  m.labels.erase("production");
  auto unlabelled = answer_model_ready(m, std::nullopt, false);
  EXPECT_EQ(unlabelled.status, 503) << "no production label: nothing to serve by default";
  EXPECT_EQ(unlabelled.body, R"({"name":"acme/bot","ready":false})");
  EXPECT_EQ(answer_model_ready(m, 3u, false).status, 200) << "an exact version is ready";
  m.labels["production"].stack = {};
  EXPECT_EQ(answer_model_ready(m, std::nullopt, false).status, 503) << "a label pointing nowhere";

  EXPECT_EQ(answer_server_ready(false).status, 200);
  EXPECT_EQ(answer_server_ready(false).body, R"({"ready":true})");
  EXPECT_EQ(answer_server_ready(true).status, 503);
  EXPECT_EQ(answer_server_ready(true).body, R"({"ready":false})");
}

TEST(v2_codec, renders_small_answers) {
  auto server = json::parse(render_server_meta());
  EXPECT_EQ(server["name"], "shoal");
  EXPECT_EQ(server["version"], SHOAL_VERSION);
  EXPECT_EQ(server["extensions"],
            json::array({"binary_tensor_data", "model_repository", "statistics"}));
  EXPECT_EQ(render_live(true), R"({"live":true})");
  EXPECT_EQ(render_ready(true), R"({"ready":true})");
  EXPECT_EQ(render_ready(false), R"({"ready":false})");
  EXPECT_EQ(render_model_ready({"acme", "bot"}, true), R"({"name":"acme/bot","ready":true})");
  EXPECT_EQ(render_error("bad \"x\"\n"), R"({"error":"bad \"x\"\n"})");
  EXPECT_EQ(json::parse(render_error(std::string("\x01\xff", 2)))["error"], "\x01\xEF\xBF\xBD");
}

// ---- tensors and the binary data extension ----------------------------------------------------

namespace {

template <typename T>
std::string raw_of(std::initializer_list<T> values) {
  std::string out;
  for (T v : values) out.append(reinterpret_cast<const char*>(&v), sizeof(T));
  return out;
}

std::string length_prefixed(std::initializer_list<std::string> items) {
  std::string out;
  for (const auto& s : items) {
    const auto n = uint32_t(s.size());
    out += raw_of<uint32_t>({n});
    out += s;
  }
  return out;
}

}  // namespace

TEST(v2_codec, parses_tensors_of_every_datatype_flat_and_nested) {
  auto r = parse_infer_body(infer_route(), R"({"id":"t1","inputs":[
      {"name":"x","datatype":"FP32","shape":[2,2],"data":[[1.5,-2],[3,4e-3]]},
      {"name":"d","datatype":"FP64","shape":[1],"data":[0.1]},
      {"name":"i","datatype":"INT32","shape":[3],"data":[-2147483648,0,2147483647]},
      {"name":"ids","datatype":"INT64","shape":[1,2],"data":[[9007199254740993,-1]]},
      {"name":"m","datatype":"BOOL","shape":[2],"data":[true,false]},
      {"name":"s","datatype":"BYTES","shape":[1],"data":["caf\u00e9"]}],
      "outputs":[{"name":"y"},{"name":"z","parameters":{"binary_data":true}}],
      "parameters":{"something_new":1}})",
                            1024);
  ASSERT_TRUE(r.is_ok()) << r.error().to_string();
  const auto& in = r->request.inputs;
  ASSERT_EQ(in.size(), 6u);
  EXPECT_TRUE(r->request.texts.empty());
  EXPECT_EQ(in[0].shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(in[0].data, raw_of<float>({1.5f, -2.0f, 3.0f, 4e-3f}));
  EXPECT_EQ(in[1].data, raw_of<double>({0.1}));
  EXPECT_EQ(in[2].data, raw_of<int32_t>({INT32_MIN, 0, INT32_MAX}));
  EXPECT_EQ(in[3].data, raw_of<int64_t>({9007199254740993LL, -1}));
  EXPECT_EQ(in[4].data, std::string("\x01\x00", 2));
  EXPECT_EQ(in[5].strings, (std::vector<std::string>{"caf\xC3\xA9"}));
  for (const auto& t : in) EXPECT_TRUE(t.check_size().is_ok()) << t.name;
  EXPECT_EQ(r->request.outputs, (std::vector<std::string>{"y", "z"}));
  EXPECT_EQ(r->form.binary_outputs, (std::vector<std::string>{"z"}));
  EXPECT_EQ(r->form.request_id, "t1");
  EXPECT_EQ(r->request.batch_size(), 2u);
}

TEST(v2_codec, refuses_bad_tensors_with_400_and_a_reason) {
  const body_case cases[] = {
      {"unknown datatype", body_with(R"({"name":"x","datatype":"FP16","shape":[1],"data":[1]})"),
       "datatype is 'FP16'"},
      {"no datatype", body_with(R"({"name":"x","shape":[1],"data":[1]})"), "needs a \"datatype\""},
      {"no shape", body_with(R"({"name":"x","datatype":"FP32","data":[1]})"), "needs a \"shape\""},
      {"negative shape", body_with(R"({"name":"x","datatype":"FP32","shape":[-1],"data":[1]})"),
       "needs a \"shape\""},
      {"too few elements",
       body_with(R"({"name":"x","datatype":"FP32","shape":[2,2],"data":[1,2,3]})"),
       "holds 4 elements but data has 3"},
      {"too many elements",
       body_with(R"({"name":"x","datatype":"FP32","shape":[1],"data":[[1,2]]})"),
       "holds 1 elements but data has 2"},
      {"string in FP32", body_with(R"({"name":"x","datatype":"FP32","shape":[1],"data":["1"]})"),
       "inputs[0].data[0] is a string: FP32 elements are numbers"},
      {"fraction in INT64",
       body_with(R"({"name":"x","datatype":"INT64","shape":[1],"data":[1.5]})"),
       "INT64 elements are integers"},
      {"INT32 overflow",
       body_with(R"({"name":"x","datatype":"INT32","shape":[1],"data":[2147483648]})"),
       "out of INT32's range"},
      {"INT64 overflow",
       body_with(R"({"name":"x","datatype":"INT64","shape":[1],"data":[9223372036854775808]})"),
       "out of INT64's range"},
      {"FP32 overflow", body_with(R"({"name":"x","datatype":"FP32","shape":[1],"data":[1e39]})"),
       "out of FP32's range"},
      {"number in BOOL", body_with(R"({"name":"x","datatype":"BOOL","shape":[1],"data":[1]})"),
       "true or false"},
      {"same input twice",
       body_with(
           R"({"name":"x","datatype":"FP32","shape":[1],"data":[1]},{"name":"x","datatype":"FP32","shape":[1],"data":[1]})"),
       "given twice"},
      {"no data", body_with(R"({"name":"x","datatype":"FP32","shape":[1]})"), "no \"data\""},
      {"huge shape",
       body_with(R"({"name":"x","datatype":"FP32","shape":[1000000,1000000],"data":[]})"),
       "more than"},
      {"classification of a tensor",
       body_with(R"({"name":"x","datatype":"FP32","shape":[1],"data":[1]})",
                 R"(,"outputs":[{"name":"y","parameters":{"classification":2}}])"),
       "applies to text models"},
      {"binary size without binary data",
       body_with(
           R"({"name":"x","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":4}})"),
       "only 0 bytes of binary data are left"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = parse_infer_body(infer_route(), c.body, 1024);
    ASSERT_FALSE(r.is_ok());
    EXPECT_LT(http_status(r.error().code()), 500);
    EXPECT_GE(http_status(r.error().code()), 400);
    EXPECT_NE(r.error().message().find(c.message_part), std::string::npos) << r.error().message();
  }
}

TEST(v2_codec, reads_binary_tensor_data_after_the_json) {
  const std::string json_part =
      R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1,3],"parameters":{"binary_data_size":12}},)"
      R"({"name":"s","datatype":"BYTES","shape":[2],"parameters":{"binary_data_size":15}}],)"
      R"("parameters":{"binary_data_output":true}})";
  const std::string binary = raw_of<float>({1.0f, -0.5f, 1e-7f}) + length_prefixed({"hi", "there"});
  auto r =
      parse_infer_body(infer_route(), json_part + binary, 1024, std::to_string(json_part.size()));
  ASSERT_TRUE(r.is_ok()) << r.error().to_string();
  ASSERT_EQ(r->request.inputs.size(), 2u);
  EXPECT_EQ(r->request.inputs[0].data, raw_of<float>({1.0f, -0.5f, 1e-7f}));
  EXPECT_EQ(r->request.inputs[1].strings, (std::vector<std::string>{"hi", "there"}));
  EXPECT_TRUE(r->form.binary_all);

  // Texts as binary BYTES: the text request of a fastText model.
  const std::string text_json =
      R"({"inputs":[{"name":"text","datatype":"BYTES","shape":[2],"parameters":{"binary_data_size":14}}]})";
  auto t = parse_infer_body(infer_route(), text_json + length_prefixed({"hello", "w"}), 1024,
                            std::to_string(text_json.size()));
  ASSERT_TRUE(t.is_ok()) << t.error().to_string();
  EXPECT_EQ(t->request.texts, (std::vector<std::string>{"hello", "w"}));

  struct bad {
    std::string name, body, header, message_part;
  };
  const bad cases[] = {
      {"header not a number", json_part + binary, "12x", "must be the byte length"},
      {"header past the body", json_part, "100000", "the body has only"},
      {"binary left over", json_part + binary + "zz", std::to_string(json_part.size()),
       "2 bytes of binary data follow"},
      {"binary short", json_part + binary.substr(0, 20), std::to_string(json_part.size()),
       "are left after the JSON"},
      {"bytes element too long", text_json + raw_of<uint32_t>({100}) + "0123456789",
       std::to_string(text_json.size()), "says 100 bytes"},
      {"text not utf-8", text_json + length_prefixed({"\xC0\x80zzz", "a"}),
       std::to_string(text_json.size()), "not valid UTF-8"},
      {"binary without the header", json_part + binary, "", "not valid"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto b = parse_infer_body(infer_route(), c.body, 1024, c.header);
    ASSERT_FALSE(b.is_ok());
    EXPECT_EQ(b.error().code(), status_code::invalid_argument);
    EXPECT_NE(b.error().message().find(c.message_part), std::string::npos) << b.error().message();
  }
}

TEST(v2_codec, renders_tensor_answers_as_json_and_as_binary_data) {
  infer_result r;
  r.id = model_id{"acme", "ranker"};
  r.version = 3;
  r.outputs.push_back(tensor{"y", data_type::fp32, {1, 2}, raw_of<float>({0.25f, -1.0f}), {}});
  r.outputs.push_back(tensor{"ids", data_type::int64, {2}, raw_of<int64_t>({7, -9}), {}});
  r.outputs.push_back(tensor{"ok", data_type::boolean, {1}, std::string("\x01", 1), {}});
  v2_answer_form form;
  form.request_id = "q";
  auto plain = render_answer(r, form);
  EXPECT_FALSE(plain.json_length.has_value());
  const json j = json::parse(plain.body);
  EXPECT_EQ(j["id"], "q");
  EXPECT_EQ(j["model_version"], "3");
  EXPECT_EQ(j["outputs"][0]["datatype"], "FP32");
  EXPECT_EQ(j["outputs"][0]["shape"], json::array({1, 2}));
  EXPECT_EQ(j["outputs"][0]["data"], json::array({0.25, -1.0}));
  EXPECT_EQ(j["outputs"][1]["data"], json::array({7, -9}));
  EXPECT_EQ(j["outputs"][2]["data"], json::array({true}));

  form.binary_outputs = {"y"};
  auto bin = render_answer(r, form);
  ASSERT_TRUE(bin.json_length.has_value());
  const json head = json::parse(bin.body.substr(0, *bin.json_length));
  EXPECT_EQ(head["outputs"][0]["parameters"]["binary_data_size"], 8);
  EXPECT_FALSE(head["outputs"][0].contains("data"));
  EXPECT_EQ(head["outputs"][1]["data"], json::array({7, -9}));
  EXPECT_EQ(bin.body.substr(*bin.json_length), raw_of<float>({0.25f, -1.0f}));

  // A text model's labels and scores as binary data.
  v2_answer_form text_form;
  text_form.top_k = 2;
  text_form.binary_all = true;
  auto text = render_answer(sample_result(), text_form);
  ASSERT_TRUE(text.json_length.has_value());
  const json th = json::parse(text.body.substr(0, *text.json_length));
  EXPECT_EQ(th["outputs"][0]["name"], "labels");
  EXPECT_EQ(th["outputs"][1]["name"], "scores");
  const size_t labels_size = th["outputs"][0]["parameters"]["binary_data_size"];
  const size_t scores_size = th["outputs"][1]["parameters"]["binary_data_size"];
  EXPECT_EQ(text.body.size(), *text.json_length + labels_size + scores_size);
  EXPECT_EQ(scores_size, 4u * th["outputs"][1]["shape"][0].get<size_t>() *
                             th["outputs"][1]["shape"][1].get<size_t>());
}

}  // namespace
}  // namespace shoal
