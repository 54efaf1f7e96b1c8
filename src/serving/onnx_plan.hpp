// onnx_plan (private to serving): how an ONNX graph is held once read (graph: nodes in topological
// order, initializers as blobs) and how it runs (plan: for one set of concrete input shapes, every
// value's type, shape and place, the steps to run with their kernels, and the size of the working
// memory). onnx_graph.cpp reads the protobuf into a graph; onnx_plan.cpp builds and runs plans;
// onnx_ops.cpp, onnx_shape_ops.cpp and onnx_window_ops.cpp hold each operator's shape rule and
// kernel; onnx_gemm.cpp the packed sgemm for constant weights.
// Thread-safety: a graph and a built plan are immutable and shared by all threads; a plan runs
// against memory the caller owns (one arena per thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "shoal/base/status.hpp"
#include "shoal/serving/tensor.hpp"

namespace shoal::onnx_exec {

/// Any one tensor (input, weight, intermediate or output) may take at most this many bytes.
constexpr size_t k_tensor_limit = size_t(1) << 30;
/// A plan's working memory plus the constants it folds may take at most this many bytes.
constexpr size_t k_plan_limit = size_t(2) << 30;

/// Returns "4.0 TB", "12.5 MB", "300 B": a byte count for messages (powers of 1024).
std::string bytes_text(double bytes);

/// A tensor known before any input arrives: an initializer, a Constant, or a folded value.
/// Its bytes are packed as tensor::data packs them (row-major, little-endian, BOOL one byte).
struct blob {
  data_type type = data_type::fp32;
  std::vector<int64_t> shape;
  std::vector<unsigned char> bytes;
};

/// One attribute of a node, of the kinds Shoal's operators read.
struct attribute {
  enum class kind : uint8_t { f, i, s, t, floats, ints, other };
  kind k = kind::other;
  float f = 0;
  int64_t i = 0;
  std::string s;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::shared_ptr<const blob> t;
};

struct node {
  std::string name;      // the node's name, or "#<index>" when the file gives none
  std::string op_type;   // "Gemm"
  std::vector<int> in;   // value ids; -1 for an optional input left out
  std::vector<int> out;  // value ids; -1 for an optional output left out
  std::map<std::string, attribute> attrs;

  /// Returns the attribute `name`, or nullptr when the node does not set it.
  const attribute* attr(const std::string& name) const;
  /// Returns attribute `name` as an integer, or `fallback` when absent.
  int64_t attr_i(const std::string& name, int64_t fallback) const;
  /// Returns attribute `name` as a float, or `fallback` when absent.
  float attr_f(const std::string& name, float fallback) const;
  /// Returns attribute `name` as a string, or `fallback` when absent.
  std::string attr_s(const std::string& name, const std::string& fallback) const;
};

/// A graph input or output as the file declares it; dims: -1 where dynamic.
struct graph_io {
  int id = -1;
  tensor_spec spec;
  std::vector<std::string> dim_names;  // dim_param per dim ("" where none)
};

/// An ONNX graph read and checked: nodes in topological order, only those the outputs need.
struct graph {
  int opset = 0;
  std::vector<std::string> value_names;                // by value id
  std::vector<std::shared_ptr<const blob>> constants;  // by value id; null unless an initializer
  std::vector<graph_io> inputs;                        // initializers excluded
  std::vector<graph_io> outputs;
  std::vector<node> nodes;
  size_t weight_bytes = 0;
  std::map<std::string, std::string> metadata;  // metadata_props

  /// Returns initializer `id` packed for packed_gemm (transposed when `trans`), packing it on
  /// first use; plans of every shape share the packed copy.
  std::shared_ptr<const blob> packed_weights(int id, bool trans, int64_t K, int64_t N) const;
  /// Returns the bytes the packed copies take.
  size_t packed_bytes() const;

