// fastText supervised .bin / quantized .ftz loader and predictor (see fasttext_model.hpp). Over
// 500 lines: the format's reader, the quantized matrices and the predictor must agree with
// fastText byte for byte, and they are kept side by side with the fastText functions they follow.
//
// Parity with `fasttext predict-prob` depends on small details (which bytes are whitespace, a
// sign-extended hash, float versus double at each step, the heap fastText keeps its top k in), so
// each piece names the fastText 0.9.2 function it must agree with: Args::load, Dictionary::load /
// readWord / getLine / addSubwords / computeSubwords / addWordNgrams / pushHash, DenseMatrix::load
// / dotRow, QuantMatrix::load / addRowToVector / dotRow, ProductQuantizer::load / get_centroids /
// addcode / mulcode, FastText::loadModel, Model::computeHidden, Loss::findKBest / sigmoid,
// SoftmaxLoss::computeOutput, HierarchicalSoftmaxLoss::buildTree / dfs.
#include "shoal/serving/fasttext_model.hpp"

#include <cblas.h>
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <utility>
#include <vector>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "fastText files are little-endian and this reader copies them as they are");

namespace shoal {
namespace {

constexpr int32_t k_magic = 793712314;
constexpr int32_t k_version = 12;
constexpr int32_t k_old_version = 11;  // read as fastText does: supervised models drop char n-grams
constexpr std::string_view k_eos = "</s>";
// Dictionary::getType compares against args.label, which a .bin does not store, so a loaded model
// always uses fastText's default prefix to decide whether an unknown token is a label.
constexpr std::string_view k_label_prefix = "__label__";

// fastText does not bound these; we do, so that a fuzzed header cannot make one predict() loop for
// minutes. Real models use single digits.
constexpr int32_t k_max_ngram = 256;

// Output layers of at least this many weights (labels x dim) go through OpenBLAS's sgemv. Smaller
// ones use our own loop, which sums in fastText's order (DenseMatrix::dotRow) and so gives
// bit-identical scores; below this size OpenBLAS saves well under 0.1 us per call.
constexpr int64_t k_blas_min_weights = 1024;
// OpenBLAS hands a gemv of 9216 weights or more (2304 x GEMM_MULTITHREAD_THRESHOLD) to its thread
// pool. For one text that hand-off costs more than it saves (300 labels x dim 32: 1.8 us threaded,
// 0.5 us not, on 2 cores), and a server already predicts on many threads, so each call stays below.
constexpr int64_t k_blas_max_weights_per_call = 8192;
// The same for a batch's sgemm (texts x labels x dim): OpenBLAS runs one of at most 262144
// (SMP_THRESHOLD_MIN 65536 x GEMM_MULTITHREAD_THRESHOLD 4) multiply-adds on the calling thread.
constexpr int64_t k_blas_max_gemm_work = 262144;
// A batch predicts at most this many texts' output layers in one sgemm (the rest in the next).
constexpr size_t k_gemm_max_texts = 64;

enum class loss_kind : int32_t { hs = 1, ns = 2, softmax = 3, ova = 4 };

// ---- fastText's arithmetic --------------------------------------------------------------------

constexpr uint32_t k_fnv_basis = 2166136261u;

// Dictionary::hash: FNV-1a, each byte sign-extended from (signed) char before the xor.
inline uint32_t fnv_step(uint32_t h, char c) {
  return (h ^ static_cast<uint32_t>(static_cast<int8_t>(c))) * 16777619u;
}

inline uint32_t fnv_hash(std::string_view s) {
  uint32_t h = k_fnv_basis;
  for (char c : s) h = fnv_step(h, c);
  return h;
}

// Dictionary::readWord's whitespace.
inline bool is_fasttext_space(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f' || c == '\0';
}

inline bool is_utf8_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// loss.cc std_log: the float argument widened to double, the result narrowed back.
inline float std_log(float x) {
  return static_cast<float>(std::log(static_cast<double>(x) + 1e-5));
}

// Loss::Loss / Loss::sigmoid: a 513-entry table over [-8, 8], indexed by truncation.
struct sigmoid_table {
  float value[513];
  sigmoid_table() {
    for (int64_t i = 0; i <= 512; ++i) {
      float x = static_cast<float>(i * 2 * 8) / 512 - 8;
      value[i] = static_cast<float>(1.0 / (1.0 + static_cast<double>(std::exp(-x))));
    }
  }
};

const sigmoid_table& sigmoid_values() {
  static const sigmoid_table table;
  return table;
}

inline float table_index(float x) { return (x + 8.0f) * 512.0f / 8.0f / 2.0f; }

inline float table_sigmoid(const sigmoid_table& t, float x) {
  if (x < -8.0f) return 0.0f;
  if (x > 8.0f) return 1.0f;
  if (std::isnan(x)) return 0.0f;  // fastText throws on NaN (dotRow); we must not index with it
  return t.value[static_cast<int64_t>(table_index(x))];
}

// True when OpenBLAS's summation order could move `x` to another table cell than fastText's
// sequential sum would: then that one logit is recomputed in fastText's order.
inline bool near_table_edge(float x) {
  if (!(x >= -8.5f && x <= 8.5f)) return false;
  float t = table_index(x);
  float frac = t - std::floor(t);
  return frac < 0.02f || frac > 0.98f;
}

// DenseMatrix::dotRow: one float accumulator per row, in column order. Four rows at a time keep
// four independent chains in flight; each row's sum is still fastText's.
void exact_dots(const float* w, int64_t rows, int64_t dim, const float* h, float* out) {
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const float* w0 = w + r * dim;
    const float* w1 = w0 + dim;
    const float* w2 = w1 + dim;
    const float* w3 = w2 + dim;
    float d0 = 0.0f, d1 = 0.0f, d2 = 0.0f, d3 = 0.0f;
    for (int64_t j = 0; j < dim; ++j) {
      float x = h[j];
      d0 += w0[j] * x;
      d1 += w1[j] * x;
      d2 += w2[j] * x;
      d3 += w3[j] * x;
    }
    out[r] = d0;
    out[r + 1] = d1;
    out[r + 2] = d2;
    out[r + 3] = d3;
  }
  for (; r < rows; ++r) {
    const float* row = w + r * dim;
    float d = 0.0f;
    for (int64_t j = 0; j < dim; ++j) d += row[j] * h[j];
    out[r] = d;
  }
}

// Four floats (GCC/Clang vector extension: SSE2 on x86-64), moved in and out with memcpy so that
// alignment and aliasing rules hold.
typedef float float4 __attribute__((vector_size(16)));

inline float4 load4(const float* p) {
  float4 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline void store4(float* p, float4 v) { std::memcpy(p, &v, sizeof(v)); }

typedef int64_t int64x2 __attribute__((vector_size(16)));

// acc[j] += row[j]: each element gets the same single addition as in fastText's loop, so doing four
// at a time changes nothing but the speed. (GCC -O2 leaves the plain loop scalar: the trip count is
// not known and acc may alias row.)
inline void add_row(float* __restrict acc, const float* __restrict row, size_t dim) {
  size_t j = 0;
  for (; j + 8 <= dim; j += 8) {
    store4(acc + j, load4(acc + j) + load4(row + j));
    store4(acc + j + 4, load4(acc + j + 4) + load4(row + j + 4));
  }
  for (; j < dim; ++j) acc[j] += row[j];
}

inline float exact_dot(const float* row, int64_t dim, const float* h) {
  float d = 0.0f;
  for (int64_t j = 0; j < dim; ++j) d += row[j] * h[j];
  return d;
}

// Dictionary::computeSubwords over `word` (already wrapped in '<' '>'): every n-gram of 1..maxn
// UTF-8 characters (continuation bytes never start one), except those shorter than minn and the
// single characters at either end. Calls push(hash) for each, in fastText's order.
template <class Push>
void for_each_char_ngram(std::string_view word, size_t minn, size_t maxn, Push&& push) {
  for (size_t i = 0; i < word.size(); ++i) {
    if (is_utf8_continuation(word[i])) continue;
    uint32_t h = k_fnv_basis;
    for (size_t j = i, n = 1; j < word.size() && n <= maxn; ++n) {
      h = fnv_step(h, word[j++]);
      while (j < word.size() && is_utf8_continuation(word[j])) h = fnv_step(h, word[j++]);
      if (n >= minn && !(n == 1 && (i == 0 || j == word.size()))) push(h);
    }
  }
}

// How many ids for_each_char_ngram pushes for "<" + word + ">", without hashing it (to bound the
// allocation before making it).
uint64_t char_ngram_count(std::string_view word, uint64_t minn, uint64_t maxn) {
  uint64_t chars = 2;
  for (char c : word) chars += is_utf8_continuation(c) ? 0 : 1;
  uint64_t total = 0;
  const uint64_t lo = std::max<uint64_t>(minn, 1);
  for (uint64_t p = 0; p < chars; ++p) {
    uint64_t hi = std::min(maxn, chars - p);
    if (hi < lo) continue;
    total += hi - lo + 1;
    if (lo == 1 && (p == 0 || p == chars - 1)) total -= 1;
  }
  return total;
}

// loss.cc comparePairs: the heap's front is the smallest score.
inline bool compare_pairs(const std::pair<float, int32_t>& l, const std::pair<float, int32_t>& r) {
  return l.first > r.first;
}

// ---- reading ----------------------------------------------------------------------------------

std::string truncated(std::string_view what, uint64_t need, size_t left) {
  return "truncated fastText model: " + std::string(what) + " needs " + std::to_string(need) +
         (need == 1 ? " byte, " : " bytes, ") + std::to_string(left) + " left";
}

class byte_reader {
 public:
  explicit byte_reader(std::string_view bytes) : bytes_(bytes) {}

  size_t left() const { return bytes_.size() - pos_; }

  template <class T>
  status read(T& v, const char* what) {
    if (left() < sizeof(T)) return status::invalid_argument(truncated(what, sizeof(T), left()));
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return status::ok();
  }

  /// Reads a NUL-terminated string; false (nothing consumed) when there is no NUL.
  bool read_cstring(std::string_view& s) {
    const char* begin = bytes_.data() + pos_;
    const void* nul = std::memchr(begin, 0, left());
    if (nul == nullptr) return false;
    size_t len = static_cast<size_t>(static_cast<const char*>(nul) - begin);
    s = std::string_view(begin, len);
    pos_ += len + 1;
    return true;
  }

  /// @pre n <= left()
  const char* take(size_t n) {
    const char* p = bytes_.data() + pos_;
    pos_ += n;
    return p;
  }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

struct header {
  int32_t dim = 0, ws = 0, epoch = 0, min_count = 0, neg = 0, word_ngrams = 0, loss = 0, model = 0,
          bucket = 0, minn = 0, maxn = 0, lr_update_rate = 0;
  double t = 0;
};

status read_header(byte_reader& in, header& h) {
  SHOAL_RETURN_IF_ERROR(in.read(h.dim, "dim"));
  SHOAL_RETURN_IF_ERROR(in.read(h.ws, "ws"));
  SHOAL_RETURN_IF_ERROR(in.read(h.epoch, "epoch"));
  SHOAL_RETURN_IF_ERROR(in.read(h.min_count, "minCount"));
  SHOAL_RETURN_IF_ERROR(in.read(h.neg, "neg"));
  SHOAL_RETURN_IF_ERROR(in.read(h.word_ngrams, "wordNgrams"));
  SHOAL_RETURN_IF_ERROR(in.read(h.loss, "loss"));
  SHOAL_RETURN_IF_ERROR(in.read(h.model, "model"));
  SHOAL_RETURN_IF_ERROR(in.read(h.bucket, "bucket"));
  SHOAL_RETURN_IF_ERROR(in.read(h.minn, "minn"));
  SHOAL_RETURN_IF_ERROR(in.read(h.maxn, "maxn"));
  SHOAL_RETURN_IF_ERROR(in.read(h.lr_update_rate, "lrUpdateRate"));
  SHOAL_RETURN_IF_ERROR(in.read(h.t, "t"));
  return status::ok();
}

status check_header(const header& h) {
  if (h.model != 3) {
    if (h.model == 1 || h.model == 2) {
      return status::invalid_argument(
          std::string("not a supervised fastText model: this is a ") +
          (h.model == 1 ? "cbow" : "skipgram") +
          " word-vector model, which has no labels to predict; train a classifier with "
          "`fasttext supervised`");
    }
    return status::invalid_argument("corrupt fastText model: unknown model type " +
                                    std::to_string(h.model) +
                                    " (expected 1=cbow, 2=skipgram, 3=supervised)");
  }
  if (h.loss < 1 || h.loss > 4) {
    return status::invalid_argument("corrupt fastText model: unknown loss " +
                                    std::to_string(h.loss) +
                                    " (expected 1=hs, 2=ns, 3=softmax, 4=ova)");
  }
  if (h.dim <= 0) {
    return status::invalid_argument("corrupt fastText model: dim is " + std::to_string(h.dim) +
                                    ", must be positive");
  }
  if (h.bucket < 0) {
    return status::invalid_argument("corrupt fastText model: bucket is " +
                                    std::to_string(h.bucket) + ", must not be negative");
  }
  struct field {
    const char* name;
    int32_t value;
  };
  for (field f :
       {field{"minn", h.minn}, field{"maxn", h.maxn}, field{"wordNgrams", h.word_ngrams}}) {
    if (f.value < 0 || f.value > k_max_ngram) {
      return status::invalid_argument("corrupt fastText model: " + std::string(f.name) + " is " +
                                      std::to_string(f.value) + " (this reader accepts 0.." +
                                      std::to_string(k_max_ngram) + ")");
    }
  }
  if (h.bucket == 0 && (h.maxn > 0 || h.word_ngrams > 1)) {
    return status::invalid_argument(
        "corrupt fastText model: bucket is 0 but maxn=" + std::to_string(h.maxn) +
        " and wordNgrams=" + std::to_string(h.word_ngrams) + " need hashed n-gram rows");
  }
  return status::ok();
}

// Training never writes a NaN or an infinity (fastText aborts first), so one in `values` (rows of
// `cols` floats, called `what`) is damage. The exponent test runs branch-free over all values; only
// a hit looks for where.
template <class Floats>
status check_finite(const Floats& values, size_t cols, const std::string& what) {
  uint32_t bad = 0;
  for (float f : values) {
    uint32_t bits = 0;
    std::memcpy(&bits, &f, sizeof(bits));
    bad |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  if (bad != 0) {
    for (size_t i = 0; i < values.size(); ++i) {
      if (!std::isfinite(values[i])) {
        return status::invalid_argument(
            "corrupt fastText model: " + what + " holds a non-finite value at row " +
            std::to_string(i / cols) + ", column " + std::to_string(i % cols));
      }
    }
  }
  return status::ok();
}

// A model's dense weights live in mappings of their own (64 KiB and up), returned whole to the
// system when the model is unloaded: the node keeps request-sized blocks on the heap (its mmap
// threshold is 4 MiB, see actors/node.cpp), and models loaded and evicted by the thousand would
// otherwise fragment it and hold resident memory above the model memory budget.
template <class T>
struct mapped_allocator {
  using value_type = T;
  static constexpr size_t min_mapped = 64 << 10;
  bool map = true;  // false: always the heap (a model checked and dropped at once)
  mapped_allocator() = default;
  explicit mapped_allocator(bool map_weights) : map(map_weights) {}
  template <class U>
  mapped_allocator(const mapped_allocator<U>& o) : map(o.map) {}
  bool mapped(size_t bytes) const { return map && bytes >= min_mapped; }
  T* allocate(size_t n) {
    if (n > SIZE_MAX / sizeof(T)) throw std::bad_alloc();
    const size_t bytes = n * sizeof(T);
    if (!mapped(bytes)) {
      void* p = std::malloc(bytes);
      if (p == nullptr) throw std::bad_alloc();
      return static_cast<T*>(p);
    }
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) {
    const size_t bytes = n * sizeof(T);
    if (!mapped(bytes)) {
      std::free(p);
    } else {
      ::munmap(p, bytes);
    }
  }
  template <class U>
  bool operator==(const mapped_allocator<U>& o) const { return map == o.map; }
  template <class U>
  bool operator!=(const mapped_allocator<U>& o) const { return map != o.map; }
};
using weights = std::vector<float, mapped_allocator<float>>;

// Sets `bytes` to the size of an m x n float matrix; false when that does not fit in 64 bits.
bool matrix_bytes(uint64_t m, uint64_t n, uint64_t& bytes) {
  uint64_t cells = 0;
  return !__builtin_mul_overflow(m, n, &cells) && !__builtin_mul_overflow(cells, 4u, &bytes);
}

// Reads a DenseMatrix (int64 m, int64 n, m*n floats) that must be rows x cols, into `out`.
status read_matrix(byte_reader& in, const char* name, int64_t rows, int64_t cols,
                   weights& out) {
  int64_t m = 0, n = 0;
  SHOAL_RETURN_IF_ERROR(in.read(m, (std::string(name) + " matrix rows").c_str()));
  SHOAL_RETURN_IF_ERROR(in.read(n, (std::string(name) + " matrix columns").c_str()));
  if (m != rows || n != cols) {
    return status::invalid_argument("corrupt fastText model: " + std::string(name) + " matrix is " +
                                    std::to_string(m) + " x " + std::to_string(n) +
                                    ", the header and dictionary say " + std::to_string(rows) +
                                    " x " + std::to_string(cols));
  }
  uint64_t bytes = 0;
  if (!matrix_bytes(static_cast<uint64_t>(m), static_cast<uint64_t>(n), bytes)) {
    return status::invalid_argument("truncated fastText model: " + std::string(name) +
                                    " matrix of " + std::to_string(m) + " x " + std::to_string(n) +
                                    " floats cannot fit in the " + std::to_string(in.left()) +
                                    " bytes left");
  }
  if (bytes > in.left()) {
    return status::invalid_argument(truncated(std::string(name) + " matrix", bytes, in.left()));
  }
  out.resize(static_cast<size_t>(m) * static_cast<size_t>(n));
  std::memcpy(out.data(), in.take(bytes), bytes);
  return check_finite(out, static_cast<size_t>(n), std::string(name) + " matrix");
}

status read_flag(byte_reader& in, const char* what, bool& flag) {
  uint8_t b = 0;
  SHOAL_RETURN_IF_ERROR(in.read(b, what));
  if (b > 1) {
    return status::invalid_argument("corrupt fastText model: " + std::string(what) + " is " +
                                    std::to_string(b) + ", expected 0 or 1");
  }
  flag = b == 1;
  return status::ok();
}

// ---- quantized matrices (.ftz) ----------------------------------------------------------------

constexpr int32_t k_ksub = 256;  // ProductQuantizer::ksub_: one byte per code

// ProductQuantizer as fastText loads it: a row of `dim` columns is cut into `nsubq` sub-vectors of
// `dsub` columns, the last of `lastdsub` (dim - (nsubq - 1) * dsub); each is coded by one byte that
// picks one of 256 centroids of that sub-vector.
struct product_quantizer {
  int32_t dim = 0, nsubq = 0, dsub = 0, lastdsub = 0;
  // dim x 256 floats. Sub-quantizer m < nsubq - 1 keeps centroid i at (m * 256 + i) * dsub; the
  // last one keeps it at m * 256 * dsub + i * lastdsub (ProductQuantizer::get_centroids).
  std::vector<float> centroids;

  const float* centroid(int32_t m, uint8_t i) const {
    const size_t base = static_cast<size_t>(m) * k_ksub * static_cast<size_t>(dsub);
    return centroids.data() + base +
           static_cast<size_t>(i) * static_cast<size_t>(m == nsubq - 1 ? lastdsub : dsub);
  }
};

// QuantMatrix: row r is the concatenation of its nsubq centroids, times norm(r) when qnorm.
struct quant_matrix {
  int64_t rows = 0;
  bool qnorm = false;
  std::vector<uint8_t> codes;  // rows x nsubq
  product_quantizer pq;
  std::vector<uint8_t> norm_codes;  // rows, when qnorm
  product_quantizer npq;            // dim 1, when qnorm: centroid i is the norm with code i

  // QuantMatrix::addRowToVector / dotRow: npq_->get_centroids(0, norm_codes_[i])[0], else 1.
  float norm(size_t row) const { return qnorm ? npq.centroids[norm_codes[row]] : 1.0f; }

  size_t memory_bytes() const {
    return codes.capacity() + norm_codes.capacity() +
           (pq.centroids.capacity() + npq.centroids.capacity()) * sizeof(float);
  }
};

// ProductQuantizer::load, for a quantizer of `expect_dim` columns (`name` says which).
status read_product_quantizer(byte_reader& in, const std::string& name, int32_t expect_dim,
                              product_quantizer& pq) {
  SHOAL_RETURN_IF_ERROR(in.read(pq.dim, (name + " dim").c_str()));
  SHOAL_RETURN_IF_ERROR(in.read(pq.nsubq, (name + " nsubq").c_str()));
  SHOAL_RETURN_IF_ERROR(in.read(pq.dsub, (name + " dsub").c_str()));
  SHOAL_RETURN_IF_ERROR(in.read(pq.lastdsub, (name + " lastdsub").c_str()));
  if (pq.dim != expect_dim) {
    return status::invalid_argument("corrupt fastText model: " + name + " has dim " +
                                    std::to_string(pq.dim) + ", expected " +
                                    std::to_string(expect_dim));
  }
  // ProductQuantizer(dim, dsub): nsubq = ceil(dim / dsub), lastdsub = dim % dsub or else dsub.
  if (pq.dsub <= 0) {
    return status::invalid_argument("corrupt fastText model: " + name + " has dsub " +
                                    std::to_string(pq.dsub) + ", must be positive");
  }
  const int32_t rest = pq.dim % pq.dsub;
  const int32_t nsubq = pq.dim / pq.dsub + (rest == 0 ? 0 : 1);
  const int32_t lastdsub = rest == 0 ? pq.dsub : rest;
  if (pq.nsubq != nsubq || pq.lastdsub != lastdsub) {
    return status::invalid_argument(
        "corrupt fastText model: " + name + " has nsubq " + std::to_string(pq.nsubq) +
        " and lastdsub " + std::to_string(pq.lastdsub) + ", but dim " + std::to_string(pq.dim) +
        " cut into sub-vectors of dsub " + std::to_string(pq.dsub) + " gives " +
        std::to_string(nsubq) + " and " + std::to_string(lastdsub));
  }
  const uint64_t count = static_cast<uint64_t>(pq.dim) * k_ksub;
  if (count * sizeof(float) > in.left()) {
    return status::invalid_argument(
        truncated(name + " centroids (" + std::to_string(count) + " floats)", count * sizeof(float),
                  in.left()));
  }
  pq.centroids.resize(static_cast<size_t>(count));
  std::memcpy(pq.centroids.data(), in.take(count * sizeof(float)), count * sizeof(float));
  return check_finite(pq.centroids, static_cast<size_t>(pq.dim), name + " centroids");
}

// QuantMatrix::load (qnorm, m, n, codesize, codes, pq, then norm codes and npq when qnorm) for a
// matrix that must be rows x cols.
status read_quant_matrix(byte_reader& in, const char* name, int64_t rows, int64_t cols,
                         quant_matrix& q) {
  const std::string what = std::string("quantized ") + name + " matrix";
  SHOAL_RETURN_IF_ERROR(read_flag(in, (what + " qnorm flag").c_str(), q.qnorm));
  int64_t m = 0, n = 0;
  int32_t codesize = 0;
  SHOAL_RETURN_IF_ERROR(in.read(m, (what + " rows").c_str()));
  SHOAL_RETURN_IF_ERROR(in.read(n, (what + " columns").c_str()));
  if (m != rows || n != cols) {
    return status::invalid_argument("corrupt fastText model: " + what + " is " + std::to_string(m) +
                                    " x " + std::to_string(n) + ", the header and dictionary say " +
                                    std::to_string(rows) + " x " + std::to_string(cols));
  }
  SHOAL_RETURN_IF_ERROR(in.read(codesize, (what + " codesize").c_str()));
  if (codesize < 0) {
    return status::invalid_argument("corrupt fastText model: " + what + " codesize is " +
                                    std::to_string(codesize));
  }
  if (static_cast<uint64_t>(codesize) > in.left()) {
    return status::invalid_argument(
        truncated(what + " codes", static_cast<uint64_t>(codesize), in.left()));
  }
  q.rows = m;
  const auto* codes = reinterpret_cast<const uint8_t*>(in.take(static_cast<size_t>(codesize)));
  q.codes.assign(codes, codes + codesize);
  SHOAL_RETURN_IF_ERROR(
      read_product_quantizer(in, what + " quantizer", static_cast<int32_t>(cols), q.pq));
  // QuantMatrix(mat, dsub, qnorm): codesize = m * nsubq, one code per row and sub-vector
  if (static_cast<int64_t>(codesize) != m * q.pq.nsubq) {
    return status::invalid_argument("corrupt fastText model: " + what + " has " +
                                    std::to_string(codesize) + " codes, but " + std::to_string(m) +
                                    " rows of " + std::to_string(q.pq.nsubq) +
                                    " sub-vectors need " + std::to_string(m * q.pq.nsubq));
  }
  if (q.qnorm) {
    if (static_cast<uint64_t>(m) > in.left()) {
      return status::invalid_argument(
          truncated(what + " norm codes", static_cast<uint64_t>(m), in.left()));
    }
    const auto* norm_codes = reinterpret_cast<const uint8_t*>(in.take(static_cast<size_t>(m)));
    q.norm_codes.assign(norm_codes, norm_codes + m);
    SHOAL_RETURN_IF_ERROR(read_product_quantizer(in, what + " norm quantizer", 1, q.npq));
  }
  return status::ok();
}

// ProductQuantizer::addcode: x[m * dsub + j] += alpha * c[j] for each sub-vector m and its
// centroid c. Without qnorm fastText's alpha is 1, and 1 * c is exactly c: Scaled = false skips it.
// Each element still gets the one addition (and multiplication) fastText gives it.
template <bool Scaled>
inline void add_code(float* __restrict x, const product_quantizer& pq, const uint8_t* code,
                     float alpha) {
  const size_t dsub = static_cast<size_t>(pq.dsub);
  const size_t last = static_cast<size_t>(pq.nsubq) - 1;
  const float* __restrict centroids = pq.centroids.data();
  size_t m = 0;
  if (dsub == 2) {
    // fastText's default: two sub-vectors fill four lanes
    for (; m + 2 <= last; m += 2) {
      // each centroid pair moved as one 8-byte integer lane: its bits untouched
      // (copied to scalars first: clang takes no address of a vector element)
      int64_t lo, hi;
      std::memcpy(&lo, centroids + (m * k_ksub + code[m]) * 2, sizeof(int64_t));
      std::memcpy(&hi, centroids + ((m + 1) * k_ksub + code[m + 1]) * 2, sizeof(int64_t));
      const int64x2 pair = {lo, hi};
      float4 c = reinterpret_cast<float4>(pair);
      if (Scaled) c *= alpha;
      store4(x + 2 * m, load4(x + 2 * m) + c);
    }
  }
  for (; m < last; ++m) {
    const float* c = centroids + (m * k_ksub + code[m]) * dsub;
    float* xm = x + m * dsub;
    for (size_t j = 0; j < dsub; ++j) xm[j] += Scaled ? alpha * c[j] : c[j];
  }
  const float* c = pq.centroid(static_cast<int32_t>(last), code[last]);
  float* xm = x + last * dsub;
  for (size_t j = 0; j < static_cast<size_t>(pq.lastdsub); ++j) {
    xm[j] += Scaled ? alpha * c[j] : c[j];
  }
}

// ProductQuantizer::mulcode without its final "* alpha", for R consecutive rows whose codes start
// at `codes`: each row's sum is one float accumulator over the columns in order, as in fastText;
// R rows at a time keep R independent chains in flight. Dsub is pq.dsub when known at compile
// time (2: fastText's default, and always the output layer's), else 0.
template <int R, int Dsub>
inline void code_dots(const product_quantizer& pq, const uint8_t* codes, const float* x,
                      float* out) {
  const size_t nsubq = static_cast<size_t>(pq.nsubq);
  const size_t dsub = Dsub > 0 ? static_cast<size_t>(Dsub) : static_cast<size_t>(pq.dsub);
  const float* centroids = pq.centroids.data();
  float acc[R] = {};
  const float* c[R];
  for (size_t m = 0; m + 1 < nsubq; ++m) {
    const float* base = centroids + m * k_ksub * dsub;
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) c[r] = base + codes[r * nsubq + m] * dsub;
    const float* xm = x + m * dsub;
    for (size_t j = 0; j < dsub; ++j) {
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r] += xm[j] * c[r][j];
    }
  }
  const size_t last = nsubq - 1;
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
    c[r] = pq.centroid(static_cast<int32_t>(last), codes[r * nsubq + last]);
  const float* xm = x + last * dsub;
  for (size_t j = 0; j < static_cast<size_t>(pq.lastdsub); ++j) {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r] += xm[j] * c[r][j];
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) out[r] = acc[r];
}

template <int Dsub>
void quant_dots_by(const quant_matrix& q, const float* x, float* out) {
  const size_t nsubq = static_cast<size_t>(q.pq.nsubq);
  const size_t rows = static_cast<size_t>(q.rows);
  const uint8_t* codes = q.codes.data();
  size_t r = 0;
  for (; r + 8 <= rows; r += 8) code_dots<8, Dsub>(q.pq, codes + r * nsubq, x, out + r);
  for (; r < rows; ++r) code_dots<1, Dsub>(q.pq, codes + r * nsubq, x, out + r);
}

// QuantMatrix::dotRow for every row (Vector::mul): mulcode's sum times the row's norm (1 without
// qnorm, which changes nothing).
void quant_dots(const quant_matrix& q, const float* x, float* out) {
  if (q.pq.dsub == 2) {
    quant_dots_by<2>(q, x, out);
  } else {
    quant_dots_by<0>(q, x, out);
  }
  if (q.qnorm) {
    for (size_t r = 0; r < static_cast<size_t>(q.rows); ++r) out[r] *= q.norm(r);
  }
}

// QuantMatrix::dotRow for one row.
inline float quant_dot(const quant_matrix& q, size_t row, const float* x) {
  float d = 0.0f;
  const uint8_t* codes = q.codes.data() + row * static_cast<size_t>(q.pq.nsubq);
  if (q.pq.dsub == 2) {
    code_dots<1, 2>(q.pq, codes, x, &d);
  } else {
    code_dots<1, 0>(q.pq, codes, x, &d);
  }
  return q.qnorm ? d * q.norm(row) : d;
}

// See the header: "__label__" if every label has it, else the longest common run of leading
// non-alphanumeric ASCII characters, never a whole label.
size_t label_prefix_length(const std::vector<std::string_view>& labels) {
  if (labels.empty()) return 0;
  bool all_default = std::all_of(labels.begin(), labels.end(), [](std::string_view l) {
    return l.substr(0, k_label_prefix.size()) == k_label_prefix;
  });
  if (all_default) return k_label_prefix.size();
  size_t len = labels[0].size();
  for (std::string_view l : labels) {
    len = std::min(len, l.size() == 0 ? 0 : l.size() - 1);
    size_t i = 0;
    while (i < len && l[i] == labels[0][i]) ++i;
    len = i;
  }
  size_t i = 0;
  while (i < len) {
    unsigned char c = static_cast<unsigned char>(labels[0][i]);
    bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (c >= 0x80 || alnum) break;
    ++i;
  }
  return i;
}

// ---- the model --------------------------------------------------------------------------------

// Per-thread buffers reused by every predict() on that thread.
struct predict_scratch {
  std::vector<int32_t> ids;
  std::vector<int32_t> word_hashes;
  std::string wrapped;  // "<" + token + ">"
  std::vector<float> hidden;
  std::vector<float> output;
  std::vector<std::pair<float, int32_t>> heap;
  std::vector<std::pair<int32_t, float>> stack;  // hs search: node, score
  // predict_batch: the hidden vectors of a block of texts (texts x dim), their logits (texts x
  // labels) and which text each row belongs to
  std::vector<float> batch_hidden;
  std::vector<float> batch_output;
  std::vector<size_t> batch_rows;
};

predict_scratch& local_scratch() {
  thread_local predict_scratch s;
  return s;
}

class fasttext_model final : public model {
 public:
  explicit fasttext_model(bool map_weights)
      : input_(mapped_allocator<float>(map_weights)), output_(mapped_allocator<float>(map_weights)) {}
  status load(std::string_view bytes);

