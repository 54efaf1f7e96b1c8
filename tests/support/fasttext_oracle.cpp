// fasttext_oracle: the fastText tool as a test oracle, and the synthetic corpora (see
// fasttext_oracle.hpp).
#include "support/fasttext_oracle.hpp"

#include <cstdlib>
#include <sstream>

namespace shoal::testing {

std::string fasttext_tool() {
  const char* env = std::getenv("FASTTEXT_BIN");
  return env != nullptr && *env != '\0' ? env : "/usr/bin/fasttext";
}

std::vector<std::vector<tool_prediction>> predict_prob(const std::string& model_path,
                                                       const std::vector<std::string>& texts, int k,
                                                       std::string& error) {
  std::string input;
  for (const auto& t : texts) {
    if (t.find('\n') != std::string::npos) {
      error = "a text for predict-prob holds a newline";
      return {};
    }
    input += t;
    input += '\n';
  }
  run_result r =
      run_program(fasttext_tool(), {"predict-prob", model_path, "-", std::to_string(k)}, input);
  if (r.exit_code != 0) {
    error = "fasttext predict-prob exited with " + std::to_string(r.exit_code) + ": " + r.err;
    return {};
  }
  std::vector<std::vector<tool_prediction>> all;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    std::vector<tool_prediction> row;
    std::istringstream fields(line);
    std::string label, prob;
    while (fields >> label) {
      if (!(fields >> prob)) {
        error = "cannot parse predict-prob output line: " + line;
        return {};
      }
      row.push_back({label, std::strtod(prob.c_str(), nullptr)});
    }
    all.push_back(std::move(row));
  }
  if (all.size() != texts.size()) {
    error = "predict-prob printed " + std::to_string(all.size()) + " lines for " +
            std::to_string(texts.size()) + " texts";
    return {};
  }
  return all;
}

std::string train(const std::string& command, const std::string& input, const std::string& prefix,
                  const std::vector<std::string>& args, std::string& error) {
  std::vector<std::string> argv = {command,   "-input", input,      "-output", prefix,
                                   "-thread", "1",      "-verbose", "0"};
  argv.insert(argv.end(), args.begin(), args.end());
  run_result r = run_program(fasttext_tool(), argv);
  if (r.exit_code != 0) {
    error = "fasttext " + command + " exited with " + std::to_string(r.exit_code) + ": " + r.err;
    return {};
  }
  return prefix + ".bin";
}

std::string quantize(const std::string& bin, const std::string& input, const std::string& prefix,
                     const std::vector<std::string>& args, std::string& error) {
  if (bin != prefix + ".bin") {
    const std::string bytes = read_file(bin);
    if (bytes.empty() || !write_file(prefix + ".bin", bytes)) {
      error = "cannot copy " + bin + " to " + prefix + ".bin";
      return {};
    }
  }
  std::vector<std::string> argv = {"quantize", "-input", input,      "-output", prefix,
                                   "-thread",  "1",      "-verbose", "0"};
  argv.insert(argv.end(), args.begin(), args.end());
  run_result r = run_program(fasttext_tool(), argv);
  if (r.exit_code != 0) {
    error = "fasttext quantize exited with " + std::to_string(r.exit_code) + ": " + r.err;
    return {};
  }
  return prefix + ".ftz";
}

namespace {

// splitmix64: the same sequence on every platform (std distributions are not).
class prng {
 public:
  explicit prng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
  bool percent(unsigned p) { return below(100) < p; }
  template <class T>
  const T& pick(const std::vector<T>& v) {
    return v[below(v.size())];
  }

