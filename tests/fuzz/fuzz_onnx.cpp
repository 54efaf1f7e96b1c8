// fuzz_onnx: the ONNX loader and planner (onnx_model.hpp) on pushed bytes. A model that loads
// runs once: a text model answers a text; a tensor model gets zeros at batch 1 (every dynamic
// dim 1) for each input, when the inputs are small.
#include <google/protobuf/stubs/logging.h>

#include <vector>

#include "fuzz_target.hpp"
#include "shoal/serving/onnx_model.hpp"
#include "shoal/serving/tensor.hpp"

namespace {

// protobuf logs each string field of invalid UTF-8 it refuses: millions of lines in a campaign.
[[maybe_unused]] const bool protobuf_quiet = (google::protobuf::SetLogHandler(nullptr), true);

constexpr size_t max_run_elements = size_t(1) << 20;  // per input; larger inputs are not run

void run_zeros(const shoal::model& m) {
  using namespace shoal;
  std::vector<tensor> inputs;
  for (const tensor_spec& spec : m.inputs()) {
    tensor t;
    t.name = spec.name;
    t.type = spec.type;
    size_t n = 1;
    for (int64_t d : spec.shape) {
      const int64_t dim = d < 0 ? 1 : d;
      t.shape.push_back(dim);
      if (dim > 0 && n > max_run_elements / static_cast<size_t>(dim)) return;
      n *= static_cast<size_t>(dim);
    }
    if (n > max_run_elements) return;
    if (t.type == data_type::bytes) {
      t.strings.assign(n, "");
    } else {
      t.data.assign(n * element_size(t.type), '\0');
    }
    inputs.push_back(std::move(t));
  }
  auto out = m.run(inputs, {});
  if (out) {
    for (const tensor& t : *out) FUZZ_CHECK(t.check_size().is_ok());
  }
}

}  // namespace

extern "C" int SHOAL_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  using namespace shoal;
  const std::string_view bytes = fuzz::view(data, size);
  (void)looks_like_onnx(bytes);
  auto m = load_onnx(bytes);
  if (!m) return 0;
  (void)(*m)->memory_bytes();
  (void)signature_json(**m);
  if ((*m)->takes_texts()) {
    auto p = (*m)->predict("hello world", 2);
    FUZZ_CHECK(p.size() <= (*m)->label_count());
  } else {
    run_zeros(**m);
  }
  return 0;
}
