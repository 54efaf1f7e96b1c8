// Reading an ONNX ModelProto (ONNX's own protobuf schema) into a graph: opset, initializers,
// inputs and outputs, nodes; and the load-time refusals (onnx_model.hpp lists them).
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <set>
#include <unordered_map>

#include "serving/onnx_plan.hpp"

namespace shoal::onnx_exec {
namespace {

constexpr int k_min_opset = 11;
constexpr int k_max_opset = 18;

std::optional<data_type> type_of(int32_t onnx_type) {
  switch (onnx_type) {
    case onnx::TensorProto_DataType_FLOAT:
      return data_type::fp32;
    case onnx::TensorProto_DataType_DOUBLE:
      return data_type::fp64;
    case onnx::TensorProto_DataType_INT32:
      return data_type::int32;
    case onnx::TensorProto_DataType_INT64:
      return data_type::int64;
    case onnx::TensorProto_DataType_BOOL:
      return data_type::boolean;
    default:
      return std::nullopt;
  }
}

std::string onnx_type_name(int32_t onnx_type) {
  if (onnx::TensorProto_DataType_IsValid(onnx_type))
    return onnx::TensorProto_DataType_Name(onnx::TensorProto_DataType(onnx_type));
  return "type " + std::to_string(onnx_type);
}

template <class T, class R>
void copy_typed(const R& field, std::vector<unsigned char>* out) {
  T* p = reinterpret_cast<T*>(out->data());
  size_t i = 0;
  for (const auto& v : field) p[i++] = static_cast<T>(v);
}

// Reads a TensorProto (an initializer or a Constant's value) into a blob. `what` names it.
result<std::shared_ptr<const blob>> read_tensor(const onnx::TensorProto& t,
                                                const std::string& what) {
  if (t.data_location() == onnx::TensorProto_DataLocation_EXTERNAL || t.external_data_size() > 0)
    return status::invalid_argument(
        what +
        ": weights stored outside the file (external data) are not supported; export "
        "the model with its weights inside the .onnx file");
  if (t.has_segment())
    return status::invalid_argument(what + ": segmented tensors are not supported");
  auto type = type_of(t.data_type());
  if (!type)
    return status::invalid_argument(what + " is " + onnx_type_name(t.data_type()) +
                                    ": Shoal takes FLOAT, DOUBLE, INT32, INT64 and BOOL tensors");
  auto b = std::make_shared<blob>();
  b->type = *type;
  b->shape.assign(t.dims().begin(), t.dims().end());
  auto n = element_count(b->shape, size_t(1) << 62);
  if (!n) return status::invalid_argument(what + " has an invalid shape " + shape_text(b->shape));
  const size_t es = element_size(*type);
  const double need = double(*n) * double(es);
  if (need > double(k_tensor_limit))
    return status::invalid_argument(what + " " + shape_text(b->shape) + " would need " +
                                    bytes_text(need) + " (limit " + bytes_text(k_tensor_limit) +
                                    " per tensor)");
  const size_t bytes = *n * es;
  size_t given = 0;
  if (t.has_raw_data()) {
    given = t.raw_data().size() / es;
    if (t.raw_data().size() == bytes) {
      b->bytes.assign(t.raw_data().begin(), t.raw_data().end());
      return std::shared_ptr<const blob>(std::move(b));
    }
    if (t.raw_data().size() % es != 0) given = size_t(-1);
  } else {
    b->bytes.resize(bytes);
    switch (*type) {
      case data_type::fp32:
        given = size_t(t.float_data_size());
        if (given == *n) copy_typed<float>(t.float_data(), &b->bytes);
        break;
      case data_type::fp64:
        given = size_t(t.double_data_size());
        if (given == *n) copy_typed<double>(t.double_data(), &b->bytes);
        break;
      case data_type::int32:
        given = size_t(t.int32_data_size());
        if (given == *n) copy_typed<int32_t>(t.int32_data(), &b->bytes);
        break;
      case data_type::boolean:
        given = size_t(t.int32_data_size());
        if (given == *n) {
          size_t i = 0;
          for (int32_t v : t.int32_data()) b->bytes[i++] = v != 0;
        }
        break;
      case data_type::int64:
        given = size_t(t.int64_data_size());
        if (given == *n) copy_typed<int64_t>(t.int64_data(), &b->bytes);
        break;
      case data_type::bytes:
        break;
    }
    if (given == *n) return std::shared_ptr<const blob>(std::move(b));
  }
  return status::invalid_argument(what + ": its dims " + shape_text(b->shape) + " need " +
                                  std::to_string(*n) + " elements, its data holds " +
                                  (given == size_t(-1)
                                       ? std::to_string(t.raw_data().size()) + " bytes"
                                       : std::to_string(given) + " elements"));
}

result<graph_io> read_io(const onnx::ValueInfoProto& v, bool is_input) {
  const std::string what = std::string(is_input ? "input" : "output") + " '" + v.name() + "'";
  if (!v.type().has_tensor_type())
    return status::invalid_argument(what +
                                    " is not a tensor (sequences, maps and optionals are "
                                    "not supported)");
  const auto& tt = v.type().tensor_type();
  auto type = type_of(tt.elem_type());
  if (!type)
    return status::invalid_argument(what + " is " + onnx_type_name(tt.elem_type()) +
                                    ": Shoal takes FLOAT, DOUBLE, INT32, INT64 and BOOL tensors");
  graph_io io;
  io.spec.name = v.name();
  io.spec.type = *type;
  if (!tt.has_shape()) {
    if (is_input)
      return status::invalid_argument(what +
                                      " declares no shape: Shoal needs the rank of every "
                                      "input (export with input shapes)");
    return io;  // the plan gives it
  }
  for (const auto& d : tt.shape().dim()) {
    if (d.has_dim_value() && d.dim_value() >= 0) {
      io.spec.shape.push_back(d.dim_value());
      io.dim_names.emplace_back();
    } else {
      io.spec.shape.push_back(-1);
      io.dim_names.push_back(d.has_dim_param() ? d.dim_param() : std::string());
    }
  }
  return io;
}

result<attribute> read_attribute(const onnx::AttributeProto& a, const std::string& what) {
  attribute r;
  switch (a.type()) {
    case onnx::AttributeProto_AttributeType_FLOAT:
      r.k = attribute::kind::f;
      r.f = a.f();
      break;
    case onnx::AttributeProto_AttributeType_INT:
      r.k = attribute::kind::i;
      r.i = a.i();
      break;
    case onnx::AttributeProto_AttributeType_STRING:
      r.k = attribute::kind::s;
      r.s = a.s();
      break;
    case onnx::AttributeProto_AttributeType_FLOATS:
      r.k = attribute::kind::floats;
      r.floats.assign(a.floats().begin(), a.floats().end());
      break;
    case onnx::AttributeProto_AttributeType_INTS:
      r.k = attribute::kind::ints;
      r.ints.assign(a.ints().begin(), a.ints().end());
      break;
    case onnx::AttributeProto_AttributeType_TENSOR: {
      auto t = read_tensor(a.t(), what + " attribute '" + a.name() + "'");
      if (!t) return t.error();
      r.k = attribute::kind::t;
      r.t = *t;
      break;
    }
    default:
      r.k = attribute::kind::other;
      break;
  }
  return r;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

}  // namespace

std::string bytes_text(double bytes) {
  static const char* units[] = {"B", "KB", "MB", "GB", "TB", "PB", "EB"};
  int u = 0;
  while (bytes >= 1024 && u < 6) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

const std::vector<std::string>& supported_ops() {
  static const std::vector<std::string> all = [] {
    std::vector<std::string> v;
    for (const auto& [name, fn] : math_ops()) v.push_back(name);
    for (const auto& [name, fn] : shape_ops()) v.push_back(name);
    for (const auto& [name, fn] : window_ops()) v.push_back(name);
    std::sort(v.begin(), v.end());
    return v;
  }();
  return all;
}

prepare_fn find_op(const std::string& op_type) {
  auto m = math_ops().find(op_type);
  if (m != math_ops().end()) return m->second;
  auto s = shape_ops().find(op_type);
  if (s != shape_ops().end()) return s->second;
  auto w = window_ops().find(op_type);
  return w != window_ops().end() ? w->second : nullptr;
}

result<std::shared_ptr<const graph>> read_graph(std::string_view bytes) {
  onnx::ModelProto m;
  if (bytes.size() > size_t(INT32_MAX))
    return status::invalid_argument("ONNX model of " + bytes_text(double(bytes.size())) +
                                    " is over protobuf's 2 GB limit");
  if (!m.ParseFromArray(bytes.data(), int(bytes.size())))
    return status::invalid_argument(
        "not an ONNX model: the bytes do not parse as an ONNX ModelProto (truncated or corrupt)");
  if (!m.has_ir_version() || m.ir_version() <= 0)
    return status::invalid_argument("not an ONNX model: no ir_version");
  if (!m.has_graph()) return status::invalid_argument("not an ONNX model: it has no graph");
  auto g = std::make_shared<graph>();
  bool have_opset = false;
  for (const auto& o : m.opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") {
      have_opset = true;
      g->opset = int(std::min<int64_t>(o.version(), 1 << 20));
    }
  }
  if (!have_opset)
    return status::invalid_argument("the ONNX model imports no opset of the default domain");
  if (g->opset < k_min_opset || g->opset > k_max_opset)
    return status::invalid_argument(
        "ONNX opset " + std::to_string(g->opset) + " is not supported: Shoal runs opsets " +
        std::to_string(k_min_opset) + " to " + std::to_string(k_max_opset) +
        " (export with opset_version between them)");
  for (const auto& p : m.metadata_props()) {
    if (g->metadata.count(p.key()))
      return status::invalid_argument("metadata_props key '" + p.key() + "' is given twice");
    g->metadata[p.key()] = p.value();
  }

  const auto& gp = m.graph();
  if (gp.sparse_initializer_size() > 0)
    return status::invalid_argument("sparse initializers are not supported");
  std::unordered_map<std::string, int> ids;
  auto define = [&](const std::string& name) -> int {
    int id = int(g->value_names.size());
    g->value_names.push_back(name);
    g->constants.emplace_back();
    ids.emplace(name, id);
    return id;
  };

  for (const auto& t : gp.initializer()) {
    if (ids.count(t.name()))
      return status::invalid_argument("initializer '" + t.name() + "' is given twice");
    auto b = read_tensor(t, "initializer '" + t.name() + "'");
    if (!b) return b.error();
    int id = define(t.name());
    g->weight_bytes += (*b)->bytes.size();
    g->constants[size_t(id)] = *b;
  }
  for (const auto& v : gp.input()) {
    if (ids.count(v.name())) continue;  // an initializer listed as an input: not an input
    auto io = read_io(v, true);
    if (!io) return io.error();
    io->id = define(v.name());
    g->inputs.push_back(std::move(*io));
  }

  // Nodes: domains, then every unsupported operator at once.
  std::set<std::string> unsupported;
  for (int i = 0; i < gp.node_size(); ++i) {
    const auto& np = gp.node(i);
    const std::string name = np.name().empty() ? "#" + std::to_string(i) : np.name();
    if (!np.domain().empty() && np.domain() != "ai.onnx")
      return status::invalid_argument("node '" + name + "' is operator '" + np.op_type() +
                                      "' of domain '" + np.domain() +
                                      "': Shoal runs only the default ONNX domain");
    if (!find_op(np.op_type())) unsupported.insert(np.op_type());
  }
  if (!unsupported.empty())
    return status::invalid_argument(
        "unsupported ONNX operators: " + join({unsupported.begin(), unsupported.end()}) +
        " (Shoal runs: " + join(supported_ops()) + ")");

  std::vector<node> nodes(size_t(gp.node_size()));
  std::vector<int> producer;  // by value id: node index, -1 for inputs and initializers
  producer.assign(g->value_names.size(), -1);
  for (int i = 0; i < gp.node_size(); ++i) {
    const auto& np = gp.node(i);
    node& n = nodes[size_t(i)];
    n.name = np.name().empty() ? "#" + std::to_string(i) : np.name();
    n.op_type = np.op_type();
    for (const auto& a : np.attribute()) {
      auto r = read_attribute(a, "node '" + n.name + "' (" + n.op_type + ")");
      if (!r) return r.error();
      n.attrs[a.name()] = std::move(*r);
    }
    for (const auto& o : np.output()) {
      if (o.empty()) {
        n.out.push_back(-1);
        continue;
      }
      if (ids.count(o))
        return status::invalid_argument("node '" + n.name + "' (" + n.op_type + ") writes '" + o +
                                        "', which another node, input or initializer also "
                                        "defines");
      n.out.push_back(define(o));
      producer.push_back(i);
    }
  }
  for (int i = 0; i < gp.node_size(); ++i) {
    node& n = nodes[size_t(i)];
    for (const auto& in : gp.node(i).input()) {
      if (in.empty()) {
        n.in.push_back(-1);
        continue;
      }
      auto it = ids.find(in);
      if (it == ids.end())
        return status::invalid_argument("node '" + n.name + "' (" + n.op_type + ") reads '" + in +
                                        "', which no node, input or initializer produces");
      n.in.push_back(it->second);
    }
  }
  for (const auto& v : gp.output()) {
    auto io = read_io(v, false);
    if (!io) return io.error();
    auto it = ids.find(v.name());
    if (it == ids.end())
      return status::invalid_argument("graph output '" + v.name() +
                                      "' is produced by no node, input or initializer");
    io->id = it->second;
    g->outputs.push_back(std::move(*io));
  }
  if (g->outputs.empty()) return status::invalid_argument("the graph has no outputs");

  // Kahn's topological order over all nodes (a cycle anywhere is refused).
  const size_t count = nodes.size();
  std::vector<int> waiting(count, 0);
  std::vector<std::vector<int>> readers(count);
  for (size_t i = 0; i < count; ++i) {
    for (int in : nodes[i].in) {
      if (in < 0 || producer[size_t(in)] < 0) continue;
      ++waiting[i];
      readers[size_t(producer[size_t(in)])].push_back(int(i));
    }
  }
  std::vector<int> order, ready;
  for (size_t i = 0; i < count; ++i)
    if (waiting[i] == 0) ready.push_back(int(i));
  std::reverse(ready.begin(), ready.end());
  while (!ready.empty()) {
    int i = ready.back();
    ready.pop_back();
    order.push_back(i);
    for (int r : readers[size_t(i)])
      if (--waiting[size_t(r)] == 0) ready.push_back(r);
  }
  if (order.size() != count) {
    // Walk back from a node left waiting through waiting producers: after `count` steps the walk
    // is on a cycle.
    int at = 0;
    while (waiting[size_t(at)] == 0) ++at;
    for (size_t s = 0; s < count; ++s) {
      for (int in : nodes[size_t(at)].in) {
        if (in < 0 || producer[size_t(in)] < 0) continue;
        if (waiting[size_t(producer[size_t(in)])] > 0) {
          at = producer[size_t(in)];
          break;
        }
      }
    }
    return status::invalid_argument("the graph has a cycle through node '" +
                                    nodes[size_t(at)].name + "'");
  }

  // Keep only the nodes the outputs need, in topological order.
  std::vector<char> needed(g->value_names.size(), 0), live(count, 0);
  for (const auto& o : g->outputs) needed[size_t(o.id)] = 1;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    const node& n = nodes[size_t(*it)];
    bool use = false;
    for (int o : n.out) use = use || (o >= 0 && needed[size_t(o)]);
    if (!use) continue;
    live[size_t(*it)] = 1;
    for (int in : n.in)
      if (in >= 0) needed[size_t(in)] = 1;
  }
  for (int i : order)
    if (live[size_t(i)]) g->nodes.push_back(std::move(nodes[size_t(i)]));
  return std::shared_ptr<const graph>(std::move(g));
}

const attribute* node::attr(const std::string& name) const {
  auto it = attrs.find(name);
  return it == attrs.end() ? nullptr : &it->second;
}

int64_t node::attr_i(const std::string& name, int64_t fallback) const {
  const attribute* a = attr(name);
  return a && a->k == attribute::kind::i ? a->i : fallback;
}

float node::attr_f(const std::string& name, float fallback) const {
  const attribute* a = attr(name);
  return a && a->k == attribute::kind::f ? a->f : fallback;
}

std::string node::attr_s(const std::string& name, const std::string& fallback) const {
  const attribute* a = attr(name);
  return a && a->k == attribute::kind::s ? a->s : fallback;
}

}  // namespace shoal::onnx_exec