  std::vector<prediction> predict(std::string_view text, size_t k) const override;
  std::vector<std::vector<prediction>> predict_batch(const std::vector<std::string>& texts,
                                                     size_t k) const override;
  std::string format() const override { return "fasttext"; }
  size_t label_count() const override { return labels_.size(); }
  std::string label_prefix() const override { return label_prefix_; }
  size_t memory_bytes() const override { return memory_bytes_; }

 private:
  std::string_view entry(int32_t id) const {
    return std::string_view(chars_).substr(offsets_[id], offsets_[id + 1] - offsets_[id]);
  }
  int32_t find(std::string_view token, uint32_t h) const;
  void index_entries();
  status read_pruneidx(byte_reader& in, int64_t size);
  int32_t pruned_row(uint32_t bucket_id) const;
  void push_ngram(std::vector<int32_t>& ids, uint32_t bucket_id) const;
  status precompute_subwords(size_t file_bytes);
  status build_tree(const std::vector<int64_t>& counts);

  bool featurize(std::string_view text, predict_scratch& s) const;
  void add_token(std::string_view token, predict_scratch& s) const;
  void add_word_ngrams(predict_scratch& s) const;
  void compute_hidden(predict_scratch& s) const;
  void output_logits(const float* hidden, float* out) const;
  float output_dot(int32_t row, const float* hidden) const;
  void logits_to_probs(float* out, const float* hidden) const;
  void find_k_best(size_t k, const float* output,
                   std::vector<std::pair<float, int32_t>>& heap) const;
  std::vector<prediction> answer(predict_scratch& s) const;
  void batch_block(const std::vector<std::string>& texts, size_t begin, size_t end, size_t k,
                   std::vector<std::vector<prediction>>& out, predict_scratch& s) const;
  void hs_search(size_t k, predict_scratch& s) const;

