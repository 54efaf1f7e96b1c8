#include "shoal/serving/model.hpp"

#include "shoal/serving/fasttext_model.hpp"

namespace shoal {

std::vector<std::vector<prediction>> model::predict_batch(const std::vector<std::string>& texts,
                                                          size_t k) const {
  std::vector<std::vector<prediction>> out;
  out.reserve(texts.size());
  for (const auto& t : texts) out.push_back(predict(t, k));
  return out;
}

result<std::shared_ptr<const model>> load_model(std::string_view bytes, load_use use) {
  if (bytes.empty()) return status::invalid_argument("model file is empty");
  if (looks_like_fasttext(bytes)) return load_fasttext(bytes, use == load_use::serve);
  return status::invalid_argument(
      "unknown model format: expected a fastText supervised model (.bin)");
}

}  // namespace shoal
