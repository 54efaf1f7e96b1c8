// ONNX models: recognising the bytes, loading (graph, text front end, the plan at batch 1), the
// plan cache, and run()/predict() on per-thread scratch.
#include "shoal/serving/onnx_model.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>

#include "serving/onnx_plan.hpp"

namespace shoal {
namespace {

using onnx_exec::graph;
using onnx_exec::plan;

constexpr size_t k_plan_slots = 32;

// What each thread keeps between runs, grown to the largest need and reused.
struct run_scratch {
  unsigned char* arena = nullptr;
  size_t capacity = 0;
  std::vector<void*> ptr;
  std::vector<const void*> inputs;
  std::vector<const std::vector<int64_t>*> shapes;
  std::vector<int64_t> ids;
  std::vector<int32_t> ids32;
  std::vector<int64_t> id_shape;
  std::vector<float> scores;
  std::vector<uint32_t> order;
  std::vector<const tensor*> by_input;
  std::vector<size_t> picked;

  ~run_scratch() { std::free(arena); }
  bool reserve(size_t bytes) {
    if (bytes <= capacity) return true;
    const size_t want = std::max<size_t>((bytes + 63) / 64 * 64, 4096);
    void* p = std::aligned_alloc(64, want);
    if (!p) return false;
    std::free(arena);
    arena = static_cast<unsigned char*>(p);
    capacity = want;
    return true;
  }
};

run_scratch& scratch() {
  thread_local run_scratch s;
  return s;
}

std::string spec_text(const tensor_spec& s) {
  return s.name + " " + v2_datatype_name(s.type) + " " + shape_text(s.shape);
}

class onnx_model final : public model {
 public:
  onnx_model(std::shared_ptr<const graph> g, std::optional<onnx_text_front_end> text)
      : g_(std::move(g)), text_(std::move(text)) {
    for (auto& slot : cache_) slot.store(nullptr, std::memory_order_relaxed);
  }
  ~onnx_model() override {
    for (auto& slot : cache_) delete slot.load(std::memory_order_acquire);
  }
  onnx_model(const onnx_model&) = delete;
  onnx_model& operator=(const onnx_model&) = delete;

  // Takes the plan for batch 1 as the first cached plan; records the sizes memory_bytes reports.
  void adopt(std::unique_ptr<plan> base) {
    base_bytes_ = base->arena_bytes + base->folded_bytes;
    base_ = base.get();
    cache_[0].store(base.release(), std::memory_order_release);
  }
  const plan& base() const { return *base_; }

  std::vector<prediction> predict(std::string_view text, size_t k) const override;
  std::string format() const override { return "onnx"; }
  size_t label_count() const override { return text_ ? text_->labels().size() : 0; }
  size_t memory_bytes() const override {
    return g_->weight_bytes + g_->packed_bytes() + base_bytes_ +
           (text_ ? text_->memory_bytes() : 0);
  }
  bool takes_texts() const override { return text_.has_value(); }
  std::vector<tensor_spec> inputs() const override;
  std::vector<tensor_spec> outputs() const override;
  result<std::vector<tensor>> run(const std::vector<tensor>& inputs,
                                  const std::vector<std::string>& want) const override;

  // Runs the plan for the shapes in s.shapes on the inputs in s.inputs; on success the outputs'
  // bytes are at s.ptr[output id] and *used is the plan.
  status execute(run_scratch& s, const plan** used, std::unique_ptr<plan>* own) const;

 private:
  const plan* find_plan(const run_scratch& s) const;