  // header
  int32_t dim_ = 0;
  int32_t word_ngrams_ = 1;
  int32_t bucket_ = 0;
  int32_t minn_ = 0;
  int32_t maxn_ = 0;
  loss_kind loss_ = loss_kind::softmax;
  // dictionary: entries 0..nwords_-1 are words, the rest labels (Dictionary::threshold's order)
  int32_t nwords_ = 0;
  int32_t nlabels_ = 0;
  std::string chars_;                 // every entry's bytes, back to back
  std::vector<size_t> offsets_;       // entry i is chars_[offsets_[i], offsets_[i+1])
  std::vector<uint32_t> entry_hash_;  // fnv_hash of each entry
  std::vector<int32_t> slots_;        // open addressing on entry_hash_, -1 = empty
  uint32_t slot_mask_ = 0;
  // Dictionary::initNgrams, for words only: word i's input rows are
  // subword_ids_[subword_offsets_[i], subword_offsets_[i+1]) (its own id first).
  // Both are empty when maxn <= 0 (then a word is its own id alone).
  std::vector<size_t> subword_offsets_;
  std::vector<int32_t> subword_ids_;
  std::vector<std::string> labels_;  // prefix stripped
  std::string label_prefix_ = "__label__";  // what the labels carried before stripping
  // Dictionary::pruneidx_ of a pruned dictionary (`fasttext quantize -cutoff`): n-gram bucket ->
  // its input row after the words. Open addressing on the bucket id (key -1 = empty); a pruned
  // dictionary with no entries keeps no n-gram rows at all.
  bool pruned_ = false;
  std::vector<std::pair<int32_t, int32_t>> prune_slots_;
  uint32_t prune_shift_ = 0;
  // weights, row-major as in the file (empty when the quantized one below is used instead)
  weights input_;   // (nwords + bucket, or + pruned n-grams) x dim
  weights output_;  // nlabels x dim
  // .ftz: quantized weights, used instead of input_ / output_ when the flag is set
  bool quant_input_ = false;
  bool quant_output_ = false;
  quant_matrix qinput_;
  quant_matrix qoutput_;
  bool use_blas_ = false;
  // hs: children of internal node osz + i, from HierarchicalSoftmaxLoss::buildTree
  std::vector<std::pair<int32_t, int32_t>> children_;
  size_t memory_bytes_ = 0;
};

status fasttext_model::load(std::string_view bytes) {
  if (bytes.empty()) return status::invalid_argument("not a fastText model: the file is empty");
  byte_reader in(bytes);
  int32_t magic = 0, version = 0;
  SHOAL_RETURN_IF_ERROR(in.read(magic, "magic number"));
  if (magic != k_magic) {
    return status::invalid_argument("not a fastText model: bad magic number " +
                                    std::to_string(magic) + " (expected " +
                                    std::to_string(k_magic) + ")");
  }
  SHOAL_RETURN_IF_ERROR(in.read(version, "version"));
  if (version != k_version && version != k_old_version) {
    return status::invalid_argument("unsupported fastText model version " +
                                    std::to_string(version) + " (this reader knows " +
                                    std::to_string(k_old_version) + " and " +
                                    std::to_string(k_version) + ", written by fastText 0.9.2)");
  }

  header h;
  SHOAL_RETURN_IF_ERROR(read_header(in, h));
  // FastText::loadModel's compatibility rule: old supervised models have no char n-grams.
  if (version == k_old_version && h.model == 3) h.maxn = 0;
  SHOAL_RETURN_IF_ERROR(check_header(h));
  dim_ = h.dim;
  word_ngrams_ = h.word_ngrams;
  bucket_ = h.bucket;
  minn_ = h.minn;
  maxn_ = h.maxn;
  loss_ = static_cast<loss_kind>(h.loss);

  // Dictionary::load
  int32_t size = 0;
  int64_t ntokens = 0, pruneidx_size = 0;
  SHOAL_RETURN_IF_ERROR(in.read(size, "dictionary size"));
  SHOAL_RETURN_IF_ERROR(in.read(nwords_, "dictionary nwords"));
  SHOAL_RETURN_IF_ERROR(in.read(nlabels_, "dictionary nlabels"));
  SHOAL_RETURN_IF_ERROR(in.read(ntokens, "dictionary ntokens"));
  SHOAL_RETURN_IF_ERROR(in.read(pruneidx_size, "dictionary pruneidx_size"));
  if (size < 0 || nwords_ < 0 || nlabels_ < 0 ||
      static_cast<int64_t>(size) != static_cast<int64_t>(nwords_) + nlabels_) {
    return status::invalid_argument(
        "corrupt fastText model: the dictionary has " + std::to_string(size) + " entries but " +
        std::to_string(nwords_) + " words and " + std::to_string(nlabels_) + " labels");
  }
  if (nlabels_ == 0) {
    return status::invalid_argument(
        "corrupt fastText model: the dictionary has no labels, so there is nothing to predict");
  }
  constexpr uint64_t k_min_entry_bytes = 10;  // NUL, int64 count, int8 type
  if (static_cast<uint64_t>(size) * k_min_entry_bytes > in.left()) {
    return status::invalid_argument(truncated("dictionary of " + std::to_string(size) + " entries",
                                              size * k_min_entry_bytes, in.left()));
  }
  if (static_cast<int64_t>(nwords_) + bucket_ > INT32_MAX) {
    return status::invalid_argument("corrupt fastText model: nwords (" + std::to_string(nwords_) +
                                    ") + bucket (" + std::to_string(bucket_) +
                                    ") rows cannot be addressed by fastText's 32-bit ids");
  }
  offsets_.reserve(static_cast<size_t>(size) + 1);
  entry_hash_.reserve(static_cast<size_t>(size));
  offsets_.push_back(0);
  std::vector<int64_t> label_counts;
  label_counts.reserve(static_cast<size_t>(nlabels_));
  for (int32_t i = 0; i < size; ++i) {
    std::string_view word;
    if (!in.read_cstring(word)) {
      return status::invalid_argument("truncated fastText model: dictionary entry " +
                                      std::to_string(i) + " of " + std::to_string(size) +
                                      " has no terminating NUL in the " +
                                      std::to_string(in.left()) + " bytes left");
    }
    int64_t count = 0;
    int8_t type = 0;
    if (in.left() < 9) {
      return status::invalid_argument(
          truncated("dictionary entry " + std::to_string(i) + " (count and type)", 9, in.left()));
    }
    SHOAL_RETURN_IF_ERROR(in.read(count, "entry count"));
    SHOAL_RETURN_IF_ERROR(in.read(type, "entry type"));
    const int8_t expected = i < nwords_ ? 0 : 1;
    if (type != expected) {
      return status::invalid_argument(
          "corrupt fastText model: dictionary entry " + std::to_string(i) + " has type " +
          std::to_string(type) + ", expected " + std::to_string(expected) + " (" +
          (expected == 0 ? "word" : "label") + "): words come first, then " +
          std::to_string(nlabels_) + " labels");
    }
    chars_.append(word.data(), word.size());
    offsets_.push_back(chars_.size());
    entry_hash_.push_back(fnv_hash(word));
    if (type == 1) label_counts.push_back(count);
  }
  chars_.shrink_to_fit();
  if (pruneidx_size < -1) {
    return status::invalid_argument("corrupt fastText model: pruneidx_size is " +
                                    std::to_string(pruneidx_size));
  }
  if (pruneidx_size > 0) {
    if (static_cast<uint64_t>(pruneidx_size) > in.left() / 8) {
      return status::invalid_argument(
          truncated("pruned n-gram index of " + std::to_string(pruneidx_size) + " pairs",
                    static_cast<uint64_t>(pruneidx_size) > UINT64_MAX / 8
                        ? UINT64_MAX
                        : static_cast<uint64_t>(pruneidx_size) * 8,
                    in.left()));
    }
    SHOAL_RETURN_IF_ERROR(read_pruneidx(in, pruneidx_size));
  }
  pruned_ = pruneidx_size >= 0;

  // FastText::loadModel
  bool quant_input = false, quant_output = false;
  SHOAL_RETURN_IF_ERROR(read_flag(in, "quant_input flag", quant_input));
  if (pruned_ && !quant_input) {
    return status::invalid_argument(
        "corrupt fastText model: the dictionary is pruned (pruneidx_size " +
        std::to_string(pruneidx_size) +
        ") but the input matrix is not quantized; only `fasttext quantize -cutoff` prunes, and "
        "fastText refuses such a file too (\"Invalid model file\")");
  }
  // A pruned dictionary keeps its words' rows and then pruneidx_size n-gram rows.
  const int64_t input_rows =
      static_cast<int64_t>(nwords_) + (pruned_ ? pruneidx_size : static_cast<int64_t>(bucket_));
  quant_input_ = quant_input;
  if (quant_input_) {
    SHOAL_RETURN_IF_ERROR(read_quant_matrix(in, "input", input_rows, dim_, qinput_));
  } else {
    SHOAL_RETURN_IF_ERROR(read_matrix(in, "input", input_rows, dim_, input_));
  }
  SHOAL_RETURN_IF_ERROR(read_flag(in, "quant_output flag", quant_output));
  // fastText reads a quantized output only when the input is quantized as well: `fasttext
  // supervised -qout` writes a .bin with this flag set and a dense output matrix.
  quant_output_ = quant_input_ && quant_output;
  if (quant_output_) {
    SHOAL_RETURN_IF_ERROR(read_quant_matrix(in, "output", nlabels_, dim_, qoutput_));
  } else {
    SHOAL_RETURN_IF_ERROR(read_matrix(in, "output", nlabels_, dim_, output_));
  }
  if (in.left() != 0) {
    return status::invalid_argument("corrupt fastText model: " + std::to_string(in.left()) +
                                    " bytes of trailing garbage after the output matrix");
  }

  index_entries();
  SHOAL_RETURN_IF_ERROR(precompute_subwords(bytes.size()));
  std::vector<std::string_view> raw_labels;
  raw_labels.reserve(static_cast<size_t>(nlabels_));
  for (int32_t i = nwords_; i < size; ++i) raw_labels.push_back(entry(i));
  const size_t strip = label_prefix_length(raw_labels);
  labels_.reserve(raw_labels.size());
  for (std::string_view l : raw_labels) labels_.emplace_back(l.substr(strip));
  if (!raw_labels.empty()) label_prefix_ = std::string(raw_labels[0].substr(0, strip));
  if (loss_ == loss_kind::hs) SHOAL_RETURN_IF_ERROR(build_tree(label_counts));
  use_blas_ = !quant_output_ && static_cast<int64_t>(nlabels_) * dim_ >= k_blas_min_weights;

  memory_bytes_ =
      sizeof(*this) + chars_.capacity() + offsets_.capacity() * sizeof(size_t) +
      entry_hash_.capacity() * sizeof(uint32_t) + slots_.capacity() * sizeof(int32_t) +
      subword_offsets_.capacity() * sizeof(size_t) + subword_ids_.capacity() * sizeof(int32_t) +
      (input_.capacity() + output_.capacity()) * sizeof(float) + qinput_.memory_bytes() +
      qoutput_.memory_bytes() + prune_slots_.capacity() * sizeof(prune_slots_[0]) +
      children_.capacity() * sizeof(children_[0]);
  for (const auto& l : labels_) memory_bytes_ += sizeof(l) + l.capacity();
  return status::ok();
}

// Dictionary::load's word2int_: the last entry wins when a word appears twice.
void fasttext_model::index_entries() {
  const size_t n = entry_hash_.size();
  size_t capacity = 2;
  while (capacity < 2 * n) capacity *= 2;
  slots_.assign(capacity, -1);
  slot_mask_ = static_cast<uint32_t>(capacity - 1);
  for (size_t i = 0; i < n; ++i) {
    const int32_t id = static_cast<int32_t>(i);
    for (uint32_t s = entry_hash_[i] & slot_mask_;; s = (s + 1) & slot_mask_) {
      if (slots_[s] < 0 ||
          (entry_hash_[slots_[s]] == entry_hash_[i] && entry(slots_[s]) == entry(id))) {
        slots_[s] = id;
        break;
      }
    }
  }
}

// Dictionary::load's pruneidx_: `size` (bucket, row) int32 pairs, already known to be in the
// bytes. `fasttext quantize -cutoff` writes each kept n-gram bucket once, numbered 0..size-1;
// anything else is damage.
status fasttext_model::read_pruneidx(byte_reader& in, int64_t size) {
  if (size > bucket_) {
    return status::invalid_argument("corrupt fastText model: the pruned n-gram index has " +
                                    std::to_string(size) + " entries, but there are only " +
                                    std::to_string(bucket_) + " buckets");
  }
  uint32_t bits = 1;
  while ((uint64_t{1} << bits) < 2 * static_cast<uint64_t>(size)) ++bits;
  prune_shift_ = 32 - bits;
  prune_slots_.assign(size_t{1} << bits, {-1, 0});
  const uint32_t mask = (uint32_t{1} << bits) - 1;
  std::vector<bool> row_used(static_cast<size_t>(size));
  for (int64_t i = 0; i < size; ++i) {
    int32_t bucket_id = 0, row = 0;
    SHOAL_RETURN_IF_ERROR(in.read(bucket_id, "pruned n-gram index bucket"));
    SHOAL_RETURN_IF_ERROR(in.read(row, "pruned n-gram index row"));
    const std::string entry_name = "corrupt fastText model: pruned n-gram index entry " +
                                   std::to_string(i) + " maps bucket " + std::to_string(bucket_id) +
                                   " to row " + std::to_string(row);
    if (bucket_id < 0 || bucket_id >= bucket_) {
      return status::invalid_argument(entry_name + ", but buckets are 0.." +
                                      std::to_string(bucket_ - 1));
    }
    if (row < 0 || row >= size) {
      return status::invalid_argument(entry_name + ", but its rows are 0.." +
                                      std::to_string(size - 1));
    }
    if (row_used[static_cast<size_t>(row)]) {
      return status::invalid_argument(entry_name + ", which an earlier entry already has");
    }
    row_used[static_cast<size_t>(row)] = true;
    for (uint32_t s = (static_cast<uint32_t>(bucket_id) * 0x9E3779B1u) >> prune_shift_;;
         s = (s + 1) & mask) {
      if (prune_slots_[s].first == bucket_id) {
        return status::invalid_argument(entry_name + ", but that bucket appears twice");
      }
      if (prune_slots_[s].first < 0) {
        prune_slots_[s] = {bucket_id, row};
        break;
      }
    }
  }
  return status::ok();
}

// The pruned row of n-gram bucket `bucket_id`, or -1 when pruning dropped it.
int32_t fasttext_model::pruned_row(uint32_t bucket_id) const {
  if (prune_slots_.empty()) return -1;
  const uint32_t mask = static_cast<uint32_t>(prune_slots_.size() - 1);
  for (uint32_t s = (bucket_id * 0x9E3779B1u) >> prune_shift_;; s = (s + 1) & mask) {
    const auto& [key, row] = prune_slots_[s];
    if (key == static_cast<int32_t>(bucket_id)) return row;
    if (key < 0) return -1;
  }
}

// Dictionary::pushHash: n-gram bucket `bucket_id` (< bucket) is input row nwords + bucket_id; in a
// pruned dictionary it is nwords + its pruned row, or nothing when pruning dropped it.
inline void fasttext_model::push_ngram(std::vector<int32_t>& ids, uint32_t bucket_id) const {
  if (!pruned_) {
    ids.push_back(nwords_ + static_cast<int32_t>(bucket_id));
    return;
  }
  const int32_t row = pruned_row(bucket_id);
  if (row >= 0) ids.push_back(nwords_ + row);
}

int32_t fasttext_model::find(std::string_view token, uint32_t h) const {
  for (uint32_t s = h & slot_mask_;; s = (s + 1) & slot_mask_) {
    const int32_t id = slots_[s];
    if (id < 0) return -1;
    if (entry_hash_[id] == h && entry(id) == token) return id;
  }
}

status fasttext_model::precompute_subwords(size_t file_bytes) {
  if (maxn_ <= 0) return status::ok();  // addSubwords then uses the word id alone
  const uint64_t minn = static_cast<uint64_t>(minn_), maxn = static_cast<uint64_t>(maxn_);
  // A long word with a large maxn has quadratically many n-grams: bound the table by the file.
  const uint64_t budget = 4 * static_cast<uint64_t>(file_bytes) + (uint64_t{1} << 22);
  uint64_t total = 0;
  for (int32_t i = 0; i < nwords_; ++i) {
    total += 1;
    std::string_view w = entry(i);
    if (w != k_eos) total += char_ngram_count(w, minn, maxn);
    if (total > budget) {
      return status::invalid_argument(
          "corrupt fastText model: minn=" + std::to_string(minn_) +
          " and maxn=" + std::to_string(maxn_) + " give the dictionary's words more than " +
          std::to_string(budget) + " char n-grams, implausible for a file of " +
          std::to_string(file_bytes) + " bytes");
    }
  }
  subword_offsets_.reserve(static_cast<size_t>(nwords_) + 1);
  subword_ids_.reserve(static_cast<size_t>(total));
  subword_offsets_.push_back(0);
  std::string wrapped;
  for (int32_t i = 0; i < nwords_; ++i) {
    subword_ids_.push_back(i);
    std::string_view w = entry(i);
    if (w != k_eos) {
      wrapped.assign("<");
      wrapped.append(w.data(), w.size());
      wrapped.push_back('>');
      for_each_char_ngram(wrapped, minn, maxn, [&](uint32_t h) {
        push_ngram(subword_ids_, h % static_cast<uint32_t>(bucket_));
      });
    }
    subword_offsets_.push_back(subword_ids_.size());
  }
  subword_ids_.shrink_to_fit();
  return status::ok();
}

// HierarchicalSoftmaxLoss::buildTree: a Huffman tree over the label counts (sorted descending, so
// the two queues are the leaves from the back and the internal nodes in creation order).
status fasttext_model::build_tree(const std::vector<int64_t>& counts) {
  const int32_t osz = nlabels_;
  std::vector<int64_t> count(2 * static_cast<size_t>(osz) - 1, static_cast<int64_t>(1e15));
  for (int32_t i = 0; i < osz; ++i) count[i] = counts[i];
  children_.resize(static_cast<size_t>(osz) - 1);
  int32_t leaf = osz - 1;
  int32_t node = osz;
  for (int32_t i = osz; i < 2 * osz - 1; ++i) {
    int32_t mini[2] = {0, 0};
    for (int32_t j = 0; j < 2; ++j) {
      if (leaf >= 0 && count[leaf] < count[node]) {
        mini[j] = leaf--;
      } else {
        mini[j] = node++;
      }
      // fastText would link a node that does not exist yet (and loop or read past the tree).
      if (mini[j] >= i) {
        return status::invalid_argument("corrupt fastText model: the label counts (e.g. " +
                                        std::to_string(counts[0]) +
                                        ") do not form a valid hierarchical-softmax tree");
      }
    }
    children_[i - osz] = {mini[0], mini[1]};
    count[i] = static_cast<int64_t>(static_cast<uint64_t>(count[mini[0]]) +
                                    static_cast<uint64_t>(count[mini[1]]));
  }
  return status::ok();
}

// Dictionary::getLine for one token: known labels and unknown "__label__…" tokens are skipped;
// everything else contributes its subwords and its hash for word n-grams.
void fasttext_model::add_token(std::string_view token, predict_scratch& s) const {
  const uint32_t h = fnv_hash(token);
  const int32_t wid = find(token, h);
  const bool is_word =
      wid >= 0 ? wid < nwords_ : token.substr(0, k_label_prefix.size()) != k_label_prefix;
  if (!is_word) return;
  // Dictionary::addSubwords
  if (wid < 0) {
    if (token != k_eos && maxn_ > 0) {
      s.wrapped.assign("<");
      s.wrapped.append(token.data(), token.size());
      s.wrapped.push_back('>');
      const uint32_t bucket = static_cast<uint32_t>(bucket_);
      for_each_char_ngram(s.wrapped, static_cast<size_t>(minn_), static_cast<size_t>(maxn_),
                          [&](uint32_t ngram) { push_ngram(s.ids, ngram % bucket); });
    }
  } else if (maxn_ <= 0) {
    s.ids.push_back(wid);
  } else {
    s.ids.insert(s.ids.end(), subword_ids_.begin() + subword_offsets_[wid],
                 subword_ids_.begin() + subword_offsets_[wid + 1]);
  }
  s.word_hashes.push_back(static_cast<int32_t>(h));
}

// Dictionary::addWordNgrams: the int32 hashes are sign-extended into the 64-bit rolling hash.
void fasttext_model::add_word_ngrams(predict_scratch& s) const {
  const int64_t n = word_ngrams_;
  if (n <= 1) return;
  const int64_t size = static_cast<int64_t>(s.word_hashes.size());
  const uint64_t bucket = static_cast<uint64_t>(bucket_);
  for (int64_t i = 0; i < size; ++i) {
    uint64_t h = static_cast<uint64_t>(static_cast<int64_t>(s.word_hashes[i]));
    for (int64_t j = i + 1; j < size && j < i + n; ++j) {
      h = h * 116049371 + static_cast<uint64_t>(static_cast<int64_t>(s.word_hashes[j]));
      push_ngram(s.ids, static_cast<uint32_t>(h % bucket));
    }
  }
}

// Model::computeHidden: sum the rows in input order (QuantMatrix::addRowToVector decodes each
// from its codes), then scale by float(1.0 / count).
void fasttext_model::compute_hidden(predict_scratch& s) const {
  const size_t dim = static_cast<size_t>(dim_);
  s.hidden.assign(dim, 0.0f);
  float* hidden = s.hidden.data();
  if (!quant_input_) {
    for (int32_t id : s.ids) add_row(hidden, input_.data() + static_cast<size_t>(id) * dim, dim);
  } else {
    const quant_matrix& q = qinput_;
    const uint8_t* codes = q.codes.data();
    const size_t nsubq = static_cast<size_t>(q.pq.nsubq);
    if (q.qnorm) {
      for (int32_t id : s.ids) {
        const size_t row = static_cast<size_t>(id);
        add_code<true>(hidden, q.pq, codes + row * nsubq, q.norm(row));
      }
    } else {
      for (int32_t id : s.ids) {
        add_code<false>(hidden, q.pq, codes + static_cast<size_t>(id) * nsubq, 1.0f);
      }
    }
  }
  const float scale = static_cast<float>(1.0 / static_cast<double>(s.ids.size()));
  for (size_t j = 0; j < dim; ++j) hidden[j] *= scale;
}

void fasttext_model::output_logits(const float* hidden, float* out) const {
  if (quant_output_) {
    quant_dots(qoutput_, hidden, out);
  } else if (use_blas_) {
    const int32_t rows_per_call =
        static_cast<int32_t>(std::max<int64_t>(1, k_blas_max_weights_per_call / dim_));
    for (int32_t r = 0; r < nlabels_; r += rows_per_call) {
      cblas_sgemv(CblasRowMajor, CblasNoTrans, std::min(rows_per_call, nlabels_ - r), dim_, 1.0f,
                  output_.data() + static_cast<size_t>(r) * dim_, dim_, hidden, 1, 0.0f, out + r,
                  1);
    }
  } else {
    exact_dots(output_.data(), nlabels_, dim_, hidden, out);
  }
}

// Matrix::dotRow of the output layer: fastText's order, dense or quantized.
float fasttext_model::output_dot(int32_t row, const float* hidden) const {
  if (quant_output_) return quant_dot(qoutput_, static_cast<size_t>(row), hidden);
  return exact_dot(output_.data() + static_cast<size_t>(row) * dim_, dim_, hidden);
}

// Loss::findKBest with threshold 0. Once the heap is full most labels lose to its front; their
// log is skipped when the probabilities alone prove std_log(p) < std_log(front): a ratio of
// (p + 1e-5) / (front + 1e-5) below 1 - 4e-6 moves the log by more than 4e-6, while rounding
// log(x) (|log(x)| < 12) to float moves it by at most 5e-7.
void fasttext_model::find_k_best(size_t k, const float* output,
                                 std::vector<std::pair<float, int32_t>>& heap) const {
  for (int32_t i = 0; i < nlabels_; ++i) {
    if (output[i] < 0.0f) continue;
    if (heap.size() == k) {
      const double front = static_cast<double>(output[heap.front().second]) + 1e-5;
      if (static_cast<double>(output[i]) + 1e-5 < front * (1 - 4e-6)) continue;
    }
    const float score = std_log(output[i]);
    if (heap.size() == k && score < heap.front().first) continue;
    heap.emplace_back(score, i);
    std::push_heap(heap.begin(), heap.end(), compare_pairs);
    if (heap.size() > k) {
      std::pop_heap(heap.begin(), heap.end(), compare_pairs);
      heap.pop_back();
    }
  }
}

// HierarchicalSoftmaxLoss::dfs with threshold 0, made iterative (a degenerate tree is as deep as
// there are labels). Right is pushed before left, so left's subtree is searched first and every
// pruning test sees the heap the recursive version would.
void fasttext_model::hs_search(size_t k, predict_scratch& s) const {
  const int32_t osz = nlabels_;
  const float floor_score = std_log(0.0f);
  const float* hidden = s.hidden.data();
  s.stack.clear();
  s.stack.emplace_back(2 * osz - 2, 0.0f);
  auto& heap = s.heap;
  while (!s.stack.empty()) {
    const auto [node, score] = s.stack.back();
    s.stack.pop_back();
    if (score < floor_score) continue;
    if (heap.size() == k && score < heap.front().first) continue;
    if (node < osz) {
      heap.emplace_back(score, node);
      std::push_heap(heap.begin(), heap.end(), compare_pairs);
      if (heap.size() > k) {
        std::pop_heap(heap.begin(), heap.end(), compare_pairs);
        heap.pop_back();
      }
      continue;
    }
    float f = output_dot(node - osz, hidden);
    f = 1.0f / (1.0f + std::exp(-f));
    const auto& [left, right] = children_[node - osz];
    s.stack.emplace_back(right, score + std_log(f));
    s.stack.emplace_back(left, score + std_log(1.0f - f));
  }
}

// Dictionary::getLine for one text: s.ids gets its input rows (words, subwords, word n-grams).
// Returns false when there are none (FastText::predict then answers nothing).
bool fasttext_model::featurize(std::string_view text, predict_scratch& s) const {
  s.ids.clear();
  s.word_hashes.clear();
  // Dictionary::readWord + getLine: tokens up to and including "</s>", which the line's end
  // supplies unless the text spells it out earlier.
  bool ended = false;
  size_t i = 0;
  while (i < text.size() && !ended) {
    while (i < text.size() && is_fasttext_space(text[i])) ++i;
    if (i == text.size()) break;
    const size_t begin = i;
    while (i < text.size() && !is_fasttext_space(text[i])) ++i;
    const std::string_view token = text.substr(begin, i - begin);
    add_token(token, s);
    ended = token == k_eos;
  }
  if (!ended) add_token(k_eos, s);
  add_word_ngrams(s);
  return !s.ids.empty();
}

// The loss's computeOutput over `out` (the logits of `hidden`), in place.
void fasttext_model::logits_to_probs(float* out, const float* hidden) const {
  if (loss_ == loss_kind::softmax) {
    // SoftmaxLoss::computeOutput (its exp is the double one)
    float max = out[0], z = 0.0f;
    for (int32_t j = 0; j < nlabels_; ++j) max = std::max(out[j], max);
    for (int32_t j = 0; j < nlabels_; ++j) {
      out[j] = static_cast<float>(std::exp(static_cast<double>(out[j] - max)));
      z += out[j];
    }
    for (int32_t j = 0; j < nlabels_; ++j) out[j] /= z;
  } else {
    // BinaryLogisticLoss::computeOutput (ns and ova)
    const sigmoid_table& table = sigmoid_values();
    for (int32_t j = 0; j < nlabels_; ++j) {
      if (use_blas_ && near_table_edge(out[j])) {
        out[j] = exact_dot(output_.data() + static_cast<size_t>(j) * dim_, dim_, hidden);
      }
      out[j] = table_sigmoid(table, out[j]);
    }
  }
}

// The heap of s, best first, as predictions. FastText::predictLine reports exp(std_log(p)), i.e.
// p + 1e-5 in float.
std::vector<prediction> fasttext_model::answer(predict_scratch& s) const {
  std::sort_heap(s.heap.begin(), s.heap.end(), compare_pairs);
  std::vector<prediction> result;
  result.reserve(s.heap.size());
  for (const auto& [score, label] : s.heap) result.push_back({labels_[label], std::exp(score)});
  return result;
}

std::vector<prediction> fasttext_model::predict(std::string_view text, size_t k) const {
  if (k == 0) return {};
  try {
    predict_scratch& s = local_scratch();
    if (!featurize(text, s)) return {};
    compute_hidden(s);
    k = std::min(k, static_cast<size_t>(nlabels_));
    s.heap.clear();
    if (loss_ == loss_kind::hs) {
      hs_search(k, s);
    } else {
      s.output.resize(static_cast<size_t>(nlabels_));
      float* out = s.output.data();
      output_logits(s.hidden.data(), out);
      logits_to_probs(out, s.hidden.data());
      find_k_best(k, out, s.heap);
    }
    auto result = answer(s);
    // A huge text should not pin its buffers to this thread forever.
    if (s.ids.capacity() > (size_t{1} << 20)) {
      s.ids = {};
      s.word_hashes = {};
      s.wrapped = {};
    }
    return result;
  } catch (const std::bad_alloc&) {
    return {};  // predict() has no error channel; out of memory answers nothing
  }
}

// Texts [begin, end) of a batch: their hidden vectors stacked as rows, the output layer of all of
// them in one sgemm (H x W^T: the weights are read once per block instead of once per text), then
// each row finished as predict() does.
void fasttext_model::batch_block(const std::vector<std::string>& texts, size_t begin, size_t end,
                                 size_t k, std::vector<std::vector<prediction>>& out,
                                 predict_scratch& s) const {
  const size_t dim = static_cast<size_t>(dim_);
  const size_t labels = static_cast<size_t>(nlabels_);
  s.batch_rows.clear();
  s.batch_hidden.resize((end - begin) * dim);
  for (size_t t = begin; t < end; ++t) {
    if (!featurize(texts[t], s)) continue;  // stays empty, as predict() answers
    compute_hidden(s);
    std::memcpy(s.batch_hidden.data() + s.batch_rows.size() * dim, s.hidden.data(),
                dim * sizeof(float));
    s.batch_rows.push_back(t);
  }
  const size_t rows = s.batch_rows.size();
  if (rows == 0) return;
  s.batch_output.resize(rows * labels);
  const int32_t labels_per_call = static_cast<int32_t>(std::max<int64_t>(
      1, k_blas_max_gemm_work / static_cast<int64_t>(rows * dim)));
  for (int32_t r = 0; r < nlabels_; r += labels_per_call) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int32_t>(rows),
                std::min(labels_per_call, nlabels_ - r), dim_, 1.0f, s.batch_hidden.data(), dim_,
                output_.data() + static_cast<size_t>(r) * dim, dim_, 0.0f,
                s.batch_output.data() + r, nlabels_);
  }
  for (size_t i = 0; i < rows; ++i) {
    float* logits = s.batch_output.data() + i * labels;
    logits_to_probs(logits, s.batch_hidden.data() + i * dim);
    s.heap.clear();
    find_k_best(k, logits, s.heap);
    out[s.batch_rows[i]] = answer(s);
  }
}

