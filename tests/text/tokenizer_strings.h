// Deterministic generator of tricky tokenizer inputs for the conformance tests: English, code,
// CJK, emoji sequences, combining marks, digit runs in several scripts, whitespace runs with every
// White_Space edge case (and the look-alikes that are not White_Space), newlines, added-token text
// inside user text, contractions, and very long words.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace safekey::test {

class StringGen {
 public:
  explicit StringGen(uint64_t seed) : s_(seed) {}
  uint64_t next() {  // splitmix64
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
  template <typename T>
  const T& pick(const std::vector<T>& v) { return v[below(v.size())]; }

  // One string; `specials` are the tokenizer's added-token texts to sprinkle in.
  std::string make(const std::vector<std::string>& specials) {
    static const std::vector<std::string> words = {
        "the", "The", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "Hello", "world", "don't",
        "I'm", "we'll", "they're", "it's", "IT'S", "you've", "He'd", "O'Neill", "rock'n'roll", "naïve",
        "café", "résumé", "Straße", "İstanbul", "Ωmega", "данные", "жизнь", "مرحبا", "שלום", "नमस्ते",
        "ภาษาไทย", "안녕하세요", "日本語", "中文字符", "汉字测试", "カタカナ", "ひらがな", "𝒜𝒷𝒸", "𝟙𝟚𝟛",
        "safety", "reasoning", "<think>", "think", "user", "assistant"};
    static const std::vector<std::string> code = {
        "def f(x):\n    return x**2\n", "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
        "if __name__ == \"__main__\":\n    main()", "SELECT * FROM t WHERE id=42;", "x = {'a': [1, 2, 3]}",
        "#include <vector>\n", "let v: Vec<u8> = vec![0xFF; 16];", "console.log(`${a}+${b}`);",
        "    // indented comment\r\n", "a->b && c || !d", "foo_bar_baz(1e-9, -3.14)", "<div class=\"x\">&amp;</div>"};
    static const std::vector<std::string> cjk = {"我们在这里测试分词器。", "東京は日本の首都です。", "한국어 문장입니다.",
                                                 "混合English和中文", "数字１２３和全角ＡＢＣ", "「引用」『二重』【括弧】"};
    static const std::vector<std::string> emoji = {
        "😀", "👍🏽", "🏳️‍🌈", "👨‍👩‍👧‍👦", "🇺🇸", "🇯🇵", "❤️", "✅", "🧮", "🤔💭", "☕", "🫠", "🥲", "\u2764\ufe0f"};
    static const std::vector<std::string> marks = {
        "e\u0301", "a\u0308", "o\u0302\u0323", "A\u030a\u0323", "a\u0327\u0301", "n\u0303", "\u0301",
        "\u0301\u0301", "i\u0307", "\u1100\u1161\u11a8", "\u1100\u1161", "\uac00\u11a8", "\u0915\u093c",
        "\u0958", "\u212b", "\u2126", "e\u0300\u0316", "\u0344", "\u0f73", "x\u20dd", "\u0b47\u0b3e",
        "\u00e9\u0301", "Z\u0335\u0321\u0347", "\u0627\u0653", "\u05d1\u05bc", "\u3099", "\u304b\u3099",
        "\U0001d15e", "\u2000", "\u2001"};
    static const std::vector<std::string> digits = {"0", "7", "42", "123", "1234", "12345678901234567890",
                                                    "٣٤٥", "߃", "Ⅻ", "½", "²", "₃", "①②", "३४", "๓", "3.14159",
                                                    "1,000,000", "0x7f", "１２３"};
    static const std::vector<std::string> spaces = {
        " ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\r", "\r\n\r\n", " \n", "\n ", " \n \n",
        "\v", "\f", "\u0085", "\u00a0", "\u1680", "\u2000", "\u2005", "\u2009", "\u200a", "\u2028",
        "\u2029", "\u202f", "\u205f", "\u3000", "\u180e", "\u200b", "\u200c", "\u200d", "\u2060",
        "\ufeff", "\x1c", "\x1d", "\x1e", "\x1f", "  \u3000 ", "\u00a0 \u00a0", " \t\n"};
    static const std::vector<std::string> punct = {
        ".", ",", "!", "?", "...", "—", "–", "-", "_", "(", ")", "[]", "{}", "<", ">", "|", "||", "#",
        "$", "%", "&", "*", "+", "/", "\\", "`", "~", "^", "@", "=", ":", ";", "\"", "'", "’", "'s",
        "'S", "'ll", "'LL", "'Ve", "'re", "'d", "'m", "'t", "'x", "\u017fs", "'\u017f", "«»", "¿¡",
        "\x01", "\x7f", "\x1b[0m", "\ue000", "\U0010fffd"};
    std::vector<std::string> parts;
    size_t kind = below(100);
    if (kind < 3) {  // a very long word
      static const std::vector<std::string> units = {"a", "ab", "x", "9", "-", " ", "é", "中", "😀", "\n", "aB1", "_"};
      std::string u = pick(units), s;
      size_t n = 200 + below(3000);
      for (size_t i = 0; i < n; ++i) s += (below(20) == 0 ? pick(units) : u);
      return s;
    }
    size_t n = 1 + below(kind < 50 ? 12 : 30);
    std::string s;
    for (size_t i = 0; i < n; ++i) {
      size_t c = below(100);
      if (c < 28) {
        s += pick(words);
      } else if (c < 36) {
        s += pick(code);
      } else if (c < 42) {
        s += pick(cjk);
      } else if (c < 48) {
        s += pick(emoji);
      } else if (c < 56) {
        s += pick(marks);
      } else if (c < 63) {
        s += pick(digits);
      } else if (c < 80) {
        s += pick(spaces);
      } else if (c < 92) {
        s += pick(punct);
      } else if (c < 97 && !specials.empty()) {
        const std::string& sp = pick(specials);
        size_t cut = below(4);  // sometimes only a prefix of the token
        s += cut == 0 && sp.size() > 2 ? sp.substr(0, sp.size() - 1) : sp;
      } else {
        s += " ";
      }
    }
    return s;
  }

 private:
  uint64_t s_;
};

}  // namespace safekey::test
