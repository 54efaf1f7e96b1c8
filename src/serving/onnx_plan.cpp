// Building a plan for concrete input shapes (shape inference, constant folding, arena layout by
// liveness) and running it.
#include "serving/onnx_plan.hpp"

#include <algorithm>
#include <cstring>

namespace shoal::onnx_exec {
namespace {

constexpr size_t k_align = 64;

size_t aligned(size_t n) { return (n + k_align - 1) / k_align * k_align; }

// First-fit allocation of arena ranges; freed ranges are merged with their neighbours.
class arena_layout {
 public:
  size_t take(size_t bytes) {
    bytes = std::max(aligned(bytes), k_align);
    for (size_t i = 0; i < free_.size(); ++i) {
      if (free_[i].second < bytes) continue;
      size_t at = free_[i].first;
      free_[i].first += bytes;
      free_[i].second -= bytes;
      if (free_[i].second == 0) free_.erase(free_.begin() + long(i));
      return at;
    }
    // Grow the top, absorbing a free range that ends there.
    size_t at = top_;
    if (!free_.empty() && free_.back().first + free_.back().second == top_) {
      at = free_.back().first;
      free_.pop_back();
    }
    top_ = at + bytes;
    return at;
  }
  void give(size_t at, size_t bytes) {
    bytes = std::max(aligned(bytes), k_align);
    auto it = std::lower_bound(free_.begin(), free_.end(), std::make_pair(at, size_t(0)));
    it = free_.insert(it, {at, bytes});
    size_t i = size_t(it - free_.begin());
    if (i + 1 < free_.size() && free_[i].first + free_[i].second == free_[i + 1].first) {
      free_[i].second += free_[i + 1].second;
      free_.erase(free_.begin() + long(i) + 1);
    }
    if (i > 0 && free_[i - 1].first + free_[i - 1].second == free_[i].first) {
      free_[i - 1].second += free_[i].second;
      free_.erase(free_.begin() + long(i));
    }
  }
  size_t top() const { return top_; }

 private:
  std::vector<std::pair<size_t, size_t>> free_;  // (offset, bytes), sorted by offset
  size_t top_ = 0;
};

std::string node_label(const node& n) { return "node '" + n.name + "' (" + n.op_type + ")"; }

}  // namespace

// ---- shared helpers -----------------------------------------------------------------------------

bool broadcast_shape(const std::vector<int64_t>& a, const std::vector<int64_t>& b,
                     std::vector<int64_t>* out) {
  const size_t r = std::max(a.size(), b.size());
  out->assign(r, 1);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1) return false;
    (*out)[i] = da == 1 ? db : da;
  }
  return true;
}

std::vector<int64_t> strides_of(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) s[i - 1] = s[i] * shape[i];
  return s;
}

int64_t dims_product(const std::vector<int64_t>& shape, size_t lo, size_t hi) {
  int64_t p = 1;
  for (size_t i = lo; i < hi && i < shape.size(); ++i) p *= shape[i];
  return p;
}

bool norm_axis(int64_t a, size_t r, int64_t* out) {
  if (a < -int64_t(r) || a >= int64_t(r)) return false;
  *out = a < 0 ? a + int64_t(r) : a;
  return true;
}

// ---- op_ctx -------------------------------------------------------------------------------------

status op_ctx::fail(const std::string& what) const {
  return status::invalid_argument(node_label(n_) + ": " + what);
}

status op_ctx::need_inputs(size_t lo, size_t hi) const {
  if (n_.in.size() < lo || n_.in.size() > hi)
    return fail("takes " +
                (lo == hi ? std::to_string(lo) : std::to_string(lo) + " to " + std::to_string(hi)) +
                " inputs, has " + std::to_string(n_.in.size()));
  for (size_t i = 0; i < lo; ++i)
    if (!has(i)) return fail("input " + std::to_string(i) + " is required");
  return status::ok();
}

status op_ctx::need_type(size_t i, std::initializer_list<data_type> allowed) const {
  for (data_type t : allowed)
    if (in(i).type == t) return status::ok();
  std::string names;
  for (data_type t : allowed) names += std::string(names.empty() ? "" : ", ") + v2_datatype_name(t);
  return fail("input " + std::to_string(i) + " is " + v2_datatype_name(in(i).type) +
              "; Shoal runs this operator on " + names);
}

status op_ctx::set_out(size_t i, data_type t, std::vector<int64_t> shape) {
  if (!has_out(i)) return status::ok();
  value& v = values_[size_t(n_.out[i])];
  auto n = element_count(shape, size_t(1) << 62);
  if (!n)
    return fail("output " + std::to_string(i) + " would have the invalid shape " +
                shape_text(shape));
  const double need = double(*n) * double(element_size(t));
  if (need > double(k_tensor_limit))
    return fail("output " + shape_text(shape) + " would need " + bytes_text(need) + " (limit " +
                bytes_text(k_tensor_limit) + " per tensor)");
  v.type = t;
  v.shape = std::move(shape);
  v.count = *n;
  v.bytes = *n * element_size(t);
  v.known = true;
  return status::ok();
}