std::vector<std::vector<prediction>> fasttext_model::predict_batch(
    const std::vector<std::string>& texts, size_t k) const {
  // Only a dense output layer large enough for OpenBLAS gains from sgemm; hs walks a tree per text
  // and a quantized output is decoded row by row.
  if (texts.size() < 2 || k == 0 || !use_blas_ || loss_ == loss_kind::hs) {
    return model::predict_batch(texts, k);
  }
  std::vector<std::vector<prediction>> out(texts.size());
  try {
    predict_scratch& s = local_scratch();
    k = std::min(k, static_cast<size_t>(nlabels_));
    for (size_t begin = 0; begin < texts.size(); begin += k_gemm_max_texts) {
      batch_block(texts, begin, std::min(texts.size(), begin + k_gemm_max_texts), k, out, s);
    }
    if (s.ids.capacity() > (size_t{1} << 20)) {
      s.ids = {};
      s.word_hashes = {};
      s.wrapped = {};
    }
  } catch (const std::bad_alloc&) {
    // no error channel, as in predict(): what is not done answers nothing
  }
  return out;
}

}  // namespace

bool looks_like_fasttext(std::string_view bytes) {
  if (bytes.size() < sizeof(int32_t)) return false;
  int32_t magic = 0;
  std::memcpy(&magic, bytes.data(), sizeof(magic));
  return magic == k_magic;
}

result<std::shared_ptr<const model>> load_fasttext(std::string_view bytes, bool map_weights) {
  try {
    auto m = std::make_shared<fasttext_model>(map_weights);
    SHOAL_RETURN_IF_ERROR(m->load(bytes));
    return std::shared_ptr<const model>(std::move(m));
  } catch (const std::bad_alloc&) {
    return status::resource_exhausted("not enough memory to load a fastText model of " +
                                      std::to_string(bytes.size()) + " bytes");
  } catch (const std::exception& e) {
    return status::internal(std::string("loading a fastText model failed: ") + e.what());
  }
}

}  // namespace shoal
