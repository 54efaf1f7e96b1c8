// Our ONNX runtime against two oracles: models built and exported by PyTorch at test time
// (tests/onnx/make_models.py, one Python process) must give PyTorch's outputs and ONNX Runtime's
// (onnxruntime-node 1.31.1, tests/onnx/ort_run.js, installed once into the user's cache) for
// batch sizes 1, 2, 7, 32 and 64; damaged and unsupported models must be refused with messages
// that say why; run() must refuse bad inputs cleanly; the text front end must tokenize as its
// hand-written expectations and Python's tokenizers say and score as PyTorch does.
//
// PyTorch's outputs are numpy's for the hand-built models (onnx.helper) of semantics torch does
// not export; gelu_node (a Gelu node, opset 20 in ONNX) has no ONNX Runtime oracle.
//
// Tolerance: every FP32 output element within 1e-5 absolute where |expected| <= 1, and 1e-5
// relative to |expected| above that (log-probabilities and sums reach magnitudes of a few units).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "shoal/serving/micro_batch.hpp"
#include "shoal/serving/onnx_model.hpp"
#include "support/files.hpp"
#include "support/process.hpp"

namespace shoal {
namespace {

namespace ts = testing;
using json = nlohmann::json;

constexpr double k_tolerance = 1e-5;
constexpr const char* k_ort_version = "1.31.1";

std::string source_dir() {
  const char* env = std::getenv("SHOAL_SOURCE_DIR");
  if (env && *env) return env;
  std::string here = __FILE__;  // tests/unit/serving/onnx_test.cpp
  return here.substr(0, here.rfind("/tests/"));
}

// Installs onnxruntime-node into the cache once (npm ci from tests/onnx's lock file, without
// the install script, which would fetch CUDA); returns the directory, or "" with `error` set.
std::string ort_install(std::string& error) {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const std::string cache = xdg && *xdg ? xdg : std::string(home ? home : "/tmp") + "/.cache";
  const std::string dir = cache + "/shoal-test/onnxruntime-node-" + k_ort_version;
  const std::string marker = dir + "/node_modules/onnxruntime-node/package.json";
  if (ts::read_file(marker).find(std::string("\"version\": \"") + k_ort_version) !=
      std::string::npos)
    return dir;
  const std::string tmp = dir + ".tmp-" + std::to_string(::getpid());
  const std::string script =
      "set -e; mkdir -p '" + tmp + "'; cp '" + source_dir() + "/tests/onnx/package.json' '" +
      source_dir() + "/tests/onnx/package-lock.json' '" + tmp + "/'; cd '" + tmp +
      "'; npm ci --no-audit --no-fund --ignore-scripts --loglevel=error; cd ..; "
      "rm -rf '" +
      dir + "'; mv '" + tmp + "' '" + dir + "'";
  auto r = ts::run_program("sh",
                           {"-c",
                            "command -v npm >/dev/null || { echo 'npm is not installed "
                            "(apt-get install npm)' >&2; exit 127; }; " +
                                script},
                           {}, std::chrono::seconds(600));
  if (r.exit_code != 0 || ts::read_file(marker).empty()) {
    ts::run_program("rm", {"-rf", tmp});
    error = "cannot install onnxruntime-node " + std::string(k_ort_version) + " into " + dir +
            " (needed as the second oracle): exit " + std::to_string(r.exit_code) + ": " + r.err +
            r.out;
    return "";
  }
  return dir;
}

std::map<std::string, std::string> front_end(const std::string& dir, const json& t,
                                             const std::string& kind) {
  return {{"shoal.tokenizer", kind},
          {"shoal.vocab", ts::read_file(dir + "/" + t["vocab"].get<std::string>())},
          {"shoal.labels", ts::read_file(dir + "/" + t["labels"].get<std::string>())}};
}

// Everything built once per run: the models, PyTorch's and ONNX Runtime's outputs.
struct oracle {
  std::string error;
  std::unique_ptr<ts::temp_dir> tmp;
  std::string dir;
  json manifest;