 private:
  mutable std::mutex packed_mu_;
  mutable std::map<std::pair<int, bool>, std::shared_ptr<const blob>> packed_;
};

/// Returns the instruction set packed_gemm uses on this CPU: 2 AVX-512, 1 AVX2+FMA, 0 none (use
/// OpenBLAS).
int packed_gemm_isa();
/// Returns B ([K,N], or [N,K] when `trans`) packed in panels of 16 columns.
std::shared_ptr<const blob> pack_b(const float* b, bool trans, int64_t K, int64_t N);
/// Computes y[M,N] = a[M,K] x B (y += when `accumulate`) with B from pack_b.
/// @pre isa != 0
void packed_gemm(int isa, const float* a, int64_t M, int64_t K, const float* packed, int64_t N,
                 float* y, bool accumulate);

/// Returns the operator types Shoal runs, sorted.
const std::vector<std::string>& supported_ops();

/// Reads a serialized ModelProto into a graph, with every refusal onnx_model.hpp lists.
result<std::shared_ptr<const graph>> read_graph(std::string_view bytes);

// ---- plans
// ---------------------------------------------------------------------------------------

/// One value of a plan: its type, concrete shape, and where its bytes are at run time.
struct value {
  enum class where : uint8_t { arena, constant, input };
  data_type type = data_type::fp32;
  std::vector<int64_t> shape;
  size_t count = 0;  // elements
  size_t bytes = 0;
  where at = where::arena;
  size_t offset = 0;           // arena: byte offset
  const void* data = nullptr;  // constant: the bytes
  int input = -1;              // input: index into graph::inputs
  int root = -1;               // the value whose bytes these are (itself unless an alias)
  bool known = false;          // shape and type set
};

struct step;
/// A kernel: runs one step with `ptr` holding every value's bytes by id, and `work` the step's
/// scratch (work_bytes). Returns invalid_argument for a bad value (a Gather index out of range).
using kernel = status (*)(const step& s, const value* values, void* const* ptr, void* work);

struct step {
  kernel fn = nullptr;
  const node* n = nullptr;
  std::vector<int> in, out;           // value ids as in the node (-1: absent)
  std::vector<int64_t> p;             // integer parameters the op's prepare computed
  std::vector<float> f;               // float parameters
  std::shared_ptr<const blob> extra;  // a constant the kernel reads (ConstantOfShape's value)
  size_t work_bytes = 0;
  size_t work_offset = 0;
};

/// Returns step `s`'s input `i` as T (kernels' view of the arena).
template <class T>
const T* in_ptr(const step& s, void* const* ptr, size_t i) {
  return static_cast<const T*>(ptr[s.in[i]]);
}
/// Returns step `s`'s output `i` as T.
template <class T>
T* out_ptr(const step& s, void* const* ptr, size_t i = 0) {
  return static_cast<T*>(ptr[s.out[i]]);
}

/// The most dimensions a kernel's index arithmetic handles.
constexpr size_t k_max_rank = 16;

/// Everything needed to run the graph for one set of input shapes.
struct plan {
  std::vector<std::vector<int64_t>> key;  // input shapes, in graph::inputs order
  std::vector<value> values;
  std::vector<step> steps;
  size_t arena_bytes = 0;
  size_t folded_bytes = 0;
  std::vector<std::shared_ptr<const blob>> keep;  // folded constants the values point into
};

/// Builds the plan for `shapes` (one per graph input): shape inference, constant folding, kernel
/// choice and arena layout. Any problem is an invalid_argument naming the node.
result<std::unique_ptr<plan>> build_plan(const graph& g,
                                         const std::vector<std::vector<int64_t>>& shapes);

/// Runs `p`: `inputs` holds each graph input's bytes (graph::inputs order), `arena` at least
/// p.arena_bytes (64-byte aligned), `ptr` room for p.values.size() pointers. On success the
/// outputs' bytes are at ptr[g.outputs[i].id].
status run_plan(const plan& p, const void* const* inputs, unsigned char* arena, void** ptr);

// ---- what an operator's prepare sees ----------------------------------------------------------

/// The context of one node while its plan is built: its inputs' types, shapes and (for
/// constants) values, and the step it fills in.
class op_ctx {
 public:
  op_ctx(const graph& g, const node& n, std::vector<value>& values, step& st)
      : g_(g), n_(n), opset_(g.opset), values_(values), st_(st) {}

  const graph& g() const { return g_; }
  const node& n() const { return n_; }
  int opset() const { return opset_; }
  step& st() { return st_; }

  /// Returns whether input i is given.
  bool has(size_t i) const { return i < n_.in.size() && n_.in[i] >= 0; }
  /// @pre has(i)
  const value& in(size_t i) const { return values_[size_t(n_.in[i])]; }
  /// Returns whether output i is wanted.
  bool has_out(size_t i) const { return i < n_.out.size() && n_.out[i] >= 0; }
  /// Returns an invalid_argument "node 'x' (Op): <what>".
  status fail(const std::string& what) const;
  /// Returns an error unless inputs [lo, hi] are given (hi: the most the op takes).
  status need_inputs(size_t lo, size_t hi) const;
  /// Returns an error unless input i has type `t`.
  status need_type(size_t i, std::initializer_list<data_type> allowed) const;
  /// Sets output i's type and shape; refuses a tensor over k_tensor_limit.
  status set_out(size_t i, data_type t, std::vector<int64_t> shape);
  /// Returns the integers of constant input i (INT64 or INT32), or an error saying the input
  /// must be known when the model is planned.
  result<std::vector<int64_t>> const_ints(size_t i, const char* what) const;
  /// Returns the blob of constant input i, or nullptr when it is computed at run time.
  const void* const_data(size_t i) const;
  /// Makes output i a constant the plan owns.
  status set_constant(size_t i, std::shared_ptr<const blob> b);
  /// Returns constant input i (FP32 B of a matrix product) packed for packed_gemm, or nullptr
  /// when this CPU has no packed kernel or the input is computed at run time.
  std::shared_ptr<const blob> packed(size_t i, bool trans, int64_t K, int64_t N) const;
  /// Makes output 0 share input 0's bytes with a new shape (Reshape, Squeeze, Identity...).
  status set_alias(std::vector<int64_t> shape);

  bool aliased = false;
  std::vector<std::pair<size_t, std::shared_ptr<const blob>>> constants;

 private:
  const graph& g_;
  const node& n_;
  int opset_;
  std::vector<value>& values_;
  step& st_;
};

/// Returns the prepare function for `op_type`, or nullptr when Shoal does not run it.
using prepare_fn = status (*)(op_ctx& c);
prepare_fn find_op(const std::string& op_type);

// Implemented by onnx_ops.cpp (arithmetic), onnx_shape_ops.cpp (data movement) and
// onnx_window_ops.cpp (Conv, MaxPool): each returns its operators' prepare functions by name.
const std::map<std::string, prepare_fn>& math_ops();
const std::map<std::string, prepare_fn>& shape_ops();
const std::map<std::string, prepare_fn>& window_ops();

/// Returns numpy's broadcast of two shapes, or nullopt when they do not broadcast.
bool broadcast_shape(const std::vector<int64_t>& a, const std::vector<int64_t>& b,
                     std::vector<int64_t>* out);
/// Returns row-major strides (in elements) of `shape`.
std::vector<int64_t> strides_of(const std::vector<int64_t>& shape);
/// Returns the product of shape[lo, hi).
int64_t dims_product(const std::vector<int64_t>& shape, size_t lo, size_t hi);
/// Normalizes axis `a` against rank r (negative counts from the end); false when out of range.
bool norm_axis(int64_t a, size_t r, int64_t* out);

}  // namespace shoal::onnx_exec