  std::shared_ptr<const graph> g_;
  std::optional<onnx_text_front_end> text_;
  mutable std::array<std::atomic<const plan*>, k_plan_slots> cache_;
  const plan* base_ = nullptr;
  size_t base_bytes_ = 0;
};

const plan* onnx_model::find_plan(const run_scratch& s) const {
  for (const auto& slot : cache_) {
    const plan* p = slot.load(std::memory_order_acquire);
    if (!p) return nullptr;  // slots fill in order
    bool same = true;
    for (size_t i = 0; same && i < s.shapes.size(); ++i) same = p->key[i] == *s.shapes[i];
    if (same) return p;
  }
  return nullptr;
}

status onnx_model::execute(run_scratch& s, const plan** used, std::unique_ptr<plan>* own) const {
  const plan* p = find_plan(s);
  if (!p) {
    std::vector<std::vector<int64_t>> shapes;
    for (const auto* x : s.shapes) shapes.push_back(*x);
    auto built = onnx_exec::build_plan(*g_, shapes);
    if (!built) return built.error();
    p = built->get();
    // Install in the first free slot; a slot taken meanwhile may hold the same shapes.
    bool kept = false;
    for (auto& slot : cache_) {
      const plan* expected = nullptr;
      if (slot.compare_exchange_strong(expected, p, std::memory_order_acq_rel)) {
        built->release();
        kept = true;
        break;
      }
      if (expected->key == p->key) {
        p = expected;
        kept = true;
        break;
      }
    }
    if (!kept) *own = std::move(*built);  // the cache is full: this call's plan only
  }
  if (!s.reserve(p->arena_bytes))
    return status::resource_exhausted(
        "cannot allocate " + onnx_exec::bytes_text(double(p->arena_bytes)) + " of working memory");
  s.ptr.resize(std::max(s.ptr.size(), p->values.size()));
  *used = p;
  return onnx_exec::run_plan(*p, s.inputs.data(), s.arena, s.ptr.data());
}

std::vector<tensor_spec> onnx_model::inputs() const {
  if (text_) return model::inputs();
  std::vector<tensor_spec> out;
  for (const auto& in : g_->inputs) out.push_back(in.spec);
  return out;
}

std::vector<tensor_spec> onnx_model::outputs() const {
  if (text_) return model::outputs();
  std::vector<tensor_spec> out;
  for (const auto& o : g_->outputs) {
    tensor_spec s = o.spec;
    if (s.shape.empty() && o.dim_names.empty()) {
      // No declared shape: the planned rank, every dim dynamic.
      s.shape.assign(base_->values[size_t(o.id)].shape.size(), -1);
    }
    out.push_back(std::move(s));
  }
  return out;
}

result<std::vector<tensor>> onnx_model::run(const std::vector<tensor>& given,
                                            const std::vector<std::string>& want) const {
  if (text_) return model::run(given, want);
  const auto& ins = g_->inputs;
  auto takes = [&] {
    std::string t;
    for (const auto& in : ins) t += (t.empty() ? "" : ", ") + spec_text(in.spec);
    return t.empty() ? std::string("no inputs") : t;
  };
  run_scratch& s = scratch();
  auto& by_input = s.by_input;
  by_input.assign(ins.size(), nullptr);
  for (const tensor& t : given) {
    size_t i = 0;
    while (i < ins.size() && ins[i].spec.name != t.name) ++i;
    if (i == ins.size())
      return status::invalid_argument("unknown input '" + t.name + "' (the model takes " + takes() +
                                      ")");
    if (by_input[i]) return status::invalid_argument("input '" + t.name + "' is given twice");
    by_input[i] = &t;
  }
  for (size_t i = 0; i < ins.size(); ++i) {
    if (!by_input[i])
      return status::invalid_argument("missing input '" + ins[i].spec.name + "' (the model takes " +
                                      takes() + ")");
    SHOAL_RETURN_IF_ERROR(check_against(*by_input[i], ins[i].spec));
    SHOAL_RETURN_IF_ERROR(by_input[i]->check_size());
  }
  // Dims the graph names alike must agree (a batch dim shared by two inputs).
  for (size_t i = 0; i < ins.size(); ++i) {
    for (size_t d = 0; d < ins[i].dim_names.size(); ++d) {
      const std::string& name = ins[i].dim_names[d];
      if (name.empty()) continue;
      for (size_t j = 0; j <= i; ++j) {
        for (size_t e = 0; e < ins[j].dim_names.size(); ++e) {
          if ((j == i && e >= d) || ins[j].dim_names[e] != name) continue;
          if (by_input[i]->shape[d] != by_input[j]->shape[e])
            return status::invalid_argument("inputs '" + ins[j].spec.name + "' and '" +
                                            ins[i].spec.name + "' must agree on dimension '" +
                                            name + "': got " + shape_text(by_input[j]->shape) +
                                            " and " + shape_text(by_input[i]->shape));
        }
      }
    }
  }
  auto& picked = s.picked;
  picked.clear();
  if (want.empty()) {
    for (size_t o = 0; o < g_->outputs.size(); ++o) picked.push_back(o);
  } else {
    for (const auto& w : want) {
      size_t o = 0;
      while (o < g_->outputs.size() && g_->outputs[o].spec.name != w) ++o;
      if (o == g_->outputs.size()) {
        std::string gives;
        for (const auto& out : g_->outputs) gives += (gives.empty() ? "" : ", ") + out.spec.name;
        return status::invalid_argument("unknown output '" + w + "' (the model gives " + gives +
                                        ")");
      }
      picked.push_back(o);
    }
  }

  s.inputs.clear();
  s.shapes.clear();
  std::vector<std::vector<uint64_t>> realigned;  // for inputs whose bytes are not aligned
  for (size_t i = 0; i < ins.size(); ++i) {
    const tensor& t = *by_input[i];
    const void* data = t.data.data();
    if (reinterpret_cast<uintptr_t>(data) % std::max<size_t>(element_size(t.type), 1) != 0) {
      realigned.emplace_back((t.data.size() + 7) / 8);
      std::memcpy(realigned.back().data(), t.data.data(), t.data.size());
      data = realigned.back().data();
    }
    s.inputs.push_back(data);
    s.shapes.push_back(&t.shape);
  }
  const plan* p = nullptr;
  std::unique_ptr<plan> own;
  SHOAL_RETURN_IF_ERROR(execute(s, &p, &own));
  std::vector<tensor> out;
  out.reserve(picked.size());
  for (size_t o : picked) {
    const int id = g_->outputs[o].id;
    const onnx_exec::value& v = p->values[size_t(id)];
    tensor t;
    t.name = g_->outputs[o].spec.name;
    t.type = v.type;
    t.shape = v.shape;
    t.data.assign(static_cast<const char*>(s.ptr[size_t(id)]), v.bytes);
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<prediction> onnx_model::predict(std::string_view text, size_t k) const {
  if (!text_) return {};
  run_scratch& s = scratch();
  text_->ids(text, &s.ids);
  const auto& in = g_->inputs[0];
  s.id_shape.assign({1, int64_t(s.ids.size())});
  s.inputs.clear();
  s.shapes.clear();
  if (in.spec.type == data_type::int32) {
    s.ids32.assign(s.ids.begin(), s.ids.end());
    s.inputs.push_back(s.ids32.data());
  } else {
    s.inputs.push_back(s.ids.data());
  }
  s.shapes.push_back(&s.id_shape);
  const plan* p = nullptr;
  std::unique_ptr<plan> own;
  if (!execute(s, &p, &own).is_ok()) return {};
  const int id = g_->outputs[0].id;
  const onnx_exec::value& v = p->values[size_t(id)];
  const size_t n = text_->labels().size();
  if (v.count < n) return {};
  s.scores.resize(n);
  if (v.type == data_type::fp64) {
    const double* d = static_cast<const double*>(s.ptr[size_t(id)]);
    for (size_t i = 0; i < n; ++i) s.scores[i] = float(d[i]);
  } else if (v.type == data_type::fp32) {
    std::memcpy(s.scores.data(), s.ptr[size_t(id)], n * sizeof(float));
  } else {
    return {};
  }
  switch (text_->scores()) {
    case onnx_text_front_end::score_kind::logits: {
      float m = -std::numeric_limits<float>::infinity();
      for (float x : s.scores) m = std::max(m, x);
      double sum = 0;
      for (float& x : s.scores) {
        x = std::exp(x - m);
        sum += x;
      }
      for (float& x : s.scores) x = float(x / sum);
      break;
    }
    case onnx_text_front_end::score_kind::log_probabilities:
      for (float& x : s.scores) x = std::exp(x);
      break;
    case onnx_text_front_end::score_kind::probabilities:
      break;
  }
  k = std::min(k, n);
  s.order.resize(n);
  for (size_t i = 0; i < n; ++i) s.order[i] = uint32_t(i);
  auto key = [&](uint32_t i) {
    const float x = s.scores[i];
    return std::isnan(x) ? -std::numeric_limits<float>::infinity() : x;
  };
  std::partial_sort(s.order.begin(), s.order.begin() + long(k), s.order.end(),
                    [&](uint32_t a, uint32_t b) {
                      const float ka = key(a), kb = key(b);
                      return ka > kb || (ka == kb && a < b);
                    });
  std::vector<prediction> out;
  out.reserve(k);
  for (size_t i = 0; i < k; ++i)
    out.push_back(prediction{text_->labels()[s.order[i]], s.scores[s.order[i]]});
  return out;
}

// The top-level fields of ModelProto and their wire types (0 varint, 2 length-delimited).
int model_proto_wire_type(uint64_t field) {
  switch (field) {
    case 1:
    case 5:
      return 0;  // ir_version, model_version
    case 2:
    case 3:
    case 4:
    case 6:
    case 7:  // producer, version, domain, doc, graph
    case 8:
    case 14:
    case 20:
    case 25:
      return 2;  // opset_import, metadata, training, functions
    default:
      return -1;
  }
}

bool read_varint(std::string_view b, size_t* at, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && *at < b.size(); shift += 7) {
    const unsigned char c = static_cast<unsigned char>(b[(*at)++]);
    *v |= uint64_t(c & 0x7F) << shift;
    if (!(c & 0x80)) return true;
  }
  return false;
}

}  // namespace

bool looks_like_onnx(std::string_view bytes) {
  size_t at = 0;
  bool ir_version = false, graph = false;
  while (at < bytes.size()) {
    uint64_t tag = 0, v = 0;
    if (!read_varint(bytes, &at, &tag)) return ir_version;  // cut short
    const int wire = model_proto_wire_type(tag >> 3);
    if (wire < 0 || int(tag & 7) != wire) return false;
    if (!read_varint(bytes, &at, &v)) return ir_version;
    if (wire == 0) {
      if ((tag >> 3) == 1) ir_version = v > 0;
      continue;
    }
    if ((tag >> 3) == 7) graph = true;
    if (v > bytes.size() - at) return ir_version;  // cut short
    at += size_t(v);
  }
  return ir_version && graph;
}

result<std::shared_ptr<const model>> load_onnx(std::string_view bytes) {
  auto g = onnx_exec::read_graph(bytes);
  if (!g) return g.error();
  const graph& gr = **g;

  std::optional<onnx_text_front_end> text;
  std::map<std::string, std::string> props;
  for (const auto& [key, value] : gr.metadata)
    if (key.rfind("shoal.", 0) == 0) props[key] = value;
  if (!props.empty()) {
    auto f = onnx_text_front_end::parse(props);
    if (!f) return status::invalid_argument("the model's text front end: " + f.error().message());
    text = std::move(*f);
    if (gr.inputs.size() != 1)
      return status::invalid_argument(
          "a text model must have one input (token ids [batch, seq]), this one has " +
          std::to_string(gr.inputs.size()));
    const auto& in = gr.inputs[0].spec;
    if ((in.type != data_type::int64 && in.type != data_type::int32) || in.shape.size() != 2)
      return status::invalid_argument(
          "a text model's input must be INT64 or INT32 [batch, seq], '" + in.name + "' is " +
          v2_datatype_name(in.type) + " " + shape_text(in.shape));
    if (in.shape[1] >= 0 || in.shape[0] > 1)
      return status::invalid_argument(
          "a text model's input must be [batch, seq] with a dynamic seq dim; '" + in.name +
          "' is " + shape_text(in.shape));
  }

  std::vector<std::vector<int64_t>> shapes;
  for (const auto& in : gr.inputs) {
    std::vector<int64_t> s = in.spec.shape;
    for (int64_t& d : s)
      if (d < 0) d = 1;
    shapes.push_back(std::move(s));
  }
  auto base = onnx_exec::build_plan(gr, shapes);
  if (!base) return base.error();

  if (text) {
    const auto& out = (*base)->values[size_t(gr.outputs[0].id)];
    const size_t labels = text->labels().size();
    if (out.shape.size() != 2 || out.shape[1] != int64_t(labels) ||
        (out.type != data_type::fp32 && out.type != data_type::fp64))
      return status::invalid_argument("the model's first output '" + gr.outputs[0].spec.name +
                                      "' is " + v2_datatype_name(out.type) + " " +
                                      shape_text(out.shape) + " at batch 1, but shoal.labels has " +
                                      std::to_string(labels) +
                                      " labels: a text model's first output must be FP32 [batch, " +
                                      std::to_string(labels) + "]");
  }
  auto m = std::make_shared<onnx_model>(*g, text);
  m->adopt(std::move(*base));
  if (text) {
    // Every id of the vocabulary must be one the model takes (an embedding table large enough).
    run_scratch& s = scratch();
    for (int64_t id : {int64_t(text->vocab_size()) - 1, text->unk_id()}) {
      s.ids.assign(1, id);
      s.ids32.assign(1, int32_t(id));
      s.id_shape.assign({1, 1});
      s.inputs.assign(1, gr.inputs[0].spec.type == data_type::int32
                             ? static_cast<const void*>(s.ids32.data())
                             : s.ids.data());
      s.shapes.assign(1, &s.id_shape);
      const plan* p = nullptr;
      std::unique_ptr<plan> own;
      status st = m->execute(s, &p, &own);
      if (!st.is_ok())
        return status::invalid_argument("shoal.vocab has " + std::to_string(text->vocab_size()) +
                                        " tokens, but the model fails on id " + std::to_string(id) +
                                        ": " + st.message());
    }
  }
  return std::shared_ptr<const model>(std::move(m));
}

}  // namespace shoal