  std::string file(const std::string& name) const { return dir + "/" + name; }
  std::string bytes(const std::string& name) const { return ts::read_file(file(name)); }
};

const oracle& data() {
  static const oracle o = [] {
    oracle d;
    d.tmp = std::make_unique<ts::temp_dir>();
    d.dir = d.tmp->path();
    auto py =
        ts::run_program("/usr/bin/python3", {source_dir() + "/tests/onnx/make_models.py", d.dir},
                        {}, std::chrono::seconds(300));
    if (py.exit_code != 0) {
      d.error = "make_models.py failed (exit " + std::to_string(py.exit_code) + "): " + py.err;
      return d;
    }
    d.manifest = json::parse(d.bytes("manifest.json"));
    // The text models, with their front end appended: ONNX Runtime must still load them.
    for (const char* kind : {"whitespace", "wordpiece"}) {
      const json& t = d.manifest["texts"][kind];
      ts::write_file(d.file(std::string("fe_") + kind + ".onnx"),
                     with_text_front_end(d.bytes(t["model"]), front_end(d.dir, t, kind)));
    }
    const std::string ort = ort_install(d.error);
    if (ort.empty()) return d;
    auto node = ts::run_program("node",
                                {source_dir() + "/tests/onnx/ort_run.js", ort, d.dir,
                                 "fe_whitespace.onnx", "fe_wordpiece.onnx"},
                                {}, std::chrono::seconds(300));
    if (node.exit_code != 0)
      d.error = "ort_run.js failed (exit " + std::to_string(node.exit_code) + "): " + node.err;
    return d;
  }();
  return o;
}

#define NEED_ORACLE() ASSERT_EQ(data().error, "") << "the oracles could not be built"

std::shared_ptr<const model> load(const std::string& name) {
  auto m = load_onnx(data().bytes(name));
  EXPECT_TRUE(m.is_ok()) << name << ": " << m.error().to_string();
  return m.is_ok() ? *m : nullptr;
}

std::string refusal(std::string_view bytes) {
  auto m = load_onnx(bytes);
  if (m.is_ok()) return "(loaded)";
  EXPECT_EQ(m.error().code(), status_code::invalid_argument);
  return m.error().message();
}

tensor tensor_from(const json& spec) {
  tensor t;
  t.name = spec["name"];
  t.type = *parse_v2_datatype(spec["type"].get<std::string>());
  t.shape = spec["shape"].get<std::vector<int64_t>>();
  t.data = data().bytes(spec["file"]);
  return t;
}

tensor floats(std::string name, std::vector<int64_t> shape, const std::vector<float>& v) {
  tensor t{std::move(name), data_type::fp32, std::move(shape), {}, {}};
  t.data.assign(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
  return t;
}

tensor int64s(std::string name, std::vector<int64_t> shape, const std::vector<int64_t>& v) {
  tensor t{std::move(name), data_type::int64, std::move(shape), {}, {}};
  t.data.assign(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(int64_t));
  return t;
}

std::vector<float> values(const tensor& t) {
  std::vector<float> v(t.data.size() / sizeof(float));
  std::memcpy(v.data(), t.data.data(), v.size() * sizeof(float));
  return v;
}

struct difference {
  double abs = 0, rel = 0;
  size_t bad = 0;
  void add(double got, double want) {
    const double d = std::fabs(got - want);
    if (std::isnan(got) != std::isnan(want)) {
      ++bad;
      return;
    }
    if (std::isnan(d)) return;
    abs = std::max(abs, d);
    rel = std::max(rel, d / std::max(1.0, std::fabs(want)));
    if (d > k_tolerance * std::max(1.0, std::fabs(want))) ++bad;
  }
};

// Compares Shoal's output with an oracle's file; returns how far apart they are.
difference compare(const tensor& got, const tensor& want) {
  difference d;
  EXPECT_EQ(got.shape, want.shape) << got.name;
  EXPECT_EQ(got.type, want.type) << got.name;
  if (got.data.size() != want.data.size()) {
    ADD_FAILURE() << got.name << ": " << got.data.size() << " bytes, want " << want.data.size();
    d.bad = 1;
    return d;
  }
  if (got.type == data_type::int64) {
    if (got.data != want.data) d.bad = 1;
    return d;
  }
  const auto a = values(got), b = values(want);
  for (size_t i = 0; i < a.size(); ++i) d.add(a[i], b[i]);
  return d;
}

// ---- parity with PyTorch and ONNX Runtime
// ---------------------------------------------------------

TEST(onnx_parity, every_model_matches_pytorch_and_onnx_runtime) {
  NEED_ORACLE();
  std::map<std::string, std::shared_ptr<const model>> models;
  std::map<std::string, std::pair<difference, difference>> by_model;  // vs torch, vs ORT
  std::map<std::string, bool> with_ort;
  for (const json& c : data().manifest["cases"]) {
    const std::string name = c["model"];
    auto& m = models[name];
    if (!m) m = load(name);
    ASSERT_NE(m, nullptr) << name;
    std::vector<tensor> ins;
    for (const json& i : c["inputs"]) ins.push_back(tensor_from(i));
    auto out = m->run(ins, {});
    ASSERT_TRUE(out.is_ok()) << name << " batch " << c["batch"] << ": " << out.error().to_string();
    ASSERT_EQ(out->size(), c["outputs"].size()) << name;
    for (size_t k = 0; k < out->size(); ++k) {
      const json& o = c["outputs"][k];
      EXPECT_EQ((*out)[k].name, o["name"].get<std::string>());
      const tensor torch_out = tensor_from(o);
      auto dt = compare((*out)[k], torch_out);
      difference dr;
      with_ort[name] = c.value("ort", true);
      if (with_ort[name]) {
        json ort_spec = o;
        std::string f = o["file"];
        ort_spec["file"] = f.replace(f.rfind(".out.bin"), 8, ".ort.bin");
        dr = compare((*out)[k], tensor_from(ort_spec));
      }
      EXPECT_EQ(dt.bad, 0u) << name << " batch " << c["batch"] << " output " << o["name"]
                            << ": max abs diff vs PyTorch " << dt.abs;
      EXPECT_EQ(dr.bad, 0u) << name << " batch " << c["batch"] << " output " << o["name"]
                            << ": max abs diff vs ONNX Runtime " << dr.abs;
      auto& [t, r] = by_model[name];
      t.abs = std::max(t.abs, dt.abs);
      t.rel = std::max(t.rel, dt.rel);
      r.abs = std::max(r.abs, dr.abs);
      r.rel = std::max(r.rel, dr.rel);
    }
  }
  for (const char* must :
       {"mlp_op11.onnx", "mlp_op13.onnx", "mlp_op17.onnx", "bag_op13.onnx", "ln_gelu_op13.onnx",
        "ln_gelu_op17.onnx", "text_cnn_op11.onnx", "text_cnn_op17.onnx", "shapes_op11.onnx",
        "shapes_op13.onnx", "shapes_op17.onnx", "reduce18.onnx", "misc11.onnx", "gelu_node.onnx"})
    EXPECT_TRUE(by_model.count(must)) << must << " was not exercised";
  for (const auto& [name, d] : by_model)
    std::cout << "  " << name << ": max |diff| vs PyTorch " << d.first.abs << " (scaled "
              << d.first.rel << "), vs ONNX Runtime "
              << (with_ort[name] ? std::to_string(d.second.abs) + " (scaled " +
                                       std::to_string(d.second.rel) + ")"
                                 : std::string("(not run)"))
              << "\n";
}

// ---- what a model says about itself
// ----------------------------------------------------------------

TEST(onnx_model, describes_a_tensor_model) {
  NEED_ORACLE();
  auto m = load("mlp_op13.onnx");
  ASSERT_NE(m, nullptr);
  EXPECT_FALSE(m->takes_texts());
  EXPECT_EQ(m->format(), "onnx");
  EXPECT_EQ(m->label_count(), 0u);
  EXPECT_TRUE(m->predict("hello", 3).empty());
  EXPECT_EQ(m->inputs(), (std::vector<tensor_spec>{{"x", data_type::fp32, {-1, 300}}}));
  EXPECT_EQ(m->outputs(), (std::vector<tensor_spec>{{"y", data_type::fp32, {-1, 20}}}));
  const size_t weights = (300 * 256 + 256 + 256 * 256 + 256 + 256 * 20 + 20) * 4;
  EXPECT_GE(m->memory_bytes(), weights);
  EXPECT_LT(m->memory_bytes(), 2 * weights + 64 * 1024);  // with the packed copy of the weights

  auto s = load("shapes_op13.onnx");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->inputs(), (std::vector<tensor_spec>{{"x", data_type::fp32, {-1, 6, 8}},
                                                   {"ids", data_type::int64, {-1, 4}}}));
}

TEST(onnx_model, is_recognised_by_content) {
  NEED_ORACLE();
  const std::string bytes = data().bytes("mlp_op11.onnx");
  EXPECT_TRUE(looks_like_onnx(bytes));
  EXPECT_FALSE(looks_like_onnx("hello world"));
  EXPECT_FALSE(looks_like_onnx(std::string("\xba\x16\x4f\x2f\x0c\x00\x00\x00", 8)));
  EXPECT_TRUE(looks_like_onnx(bytes.substr(0, bytes.size() / 2)));  // load says truncated
  auto m = load_model(bytes);
  ASSERT_TRUE(m.is_ok()) << m.error().to_string();
  EXPECT_EQ((*m)->format(), "onnx");
  auto bad = load_model("hello world, not a model");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.error().message().find("fastText"), std::string::npos) << bad.error().message();
  EXPECT_NE(bad.error().message().find("ONNX"), std::string::npos) << bad.error().message();
}

// ---- refusals
// ----------------------------------------------------------------------------------------

TEST(onnx_refusals, say_what_is_wrong) {
  NEED_ORACLE();
  const std::string mlp = data().bytes("mlp_op13.onnx");
  EXPECT_NE(refusal("\xff\xff\xff garbage").find("do not parse as an ONNX ModelProto"),
            std::string::npos);
  EXPECT_NE(refusal(mlp.substr(0, mlp.size() / 2)).find("truncated or corrupt"), std::string::npos);
  auto truncated = load_model(mlp.substr(0, mlp.size() / 2));
  ASSERT_FALSE(truncated.is_ok());
  EXPECT_NE(truncated.error().message().find("truncated"), std::string::npos)
      << truncated.error().message();

  const std::string ops = refusal(data().bytes("unsupported.onnx"));
  EXPECT_EQ(ops.find("unsupported ONNX operators: LSTM, NonMaxSuppression (Shoal runs: Abs, Add, "
                     "And, Cast, Concat,"),
            0u)
      << ops;
  EXPECT_EQ(refusal(data().bytes("cycle.onnx")), "the graph has a cycle through node 'first'");
  EXPECT_EQ(refusal(data().bytes("dangling.onnx")),
            "node 'adder' (Add) reads 'nowhere', which no node, input or initializer produces");
  EXPECT_EQ(refusal(data().bytes("huge_input.onnx")),
            "input 'x' [1,1099511627776] would need 4.0 TB (limit 1.0 GB per tensor)");
  EXPECT_EQ(refusal(data().bytes("huge_init.onnx")),
            "initializer 'w' [1048576,1048576] would need 4.0 TB (limit 1.0 GB per tensor)");
  EXPECT_NE(refusal(data().bytes("huge_plan.onnx")).find("would need 2.2 GB of working memory"),
            std::string::npos)
      << refusal(data().bytes("huge_plan.onnx"));
  EXPECT_EQ(refusal(data().bytes("bad_init.onnx")),
            "initializer 'w': its dims [3,4] need 12 elements, its data holds 5 elements");
  EXPECT_NE(refusal(data().bytes("external.onnx")).find("weights stored outside the file"),
            std::string::npos);
  EXPECT_EQ(refusal(data().bytes("opset9.onnx")),
            "ONNX opset 9 is not supported: Shoal runs opsets 11 to 18 (export with "
            "opset_version between them)");
  EXPECT_NE(refusal(data().bytes("opset19.onnx")).find("ONNX opset 19 is not supported"),
            std::string::npos);
  EXPECT_NE(refusal(data().bytes("other_domain.onnx"))
                .find("node 'fused' is operator 'FusedGemm' of domain 'com.microsoft'"),
            std::string::npos);
  const std::string conv = refusal(data().bytes("conv2d.onnx"));
  EXPECT_NE(conv.find("2-D convolution; Shoal runs 1-D convolutions only"), std::string::npos)
      << conv;
  EXPECT_NE(refusal(""), "(loaded)");
}

TEST(onnx_refusals, a_bad_text_front_end) {
  NEED_ORACLE();
  const json& t = data().manifest["texts"]["whitespace"];
  const std::string bytes = data().bytes(t["model"]);
  auto props = front_end(data().dir, t, "whitespace");
  auto no_unk = props;
  no_unk["shoal.unk"] = "<nothing>";
  EXPECT_EQ(refusal(with_text_front_end(bytes, no_unk)),
            "the model's text front end: shoal.unk '<nothing>' is not in shoal.vocab");
  auto labels = props;
  labels["shoal.labels"] = "a\nb\nc\n";
  EXPECT_EQ(refusal(with_text_front_end(bytes, labels)),
            "the model's first output 'logits' is FP32 [1,4] at batch 1, but shoal.labels has 3 "
            "labels: a text model's first output must be FP32 [batch, 3]");
  auto small_vocab = props;  // more tokens than the embedding has rows
  small_vocab["shoal.vocab"] += "extra1\nextra2\n";
  EXPECT_NE(refusal(with_text_front_end(bytes, small_vocab)).find("fails on id 31"),
            std::string::npos)
      << refusal(with_text_front_end(bytes, small_vocab));
  EXPECT_NE(refusal(with_text_front_end(data().bytes("mlp_op13.onnx"), props))
                .find("a text model's input must be INT64 or INT32 [batch, seq]"),
            std::string::npos);
  auto twice = with_text_front_end(with_text_front_end(bytes, props), {{"shoal.unk", "<unk>"}});
  EXPECT_EQ(refusal(with_text_front_end(twice, {{"shoal.unk", "<unk>"}})),
            "metadata_props key 'shoal.unk' is given twice");
}

TEST(onnx_text_front_end, checks_its_props) {
  const std::map<std::string, std::string> good = {{"shoal.tokenizer", "wordpiece"},
                                                   {"shoal.vocab", "[UNK]\nhello\n"},
                                                   {"shoal.labels", "a\nb"}};
  EXPECT_TRUE(check_text_front_end(good).is_ok()) << check_text_front_end(good).to_string();
  auto with = [&](const std::string& key, const std::string& value) {
    auto p = good;
    p[key] = value;
    return check_text_front_end(p).message();
  };
  EXPECT_NE(with("shoal.colour", "red").find("unknown text front end key 'shoal.colour'"),
            std::string::npos);
  EXPECT_EQ(with("shoal.tokenizer", "bpe"), "shoal.tokenizer 'bpe' is not whitespace or wordpiece");
  EXPECT_EQ(with("shoal.vocab", ""), "shoal.vocab has no tokens");
  EXPECT_EQ(with("shoal.vocab", "[UNK]\nhi\nhi\n"), "shoal.vocab has 'hi' twice (lines 2 and 3)");
  EXPECT_EQ(with("shoal.vocab", "[UNK]\n\nhi\n"), "shoal.vocab line 2 is empty");
  EXPECT_EQ(with("shoal.labels", ""), "shoal.labels has no labels");
  EXPECT_EQ(with("shoal.max_tokens", "0"),
            "shoal.max_tokens must be a number from 1 to 1000000, is '0'");
  EXPECT_EQ(with("shoal.scores", "odds"),
            "shoal.scores 'odds' is not logits, probabilities or log_probabilities");
  EXPECT_EQ(with("shoal.lowercase", "yes"), "shoal.lowercase must be 0 or 1, is 'yes'");
  EXPECT_EQ(with("shoal.vocab", std::string(17 << 20, 'x')),
            "shoal.vocab is 17825792 bytes; the limit is 16 MiB");
  auto missing = good;
  missing.erase("shoal.labels");
  EXPECT_EQ(check_text_front_end(missing).message(),
            "shoal.labels is missing (one label per line)");
  auto ws = good;
  ws["shoal.tokenizer"] = "whitespace";
  EXPECT_EQ(
      check_text_front_end(ws).message(),
      "shoal.unk '<unk>' is not in shoal.vocab (the default for this tokenizer; set shoal.unk)");
}

// ---- run(): inputs and outputs
// ---------------------------------------------------------------------

TEST(onnx_run, refuses_bad_inputs_with_what_the_model_takes) {
  NEED_ORACLE();
  auto m = load("mlp_op13.onnx");
  ASSERT_NE(m, nullptr);
  const std::vector<float> row(300, 0.5f);
  auto err = [&](std::vector<tensor> in, std::vector<std::string> want = {}) {
    auto r = m->run(in, want);
    EXPECT_FALSE(r.is_ok());
    if (!r.is_ok()) {
      EXPECT_EQ(r.error().code(), status_code::invalid_argument);
    }
    return r.is_ok() ? std::string("(ran)") : r.error().message();
  };
  EXPECT_EQ(err({}), "missing input 'x' (the model takes x FP32 [-1,300])");
  EXPECT_EQ(err({floats("x", {1, 300}, row), floats("z", {1}, {1})}),
            "unknown input 'z' (the model takes x FP32 [-1,300])");
  EXPECT_EQ(err({int64s("x", {1, 300}, std::vector<int64_t>(300, 1))}),
            "input 'x': the model takes FP32 [-1,300], got INT64 [1,300]");
  EXPECT_EQ(err({floats("x", {300}, row)}),
            "input 'x': the model takes FP32 [-1,300], got FP32 [300]");
  EXPECT_EQ(err({floats("x", {1, 299}, std::vector<float>(299))}),
            "input 'x': the model takes FP32 [-1,300], got FP32 [1,299]");
  EXPECT_NE(err({floats("x", {2, 300}, row)}).find("needs 2400 bytes"), std::string::npos);
  EXPECT_EQ(err({floats("x", {1, 300}, row)}, {"nope"}),
            "unknown output 'nope' (the model gives y)");
  auto ok = m->run({floats("x", {1, 300}, row)}, {"y", "y"});
  ASSERT_TRUE(ok.is_ok()) << ok.error().to_string();
  EXPECT_EQ(ok->size(), 2u);
  EXPECT_EQ(ok->at(0), ok->at(1));
  EXPECT_EQ(ok->at(0).shape, (std::vector<int64_t>{1, 20}));

  auto s = load("shapes_op13.onnx");
  ASSERT_NE(s, nullptr);
  std::vector<float> x(2 * 6 * 8, 0.25f);
  auto two =
      s->run({floats("x", {2, 6, 8}, x), int64s("ids", {3, 4}, std::vector<int64_t>(12, 1))}, {});
  ASSERT_FALSE(two.is_ok());
  EXPECT_EQ(two.error().message(),
            "inputs 'x' and 'ids' must agree on dimension 'batch': got [2,6,8] and [3,4]");
}

TEST(onnx_run, want_selects_and_orders_outputs) {
  NEED_ORACLE();
  auto s = load("shapes_op17.onnx");
  ASSERT_NE(s, nullptr);
  std::vector<tensor> in = {floats("x", {2, 6, 8}, std::vector<float>(96, 0.5f)),
                            int64s("ids", {2, 4}, {1, 2, 3, 4, 5, 6, 7, 8})};
  auto all = s->run(in, {});
  auto picked = s->run(in, {"ids2", "out"});
  auto one = s->run(in, {"ids2"});
  ASSERT_TRUE(all.is_ok() && picked.is_ok() && one.is_ok()) << all.error().to_string();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ(all->at(0).name, "out");
  EXPECT_EQ(picked->at(0), all->at(1));
  EXPECT_EQ(picked->at(1), all->at(0));
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ(one->at(0).name, "ids2");
  EXPECT_EQ(one->at(0).data, int64s("", {8}, {1, 3, 5, 7, 9, 11, 13, 15}).data);
}

TEST(onnx_run, an_out_of_range_gather_index_is_refused_not_a_crash) {
  NEED_ORACLE();
  auto m = load("bag_op13.onnx");
  ASSERT_NE(m, nullptr);
  for (int64_t bad : {int64_t(1000), int64_t(-1001), std::numeric_limits<int64_t>::max()}) {
    auto r = m->run({int64s("ids", {1, 3}, {1, bad, 2})}, {});
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.error().code(), status_code::invalid_argument);
    EXPECT_NE(r.error().message().find("(Gather): index " + std::to_string(bad) +
                                       " is out of range for a dimension of size 1000"),
              std::string::npos)
        << r.error().message();
  }
  auto neg = m->run({int64s("ids", {1, 2}, {-1, 999})}, {});  // -1 is 999: both the same row
  ASSERT_TRUE(neg.is_ok()) << neg.error().to_string();
  auto pos = m->run({int64s("ids", {1, 1}, {999})}, {});
  ASSERT_TRUE(pos.is_ok());
  EXPECT_EQ(values(neg->at(0)), values(pos->at(0)));
}

