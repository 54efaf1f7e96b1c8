// placeholder: being written
#include "shoal/fasttext_model.hpp"
namespace shoal {
bool looks_like_fasttext(std::string_view) { return false; }
result<std::shared_ptr<const model>> load_fasttext(std::string_view) { return status::internal("fastText loader not built yet"); }
}