result<std::vector<int64_t>> op_ctx::const_ints(size_t i, const char* what) const {
  const value& v = in(i);
  if (v.at != value::where::constant)
    return fail(std::string("its ") + what +
                " input must be known when the model is planned (a constant, or computed from "
                "input shapes only)");
  std::vector<int64_t> r(v.count);
  if (v.type == data_type::int64) {
    if (v.count > 0) std::memcpy(r.data(), v.data, v.count * 8);  // an empty one has no data
  } else if (v.type == data_type::int32) {
    const int32_t* p = static_cast<const int32_t*>(v.data);
    for (size_t k = 0; k < v.count; ++k) r[k] = p[k];
  } else {
    return fail(std::string("its ") + what + " input must be INT64, is " +
                v2_datatype_name(v.type));
  }
  return r;
}

const void* op_ctx::const_data(size_t i) const {
  const value& v = in(i);
  return v.at == value::where::constant ? v.data : nullptr;
}

status op_ctx::set_constant(size_t i, std::shared_ptr<const blob> b) {
  SHOAL_RETURN_IF_ERROR(set_out(i, b->type, b->shape));
  if (has_out(i)) constants.emplace_back(i, std::move(b));
  return status::ok();
}

std::shared_ptr<const blob> op_ctx::packed(size_t i, bool trans, int64_t K, int64_t N) const {
  if (!packed_gemm_isa() || !const_data(i) || in(i).type != data_type::fp32) return nullptr;
  const int id = n_.in[i];
  if (size_t(id) < g_.constants.size() && g_.constants[size_t(id)])
    return g_.packed_weights(id, trans, K, N);
  return pack_b(static_cast<const float*>(const_data(i)), trans, K, N);  // a folded value
}

std::shared_ptr<const blob> graph::packed_weights(int id, bool trans, int64_t K, int64_t N) const {
  std::lock_guard<std::mutex> lock(packed_mu_);
  auto& slot = packed_[{id, trans}];
  if (!slot)
    slot = pack_b(reinterpret_cast<const float*>(constants[size_t(id)]->bytes.data()), trans, K, N);
  return slot;
}

size_t graph::packed_bytes() const {
  std::lock_guard<std::mutex> lock(packed_mu_);
  size_t n = 0;
  for (const auto& [key, b] : packed_) n += b->bytes.size();
  return n;
}

status op_ctx::set_alias(std::vector<int64_t> shape) {
  SHOAL_RETURN_IF_ERROR(set_out(0, in(0).type, std::move(shape)));
  aliased = true;
  return status::ok();
}

// ---- building
// ------------------------------------------------------------------------------------