// Tensor requests micro-batched: stacked along the batch dimension and run once, each request
// gets exactly the rows it would get alone; a request whose run fails (a bad index) fails alone.
TEST(onnx_micro_batch, stacked_requests_get_their_own_rows_and_a_bad_one_fails_alone) {
  NEED_ORACLE();
  auto m = load("mlp_op13.onnx");
  ASSERT_NE(m, nullptr);
  const auto spec = m->inputs().at(0);
  const int64_t width = spec.shape.at(1);
  micro_batcher b(64);
  std::vector<std::vector<float>> rows_in;
  std::vector<result<std::vector<tensor>>> got(5, status::internal("no answer"));
  for (int r = 0; r < 5; ++r) {
    const int64_t n = 1 + r % 3;
    std::vector<float> v(size_t(n * width));
    for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(float(r * 131 + int(i)));
    rows_in.push_back(v);
    b.add_tensors(m, {floats(spec.name, {n, width}, v)}, {},
                  [&got, r](result<std::vector<tensor>> out) { got[size_t(r)] = std::move(out); });
  }
  b.flush();
  EXPECT_EQ(b.batches(), 1u) << "five like requests run as one";
  for (int r = 0; r < 5; ++r) {
    const int64_t n = 1 + r % 3;
    ASSERT_TRUE(got[size_t(r)].is_ok()) << got[size_t(r)].error().to_string();
    auto alone = m->run({floats(spec.name, {n, width}, rows_in[size_t(r)])}, {});
    ASSERT_TRUE(alone.is_ok());
    ASSERT_EQ(got[size_t(r)]->size(), alone->size());
    for (size_t o = 0; o < alone->size(); ++o) {
      EXPECT_EQ((*got[size_t(r)])[o].shape, (*alone)[o].shape);
      const auto a = values((*got[size_t(r)])[o]), e = values((*alone)[o]);
      ASSERT_EQ(a.size(), e.size());
      for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], e[i], 1e-5f) << r << " " << i;
    }
  }

  auto bag = load("bag_op13.onnx");
  ASSERT_NE(bag, nullptr);
  micro_batcher bb(64);
  result<std::vector<tensor>> good = status::internal("no answer"), bad = good;
  bb.add_tensors(bag, {int64s("ids", {1, 3}, {1, 2, 3})}, {},
                 [&](result<std::vector<tensor>> out) { good = std::move(out); });
  bb.add_tensors(bag, {int64s("ids", {1, 3}, {1, 5000, 3})}, {},
                 [&](result<std::vector<tensor>> out) { bad = std::move(out); });
  bb.flush();
  ASSERT_TRUE(good.is_ok()) << good.error().to_string();
  auto alone = bag->run({int64s("ids", {1, 3}, {1, 2, 3})}, {});
  ASSERT_TRUE(alone.is_ok());
  EXPECT_EQ(values(good->at(0)), values(alone->at(0)));
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.error().message().find("index 5000 is out of range"), std::string::npos)
      << bad.error().message();
}

