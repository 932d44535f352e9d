// Tokenizer encode throughput: text::Tokenizer vs the HF Rust tokenizers (npm "tokenizers", run in
// the same invocation through bench/tokenizer_ref.js), single-threaded, on >= 10 MB of generated
// mixed text (English prose, code, CJK, numbers, emoji, whitespace runs), for the Qwen3 and
// Llama-3 vocabularies. Prints MB/s and tokens/s for both and checks that the token counts agree.
// Rates use CPU seconds (this thread / the node process), which stay meaningful on a busy
// machine; wall seconds are printed too.
//
//   bench_tokenizer [--mb 10] [--tokref DIR]   (DIR: scripts/install_test_refs.sh output,
//                                               default $SAFEKEY_TOKREF_DIR or build/tokref)
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "safekey/text/tokenizer.h"
#include "safekey/util/file.h"
#include "safekey/util/json.h"

using namespace safekey;

namespace {

struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
};

// ~4 KB documents of mixed text.
std::vector<std::string> make_docs(size_t total_bytes) {
  static const std::vector<std::string> en = {
      "the", "of", "and", "to", "in", "model", "safety", "reasoning", "response", "question", "however",
      "language", "training", "understanding", "sentence", "harmful", "request", "we", "it's", "don't",
      "they're", "results", "accuracy", "performance", "between", "without", "approach", "because", "would",
      "The", "This", "However,", "In", "example", "benchmark", "evaluation", "tokenizer", "Hello", "world"};
  static const std::vector<std::string> code = {
      "def forward(self, x):\n        return self.proj(x) + x\n", "for (size_t i = 0; i < n; ++i) {\n    y[i] += a * x[i];\n}\n",
      "import torch\nimport numpy as np\n", "if (err != nullptr) { return -1; }\n", "    \"key\": [1, 2, 3],\n",
      "SELECT name, COUNT(*) FROM users GROUP BY name;\n"};
  static const std::vector<std::string> cjk = {"我们提出了一种新的安全对齐方法。", "大型推理模型在复杂任务上表现出色，",
                                               "日本語の文章も含まれています。", "한국어 문장도 있습니다. ", "这个问题的答案是"};
  static const std::vector<std::string> misc = {"😀", "🚀 ", "✅", " 2024-05-17", " 3.14159", " 1,234,567", " $100",
                                                "  ", "\n\n", "\t", " (see Table 3)", " — ", "...", " naïve café"};
  Rng r{42};
  std::vector<std::string> docs;
  size_t bytes = 0;
  while (bytes < total_bytes) {
    std::string d;
    while (d.size() < 4096) {
      size_t k = r.below(100);
      if (k < 70) {
        for (int w = 0, n = 5 + static_cast<int>(r.below(20)); w < n; ++w) d += (w ? " " : "") + en[r.below(en.size())];
        d += r.below(3) ? ". " : ".\n";
      } else if (k < 80) {
        d += code[r.below(code.size())];
      } else if (k < 90) {
        d += cjk[r.below(cjk.size())];
      } else {
        d += misc[r.below(misc.size())];
      }
    }
    bytes += d.size();
    docs.push_back(std::move(d));
  }
  return docs;
}

struct Result {
  double seconds = 0, cpu_seconds = 0;
  size_t tokens = 0;
};

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

Result run_ours(const text::Tokenizer& tok, const std::vector<std::string>& docs) {
  for (size_t i = 0; i < 8 && i < docs.size(); ++i) tok.encode(docs[i]);  // warm-up
  Result r;
  auto t0 = std::chrono::steady_clock::now();
  double c0 = thread_cpu_seconds();
  for (const std::string& d : docs) r.tokens += tok.encode(d).ids.size();
  r.cpu_seconds = thread_cpu_seconds() - c0;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

bool run_reference(const std::string& tokref, const std::string& tok_path, const std::string& text_path, Result& r) {
  // Beside this source file; __FILE__ may be relative to the build folder (ccache base_dir), so
  // fall back to the path relative to the executable (build/<dir>/bench_tokenizer).
  std::string script = std::string(__FILE__).substr(0, std::string(__FILE__).find_last_of('/')) + "/tokenizer_ref.js";
  if (!safekey::path_exists(script)) {
    std::error_code ec;
    const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) script = (exe.parent_path() / "../../bench/tokenizer_ref.js").lexically_normal().string();
  }
  std::string cmd = "NODE_PATH='" + tokref + "/node_modules' RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false node '" +
                    script + "' '" + tok_path + "' '" + text_path + "'";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return false;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = pclose(p);
  if (status != 0 || out.empty()) return false;
  json j = json::parse(out);
  r.seconds = j["seconds"].get<double>();
  r.cpu_seconds = j["cpu_seconds"].get<double>();
  r.tokens = j["tokens"].get<size_t>();
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  double mb = 10;
  const char* env = std::getenv("SAFEKEY_TOKREF_DIR");
  std::string src = std::string(__FILE__).substr(0, std::string(__FILE__).find_last_of('/'));
  std::string tokref = env ? env : src + "/../build/tokref";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--mb") mb = std::stod(argv[i + 1]);
    if (a == "--tokref") tokref = argv[i + 1];
  }
  std::vector<std::string> docs = make_docs(static_cast<size_t>(mb * 1e6));
  std::string all;
  size_t bytes = 0;
  for (size_t i = 0; i < docs.size(); ++i) {
    all += docs[i];
    if (i + 1 < docs.size()) all += "\n\x1e\n";
    bytes += docs[i].size();
  }
  std::string text_path = "/tmp/safekey_bench_tokenizer_" + std::to_string(getpid()) + ".txt";
  write_file_atomic(text_path, all);
  std::printf("Tokenizer encode throughput, single thread, %.1f MB of mixed text in %zu documents\n", bytes / 1e6,
              docs.size());
  std::printf("%-8s %-22s %9s %9s %10s %12s\n", "vocab", "implementation", "wall s", "CPU s", "MB/s", "tokens/s");
  struct V {
    const char* name;
    const char* path;
  };
  for (V v : {V{"qwen3", "qwen3/package/models/tokenizer.json"}, V{"llama3", "llama3_1/package/models/tokenizer.json"}}) {
    std::string path = tokref + "/" + v.path;
    if (!path_exists(path)) {
      std::printf("%-8s skipped: %s missing (run scripts/install_test_refs.sh)\n", v.name, path.c_str());
      continue;
    }
    text::Tokenizer tok = text::Tokenizer::from_file(path);
    Result ours = run_ours(tok, docs);
    std::printf("%-8s %-22s %9.3f %9.3f %10.2f %12.0f\n", v.name, "safekey (C++)", ours.seconds, ours.cpu_seconds,
                bytes / 1e6 / ours.cpu_seconds, ours.tokens / ours.cpu_seconds);
    Result ref;
    if (run_reference(tokref, path, text_path, ref)) {
      std::printf("%-8s %-22s %9.3f %9.3f %10.2f %12.0f\n", v.name, "HF tokenizers (Rust)", ref.seconds,
                  ref.cpu_seconds, bytes / 1e6 / ref.cpu_seconds, ref.tokens / ref.cpu_seconds);
      std::printf("%-8s speed-up %.2fx (CPU time), token counts %s (%zu vs %zu)\n", v.name,
                  ref.cpu_seconds / ours.cpu_seconds,
                  ref.tokens == ours.tokens ? "agree" : "DIFFER", ours.tokens, ref.tokens);
    } else {
      std::printf("%-8s HF tokenizers (Rust): not run (node or npm tokenizers missing)\n", v.name);
    }
  }
  std::remove(text_path.c_str());
  return 0;
}