 private:
  uint64_t state_;
};

struct intent {
  std::string name;
  std::vector<std::string> phrases;
};

const std::vector<intent>& intents() {
  static const std::vector<intent> all = {
      {"greet",
       {"hello", "hi", "hey there", "good morning", "good evening", "hiya", "howdy {name}",
        "hello {name}, nice to meet you", "hi bot", "yo", "привет", "здравствуйте", "γειά σου",
        "你好", "مرحبا", "こんにちは", "👋", "hey 👋"}},
      {"bye",
       {"goodbye", "bye", "bye bye", "see you later", "talk to you soon", "have a nice day",
        "that's all, bye", "catch you later {name}", "пока", "до свидания", "αντίο", "再见",
        "مع السلامة", "bye 👋"}},
      {"order_status",
       {"where is my order", "where is my order {num}", "track order #{num}",
        "has my package shipped?", "order {num} status", "when will order {num} arrive",
        "is my parcel {num} delayed", "status of my delivery", "когда придет мой заказ {num}",
        "我的订单{num}在哪里", "أين طلبي {num}", "πού είναι η παραγγελία μου", "📦 where is it"}},
      {"refund",
       {"i want a refund", "money back for order {num}", "refund please",
        "can i return this {item}", "i want my money back", "refund my {item}",
        "return the {item} and refund", "верните деньги", "хочу вернуть {item}", "退款", "我要退款",
        "استرداد المال", "επιστροφή χρημάτων", "💸 refund"}},
      {"thanks",
       {"thank you", "thanks a lot!", "much appreciated", "thanks {name}", "cheers 🙏",
        "great, thanks", "thx", "спасибо", "большое спасибо", "ευχαριστώ", "谢谢", "شكرا", "🙏🙏"}},
      {"complaint",
       {"this is terrible", "worst service ever!!!", "i am very unhappy",
        "your app keeps crashing 😡", "the {item} arrived broken", "nobody answers my emails",
        "ужасный сервис", "太糟糕了", "خدمة سيئة", "απαίσια εξυπηρέτηση", "😡😡"}},
      {"cancel",
       {"cancel my order {num}", "please cancel the subscription", "stop my plan",
        "i do not want the {item} anymore", "cancel order #{num}", "отменить заказ {num}",
        "取消订单", "إلغاء الطلب", "ακύρωση παραγγελίας"}},
      {"account",
       {"reset my password", "i cannot log in", "change my email to {email}", "delete my account",
        "update my address", "my login code {num} does not work", "сбросить пароль", "忘记密码",
        "نسيت كلمة المرور", "🔑 locked out"}},
      {"human",
       {"talk to a human", "real person please", "agent!", "connect me to support",
        "i want to speak to someone", "operator", "позовите оператора", "人工客服",
        "أريد التحدث مع موظف"}},
  };
  return all;
}

const std::vector<std::string> k_names = {"anna", "bob", "chen", "dmitri", "fatima", "zoe"};
const std::vector<std::string> k_items = {"shoes", "phone", "jacket", "laptop", "mug", "книга"};
const std::vector<std::string> k_fillers = {"please", "um",  "so",         "hey,",           "ok",
                                            "well",   "pls", "excuse me,", "quick question:"};
const std::vector<std::string> k_endings = {"", "", "", ".", "?", "!", "!!", "...", " ?", " :)"};
const std::vector<std::string> k_emoji = {"😀", "🙂", "🚀", "❤️", "🤔"};

std::string fill(std::string phrase, prng& r) {
  auto replace = [&](const std::string& key, const std::string& value) {
    for (size_t at = phrase.find(key); at != std::string::npos; at = phrase.find(key, at)) {
      phrase.replace(at, key.size(), value);
      at += value.size();
    }
  };
  replace("{num}", std::to_string(100 + r.below(999900)));
  replace("{name}", r.pick(k_names));
  replace("{item}", r.pick(k_items));
  replace("{email}", r.pick(k_names) + std::to_string(r.below(100)) + "@example.com");
  return phrase;
}

// One phrasing of `in`: filler, typo, capital, punctuation, emoji, odd spacing.
std::string utterance(const intent& in, prng& r) {
  std::string text = fill(r.pick(in.phrases), r);
  if (r.percent(10) && text.size() > 4 && static_cast<unsigned char>(text[2]) < 0x80 &&
      text[2] != ' ') {
    text.erase(2, 1);  // a typo
  }
  if (r.percent(15) && text[0] >= 'a' && text[0] <= 'z') text[0] = static_cast<char>(text[0] - 32);
  if (r.percent(20)) text = r.pick(k_fillers) + " " + text;
  text += r.pick(k_endings);
  if (r.percent(8)) text += " " + r.pick(k_emoji);
  if (r.percent(5)) text += "  " + std::to_string(r.below(10000));
  return text;
}

}  // namespace

std::vector<std::string> intent_names() {
  std::vector<std::string> names;
  for (const auto& in : intents()) names.push_back(in.name);
  return names;
}

std::string intent_corpus(uint32_t seed, std::string_view label_prefix, size_t lines) {
  prng r(seed);
  const bool default_prefix = label_prefix == "__label__";
  std::string out;
  for (size_t i = 0; i < lines; ++i) {
    const intent& in = intents()[i % intents().size()];
    std::string labels = std::string(label_prefix) + in.name;
    std::string text = utterance(in, r);
    if (r.percent(5) && in.name != "greet") {  // two intents on one line
      labels = std::string(label_prefix) + "greet " + labels;
      text = "hi, " + text;
    }
    if (!default_prefix) {
      for (size_t at = text.find('#'); at != std::string::npos; at = text.find('#', at)) {
        text.replace(at, 1, "no. ");
      }
    }
    const char* sep = r.percent(5) ? "\t" : " ";
    out += r.percent(10) ? text + sep + labels : labels + sep + text;
    out += '\n';
  }
  return out;
}