TEST(onnx_run, nan_and_inf_pass_through) {
  NEED_ORACLE();
  auto m = load("mlp_op17.onnx");
  ASSERT_NE(m, nullptr);
  std::vector<float> x(2 * 300, 0.1f);
  x[0] = std::numeric_limits<float>::quiet_NaN();
  x[300] = std::numeric_limits<float>::infinity();
  auto r = m->run({floats("x", {2, 300}, x)}, {});
  ASSERT_TRUE(r.is_ok()) << r.error().to_string();
  const auto y = values(r->at(0));
  EXPECT_TRUE(std::any_of(y.begin(), y.begin() + 20, [](float v) { return std::isnan(v); }));
}

TEST(onnx_run, many_shapes_beyond_the_plan_cache_stay_right) {
  NEED_ORACLE();
  auto m = load("mlp_op13.onnx");
  ASSERT_NE(m, nullptr);
  std::vector<float> row(300);
  for (size_t i = 0; i < row.size(); ++i) row[i] = std::sin(float(i));
  auto one = m->run({floats("x", {1, 300}, row)}, {});
  ASSERT_TRUE(one.is_ok());
  const auto want = values(one->at(0));
  for (int64_t b = 1; b <= 45; ++b) {  // more shapes than the 32 cached plans
    std::vector<float> x;
    for (int64_t i = 0; i < b; ++i) x.insert(x.end(), row.begin(), row.end());
    auto r = m->run({floats("x", {b, 300}, x)}, {});
    ASSERT_TRUE(r.is_ok()) << r.error().to_string();
    const auto y = values(r->at(0));
    ASSERT_EQ(y.size(), size_t(b) * 20);
    for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], want[i % 20], 1e-5) << "batch " << b;
  }
}