result<std::unique_ptr<plan>> build_plan(const graph& g,
                                         const std::vector<std::vector<int64_t>>& shapes) {
  auto p = std::make_unique<plan>();
  p->key = shapes;
  p->values.resize(g.value_names.size());
  for (size_t id = 0; id < g.constants.size(); ++id) {
    value& v = p->values[id];
    v.root = int(id);
    if (!g.constants[id]) continue;
    const blob& b = *g.constants[id];
    v.type = b.type;
    v.shape = b.shape;
    v.count = b.bytes.size() / std::max<size_t>(element_size(b.type), 1);
    v.bytes = b.bytes.size();
    v.at = value::where::constant;
    v.data = b.bytes.data();
    v.known = true;
  }
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    value& v = p->values[size_t(g.inputs[i].id)];
    v.type = g.inputs[i].spec.type;
    v.shape = shapes[i];
    auto n = element_count(v.shape, size_t(1) << 62);
    const double need = n ? double(*n) * double(element_size(v.type)) : 0;
    if (!n || need > double(k_tensor_limit))
      return status::invalid_argument("input '" + g.inputs[i].spec.name + "' " +
                                      shape_text(v.shape) + " would need " +
                                      (n ? bytes_text(need) : std::string("more than 1 EB")) +
                                      " (limit " + bytes_text(k_tensor_limit) + " per tensor)");
    v.count = *n;
    v.bytes = *n * element_size(v.type);
    v.at = value::where::input;
    v.input = int(i);
    v.known = true;
  }

  std::vector<void*> fold_ptr;
  for (const node& n : g.nodes) {
    step st;
    st.n = &n;
    st.in = n.in;
    st.out = n.out;
    op_ctx c(g, n, p->values, st);
    for (int in : n.in)
      if (in >= 0 && !p->values[size_t(in)].known)
        return status::internal(node_label(n) + ": input planned out of order");
    prepare_fn prepare = find_op(n.op_type);
    if (!prepare) return status::internal(node_label(n) + ": no kernel");
    SHOAL_RETURN_IF_ERROR(prepare(c));
    for (int o : n.out)
      if (o >= 0 && !p->values[size_t(o)].known)
        return status::internal(node_label(n) + ": an output has no shape");

    for (auto& [i, b] : c.constants) {
      value& v = p->values[size_t(n.out[i])];
      v.at = value::where::constant;
      v.data = b->bytes.data();
      p->folded_bytes += b->bytes.size();
      p->keep.push_back(std::move(b));
    }
    if (c.aliased && n.out[0] >= 0) {
      value& in = p->values[size_t(n.in[0])];
      value& out = p->values[size_t(n.out[0])];
      out.at = in.at;
      out.offset = in.offset;
      out.data = in.data;
      out.input = in.input;
      out.root = in.root;
      continue;
    }
    if (c.aliased) continue;
    if (!st.fn) {
      if (c.constants.empty()) return status::internal(node_label(n) + ": no kernel chosen");
      continue;
    }
    bool all_constant = true;
    for (int in : n.in)
      all_constant = all_constant && (in < 0 || p->values[size_t(in)].at == value::where::constant);
    if (all_constant) {
      // Fold: run the kernel now, on the constants, into blobs the plan keeps.
      fold_ptr.assign(p->values.size(), nullptr);
      for (int in : n.in)
        if (in >= 0) fold_ptr[size_t(in)] = const_cast<void*>(p->values[size_t(in)].data);
      std::vector<std::shared_ptr<blob>> outs;
      for (int o : n.out) {
        if (o < 0) continue;
        value& v = p->values[size_t(o)];
        auto b = std::make_shared<blob>();
        b->type = v.type;
        b->shape = v.shape;
        b->bytes.resize(std::max<size_t>(v.bytes, 1));
        b->bytes.resize(v.bytes);
        fold_ptr[size_t(o)] = b->bytes.data();
        outs.push_back(b);
      }
      std::vector<unsigned char> work(st.work_bytes + 1);
      SHOAL_RETURN_IF_ERROR(st.fn(st, p->values.data(), fold_ptr.data(), work.data()));
      size_t k = 0;
      for (int o : n.out) {
        if (o < 0) continue;
        value& v = p->values[size_t(o)];
        v.at = value::where::constant;
        v.data = outs[k]->bytes.data();
        p->folded_bytes += outs[k]->bytes.size();
        p->keep.push_back(std::move(outs[k]));
        ++k;
      }
      continue;
    }
    p->steps.push_back(std::move(st));
  }
  for (const auto& o : g.outputs)
    if (!p->values[size_t(o.id)].known)
      return status::internal("graph output '" + o.spec.name + "' was not planned");

  // Arena layout: a value's bytes are taken when its step runs and given back after the last
  // step that reads them (through any alias); outputs are kept to the end. A step's outputs and
  // work never share bytes with its inputs.
  const size_t never = size_t(-1);
  std::vector<size_t> last(p->values.size(), 0);
  for (size_t s = 0; s < p->steps.size(); ++s) {
    for (int o : p->steps[s].out)
      if (o >= 0) last[size_t(o)] = std::max(last[size_t(o)], s);
    for (int in : p->steps[s].in)
      if (in >= 0) last[size_t(p->values[size_t(in)].root)] = s;
  }
  for (const auto& o : g.outputs) last[size_t(p->values[size_t(o.id)].root)] = never;
  arena_layout layout;
  std::vector<std::vector<int>> give_after(p->steps.size());
  for (size_t s = 0; s < p->steps.size(); ++s) {
    step& st = p->steps[s];
    for (int o : st.out) {
      if (o < 0) continue;
      value& v = p->values[size_t(o)];
      v.offset = layout.take(v.bytes);
      if (last[size_t(o)] != never) give_after[last[size_t(o)]].push_back(o);
    }
    if (st.work_bytes) st.work_offset = layout.take(st.work_bytes);
    if (st.work_bytes) layout.give(st.work_offset, st.work_bytes);
    for (int v : give_after[s])
      layout.give(p->values[size_t(v)].offset, p->values[size_t(v)].bytes);
  }
  // Aliases of arena values take their root's offset (roots were laid out above).
  for (auto& v : p->values)
    if (v.at == value::where::arena && v.root >= 0) v.offset = p->values[size_t(v.root)].offset;
  p->arena_bytes = layout.top();
  const double total = double(p->arena_bytes) + double(p->folded_bytes);
  if (total > double(k_plan_limit))
    return status::invalid_argument("the model would need " + bytes_text(total) +
                                    " of working memory for input shapes " +
                                    [&] {
                                      std::string s;
                                      for (const auto& x : shapes) s += shape_text(x);
                                      return s;
                                    }() +
                                    " (limit " + bytes_text(k_plan_limit) + ")");
  return p;
}

// ---- running
// -------------------------------------------------------------------------------------

status run_plan(const plan& p, const void* const* inputs, unsigned char* arena, void** ptr) {
  const size_t n = p.values.size();
  for (size_t i = 0; i < n; ++i) {
    const value& v = p.values[i];
    switch (v.at) {
      case value::where::arena:
        ptr[i] = arena + v.offset;
        break;
      case value::where::constant:
        ptr[i] = const_cast<void*>(v.data);
        break;
      case value::where::input:
        ptr[i] = const_cast<void*>(inputs[v.input]);
        break;
    }
  }
  for (const step& st : p.steps) {
    status s = st.fn(st, p.values.data(), ptr, arena + st.work_offset);
    if (!s.is_ok()) return s;
  }
  return status::ok();
}

}  // namespace shoal::onnx_exec