namespace {

const std::vector<std::string> k_syllables = {"ka",  "lo",  "mi",  "zu", "ter", "van", "qui",
                                              "sol", "bra", "nek", "ду", "ми",  "ко",  "ра"};
const std::vector<std::string> k_shared = {"the", "a", "please", "about", "my", "with", "and"};

// The i-th keyword of `label`: two or three syllables, the same on every call.
std::string topic_keyword(size_t label, size_t i) {
  prng r(label * 131 + i * 7 + 1);
  std::string w;
  const size_t n = 2 + r.below(2);
  for (size_t s = 0; s < n; ++s) w += r.pick(k_syllables);
  return w;
}

std::string topic_text(size_t label, prng& r) {
  std::string text;
  const size_t words = 2 + r.below(5);
  for (size_t w = 0; w < words; ++w) {
    if (!text.empty()) text += ' ';
    text += r.percent(35) ? r.pick(k_shared) : topic_keyword(label, r.below(4));
  }
  if (r.percent(20)) text += r.pick(k_endings);
  return text;
}

}  // namespace

std::string many_label_corpus(uint32_t seed, size_t labels, size_t lines_per_label) {
  prng r(seed);
  std::string out;
  for (size_t line = 0; line < labels * lines_per_label; ++line) {
    const size_t label = (line * 7919) % labels;  // every label, in a scrambled order
    out += "__label__topic" + std::to_string(label) + " " + topic_text(label, r) + "\n";
  }
  return out;
}

std::vector<std::string> many_label_probes(uint32_t seed, size_t labels) {
  prng r(seed);
  std::vector<std::string> texts;
  for (int i = 0; i < 60; ++i) {
    std::string text = topic_text(r.below(labels), r);
    if (r.percent(50)) text += " " + topic_text(r.below(labels), r);
    if (r.percent(20)) text += " zzyzx";
    texts.push_back(text);
  }
  return texts;
}

std::vector<std::string> probe_texts(uint32_t seed) {
  prng r(seed);
  std::vector<std::string> texts;
  for (const auto& in : intents()) {
    for (int i = 0; i < 6; ++i) texts.push_back(utterance(in, r));
  }
  const std::string cyr_word = [] {
    std::string s;
    for (int i = 0; i < 40; ++i) s += "привет";
    return s;
  }();
  std::string long_line;
  for (int i = 0; i < 300; ++i) {
    long_line += (i % 7 == 0 ? "order " : i % 5 == 0 ? "refund " : "the ");
  }
  std::string many_words;
  for (int i = 0; i < 120; ++i) many_words += "w" + std::to_string(i) + " ";
  const std::vector<std::string> edge = {
      "",
      " ",
      "\t \t",
      "?",
      "?!...",
      "!!!",
      "12345",
      "0 0 0 0",
      "hello",
      "HELLO",
      "Hello!!!",
      "goodbye friend",
      "where is my order #98765?",
      "refund 4242 please...",
      "xylophone quasar zebra",
      "qwertyuiop asdfghjkl zxcvbnm",
      std::string(300, 'a'),
      "supercalifragilisticexpialidocioussupercalifragilisticexpialidocious"
      "supercalifragilisticexpialidocious",
      cyr_word,
      "привет, как дела?",
      "γειά σου φίλε",
      "你好我想退款",
      "我的订单在哪里？",
      "مرحبا، أين طلبي؟",
      "👋",
      "👋👋👋 🙏",
      "thanks 🙏🙏",
      "hi 😀 bye 😀",
      "hello привет 你好 مرحبا γειά",
      "\xff\xfe\xfd",
      "\x80\x80 refund",
      "caf\xc3",
      "\xe4\xbd",
      "__label__greet hello",
      "__label__refund",
      "__label__ unknown",
      "__label__nope where is my order",
      "#greet hi",
      "#refund money back",
      "#",
      "hello\tthere",
      "refund\vplease\fnow\r",
      std::string("a\0b refund", 10),
      "< >",
      "<hello>",
      "<",
      ">",
      long_line,
      many_words,
  };
  texts.insert(texts.end(), edge.begin(), edge.end());
  return texts;
}

}  // namespace shoal::testing