// ---- the text front end
// ----------------------------------------------------------------------------

onnx_text_front_end front(const std::string& kind, const std::string& vocab,
                          std::map<std::string, std::string> extra = {}) {
  extra["shoal.tokenizer"] = kind;
  extra["shoal.vocab"] = vocab;
  extra["shoal.labels"] = "a\n";
  auto f = onnx_text_front_end::parse(extra);
  EXPECT_TRUE(f.is_ok()) << f.error().to_string();
  return *f;
}

std::vector<int64_t> ids(const onnx_text_front_end& f, std::string_view text) {
  std::vector<int64_t> v;
  f.ids(text, &v);
  return v;
}

TEST(onnx_text_front_end, wordpiece_splits_punctuation_and_continues_with_hashes) {
  //                     0        1        2      3     4     5      6      7        8     9
  const std::string vocab = "[PAD]\n[UNK]\nhello\n,\nworld\n!\nplay\n##ing\nun\n##want\n##ed\n";
  auto f = front("wordpiece", vocab);
  EXPECT_EQ(ids(f, "Hello, world!"), (std::vector<int64_t>{2, 3, 4, 5}));
  EXPECT_EQ(f.tokens("Hello, world!"), (std::vector<std::string>{"hello", ",", "world", "!"}));
  EXPECT_EQ(ids(f, "playing unwanted"), (std::vector<int64_t>{6, 7, 8, 9, 10}));
  EXPECT_EQ(f.tokens("unwanted"), (std::vector<std::string>{"un", "##want", "##ed"}));
  EXPECT_EQ(ids(f, "plays"), (std::vector<int64_t>{1}));  // "##s" missing: the whole word
  EXPECT_EQ(f.tokens("plays hello"), (std::vector<std::string>{"[UNK]", "hello"}));
  EXPECT_EQ(ids(f, "HELLO\t\n  WORLD"), (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(ids(f, ""), (std::vector<int64_t>{1}));
  EXPECT_EQ(ids(f, " \u00a0\u3000"), (std::vector<int64_t>{1}));
  EXPECT_EQ(ids(f, std::string(101, 'a')), (std::vector<int64_t>{1}));
  EXPECT_EQ(ids(f, "hel\x01lo"), (std::vector<int64_t>{2}));  // control characters dropped
  auto cased = front("wordpiece", vocab, {{"shoal.lowercase", "0"}});
  EXPECT_EQ(ids(cased, "Hello hello"), (std::vector<int64_t>{1, 2}));
  auto short_text = front("wordpiece", vocab, {{"shoal.max_tokens", "3"}});
  EXPECT_EQ(ids(short_text, "hello, world!"), (std::vector<int64_t>{2, 3, 4}));
}

TEST(onnx_text_front_end, whitespace_splits_on_unicode_space_only) {
  const std::string vocab = "<unk>\nhello\nworld!\ncafé\n";
  auto f = front("whitespace", vocab);
  EXPECT_EQ(ids(f, "Hello WORLD!"), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(ids(f, "hello\u00a0world!\u2003café"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(ids(f, "hello, world"), (std::vector<int64_t>{0, 0}));  // no punctuation stripping
  EXPECT_EQ(ids(f, "CAFÉ"), (std::vector<int64_t>{0}));             // only ASCII is lowercased
  EXPECT_EQ(ids(f, "\t\n"), (std::vector<int64_t>{0}));
  EXPECT_EQ(f.tokens("a b"), (std::vector<std::string>{"<unk>", "<unk>"}));
}

TEST(onnx_text_front_end, predicts_what_pytorch_scores) {
  NEED_ORACLE();
  double worst = 0;
  for (const char* kind : {"whitespace", "wordpiece"}) {
    const json& t = data().manifest["texts"][kind];
    auto loaded = load_onnx(data().bytes(std::string("fe_") + kind + ".onnx"));
    ASSERT_TRUE(loaded.is_ok()) << loaded.error().to_string();
    const auto& m = *loaded;
    EXPECT_TRUE(m->takes_texts());
    EXPECT_EQ(m->format(), "onnx");
    EXPECT_EQ(m->label_count(), 4u);
    EXPECT_EQ(m->inputs(), (std::vector<tensor_spec>{{"text", data_type::bytes, {-1}}}));
    EXPECT_EQ(m->outputs().size(), 2u);
    auto f = onnx_text_front_end::parse(front_end(data().dir, t, kind));
    ASSERT_TRUE(f.is_ok());
    const std::vector<std::string> labels = {"greet", "book_flight", "weather", "cancel"};
    std::vector<std::string> texts;
    for (const json& c : t["cases"]) {
      const std::string text = c["text"];
      texts.push_back(text);
      EXPECT_EQ(ids(*f, text), c["ids"].get<std::vector<int64_t>>())
          << kind << ": '" << text << "'";
      const auto want = c["scores"].get<std::vector<double>>();
      auto p = m->predict(text, 10);
      ASSERT_EQ(p.size(), 4u) << text;
      for (size_t i = 0; i + 1 < p.size(); ++i) EXPECT_GE(p[i].score, p[i + 1].score);
      for (const auto& q : p) {
        const size_t at = size_t(std::find(labels.begin(), labels.end(), q.label) - labels.begin());
        ASSERT_LT(at, labels.size()) << q.label;
        EXPECT_NEAR(q.score, want[at], k_tolerance) << kind << ": '" << text << "' " << q.label;
        worst = std::max(worst, std::fabs(q.score - want[at]));
      }
      auto top = m->predict(text, 1);
      ASSERT_EQ(top.size(), 1u);
      EXPECT_EQ(top[0], p[0]);
    }
    EXPECT_EQ(m->predict_batch(texts, 2).size(), texts.size());
    EXPECT_EQ(m->predict_batch(texts, 2)[1], m->predict(texts[1], 2));
    auto r = m->run({}, {});
    EXPECT_FALSE(r.is_ok());
  }
  std::cout << "  text models: max |score diff| vs PyTorch " << worst << "\n";
}

TEST(onnx_text_front_end, scores_can_be_probabilities_or_log_probabilities) {
  NEED_ORACLE();
  // text_cnn ends in LogSoftmax: as log_probabilities its scores are the softmax PyTorch gives.
  auto props = std::map<std::string, std::string>{{"shoal.tokenizer", "whitespace"},
                                                  {"shoal.labels", "a\nb\nc\nd\ne\nf\n"},
                                                  {"shoal.scores", "log_probabilities"}};
  std::string vocab;
  for (int i = 0; i < 500; ++i)
    vocab += (i == 0 ? std::string("<unk>") : "w" + std::to_string(i)) + "\n";
  props["shoal.vocab"] = vocab;
  auto m = load_onnx(with_text_front_end(data().bytes("text_cnn_op13.onnx"), props));
  ASSERT_FALSE(m.is_ok());  // its input is [batch, 16]: texts of other lengths do not fit
  EXPECT_EQ(m.error().message(),
            "a text model's input must be [batch, seq] with a dynamic seq dim; 'ids' is [-1,16]");

  auto bag = with_text_front_end(data().bytes("bag_op13.onnx"),
                                 {{"shoal.tokenizer", "whitespace"},
                                  {"shoal.labels", "a\nb\nc\nd\ne\n"},
                                  {"shoal.vocab", vocab +
                                                      [] {
                                                        std::string more;
                                                        for (int i = 500; i < 1000; ++i)
                                                          more += "w" + std::to_string(i) + "\n";
                                                        return more;
                                                      }()},
                                  {"shoal.scores", "probabilities"}});
  auto probs = load_onnx(bag);
  ASSERT_TRUE(probs.is_ok()) << probs.error().to_string();
  auto raw = load("bag_op13.onnx");
  auto logits = raw->run({int64s("ids", {1, 2}, {3, 7})}, {});
  ASSERT_TRUE(logits.is_ok());
  const auto want = values(logits->at(0));
  auto p = (*probs)->predict("w3 w7", 5);
  ASSERT_EQ(p.size(), 5u);
  EXPECT_FLOAT_EQ(p[0].score, *std::max_element(want.begin(), want.end()));
}

// ---- threads
// -------------------------------------------------------------------------------------------

TEST(onnx_threads, four_threads_agree_with_one) {
  NEED_ORACLE();
  auto mlp = load("mlp_op13.onnx");
  auto text = load_onnx(data().bytes("fe_wordpiece.onnx"));
  ASSERT_TRUE(mlp && text.is_ok());
  const std::vector<int64_t> batches = {1, 2, 7, 32, 3, 64};
  auto input = [](int64_t b) {
    std::vector<float> x(size_t(b) * 300);
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::cos(float(i) * 0.37f);
    return floats("x", {b, 300}, x);
  };
  std::vector<std::string> texts;
  for (const json& c : data().manifest["texts"]["wordpiece"]["cases"]) texts.push_back(c["text"]);
  std::map<int64_t, tensor> want;
  for (int64_t b : batches) want[b] = mlp->run({input(b)}, {})->at(0);
  std::vector<std::vector<prediction>> want_text;
  for (const auto& t : texts) want_text.push_back((*text)->predict(t, 3));

  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 30; ++round) {
        const int64_t b = batches[size_t(t + round) % batches.size()];
        auto r = mlp->run({input(b)}, {});
        if (!r.is_ok() || !(r->at(0) == want.at(b))) ++wrong;
        const size_t i = size_t(t * 7 + round) % texts.size();
        if ((*text)->predict(texts[i], 3) != want_text[i]) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace shoal
