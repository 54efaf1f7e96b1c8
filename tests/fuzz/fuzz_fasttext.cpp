// fuzz_fasttext: the fastText loader (fasttext_model.hpp) on pushed bytes, as the node checks a
// push (load_use::check: weights on the heap). A model that loads answers a text and a batch.
// Run with -rss_limit_mb and -malloc_limit_mb: a header claiming huge dimensions must be refused
// before anything that size is allocated.
#include <vector>

#include "fuzz_target.hpp"
#include "shoal/serving/fasttext_model.hpp"

extern "C" int SHOAL_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  using namespace shoal;
  const std::string_view bytes = fuzz::view(data, size);
  (void)looks_like_fasttext(bytes);
  auto m = load_fasttext(bytes, false);
  if (!m) return 0;
  const model& ft = **m;
  (void)ft.memory_bytes();
  auto one = ft.predict("hello world, how are you?", 3);
  FUZZ_CHECK(one.size() <= ft.label_count());
  auto batch = ft.predict_batch({"", "a b c d e f", "\xc3\xa9t\xc3\xa9 \xe2\x82\xac"}, 2);
  FUZZ_CHECK(batch.size() == 3);
  return 0;
}
