// See model_setup.h.
#include "model_setup.h"

#include <iostream>

#include "safekey/infer/engine.h"
#include "safekey/infer/guard.h"
#include "safekey/infer/prompt.h"
#include "safekey/lora/peft.h"
#include "safekey/model/adapter.h"
#include "safekey/util/error.h"

namespace safekey {

torch::ScalarType generation_dtype(const cli::Args& a) {
  const std::string d = a.str("dtype");
  if (d == "float32") return torch::kFloat32;
  if (d == "bfloat16") return torch::kBFloat16;
  fail("--dtype must be float32 or bfloat16 (got '", d, "')");
}

void apply_adapter_flag(const cli::Args& a, model::DecoderModel& m) {
  const std::string dir = a.str("adapter");
  if (dir.empty()) return;
  const auto adapter = lora::load_adapter(dir);
  model::attach_adapter(m, adapter, dir);
  m->eval();
  std::cerr << "adapter: " << dir << " (LoRA r=" << adapter.config.r << ", scale " << adapter.config.scale() << ", "
            << adapter.modules.size() << " modules)\n";
}

torch::Device compute_device(const cli::Args& a) {
  const std::string name = a.str("device");
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(name);
  } catch (const std::exception&) {
    fail("--device: invalid device '", name, "' (use cpu, cuda or cuda:N)");
  }
  SK_CHECK(!device.is_cuda() || torch::cuda::is_available(), "--device ", name,
           ": CUDA is not available in this build/machine");
  return device;
}

std::unique_ptr<LoadedModel> load_for_generation(const cli::Args& a, const std::string& model_dir,
                                                 const GenerationSetup& setup) {
  auto m = std::make_unique<LoadedModel>();
  m->dir = model_dir;
  m->model = model::load_model(model_dir, generation_dtype(a), compute_device(a));
  apply_adapter_flag(a, m->model);
  m->tok = std::make_unique<text::Tokenizer>(text::Tokenizer::from_file(model_dir));
  try {
    m->chat = std::make_unique<text::ChatFormat>(text::ChatFormat::from_path(model_dir));
  } catch (const Error& e) {
    std::cerr << setup.command << ": no chat template (" << e.what() << "); " << setup.without_template << "\n";
  }
  infer::GeneratorOptions go;
  go.max_batch_size = a.i64("batch-size");
  go.max_context = a.i64("max-context");
  SK_CHECK(a.f64("kv-cache-memory-gb") >= 0, "--kv-cache-memory-gb must be >= 0");
  go.kv_cache_bytes = static_cast<int64_t>(a.f64("kv-cache-memory-gb") * double(int64_t{1} << 30));
  go.overflow = setup.prompt_overflow_flag && a.on("truncate-prompt") ? infer::OverflowPolicy::TruncateLeft
                                                                      : infer::OverflowPolicy::Error;
  go.seed = static_cast<uint64_t>(a.i64("seed"));
  go.progress = setup.progress;
  go.add_special_tokens = a.on("add-special-tokens");
  go.eos_token_ids = infer::default_eos_ids(m->model->config(), *m->tok, model_dir);
  if (!a.str("guard").empty()) {
    infer::GuardOptions g;
    g.head_path = a.str("guard");
    g.threshold = a.f64("guard-threshold");
    g.score = infer::parse_guard_score(a.str("guard-score"));
    g.key_sentence = a.str("guard-key");
    g.separator = a.str("guard-separator");
    auto guard = std::make_shared<infer::KeySentenceGuard>(g, *m->tok, m->model->config().hidden_size);
    std::cerr << setup.command << ": key-sentence guard " << guard->options().head_path << " (score "
              << infer::guard_score_name(g.score) << " >= " << g.threshold << " forces \"" << g.key_sentence << "\")\n";
    go.observer = guard;
  }
  m->gen = std::make_unique<infer::Generator>(m->model, *m->tok, m->chat.get(), go);
  if (go.kv_cache_bytes > 0) {
    const auto eo = m->gen->engine_options();
    std::cerr << setup.command << ": KV cache " << eo.max_batch_size << " sequences x " << eo.kv_capacity
              << " positions = " << static_cast<double>(eo.max_batch_size * eo.kv_capacity * m->gen->kv_bytes_per_position()) / double(1 << 30)
              << " GiB (allocated by the first request)\n";
  }
  return m;
}

infer::SamplingParams sampling_params(const cli::Args& a, const std::string& command) {
  infer::SamplingParams p;
  p.max_new_tokens = a.i64("max-new-tokens");
  p.temperature = a.f64("temperature");
  p.top_p = a.f64("top-p");
  p.top_k = a.i64("top-k");
  p.repetition_penalty = a.f64("repetition-penalty");
  p.stop = a.list("stop");
  p.seed = static_cast<uint64_t>(a.i64("seed"));
  p.validate(command + " flags");
  return p;
}

std::string strip_response(const std::string& s) {
  const char* ws = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

}  // namespace safekey
