#include "safekey/infer/generator.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>

#include "safekey/infer/engine.h"
#include "safekey/infer/prompt.h"
#include "safekey/util/error.h"

namespace safekey::infer {

Generator::Generator(model::DecoderModel model, const text::Tokenizer& tokenizer,
                     const text::ChatFormat* chat_format, GeneratorOptions opts)
    : model_(std::move(model)), tok_(tokenizer), chat_(chat_format), opts_(std::move(opts)) {
  model_->eval();
  eos_ = opts_.eos_token_ids;
  if (eos_.empty()) eos_ = default_eos_ids(model_->config(), tok_);
  next_seed_ = opts_.seed;
}

Generator::~Generator() = default;

int64_t Generator::max_context() const {
  return opts_.max_context > 0 ? opts_.max_context : model_->config().max_position_embeddings;
}

std::string Generator::render(const Request& r) const {
  if (!r.prompt_ids.empty()) return "";
  return render_prompt(r, tok_, chat_);
}

std::vector<int64_t> Generator::prompt_ids(const Request& r, const SamplingParams& p,
                                           size_t index) const {
  std::vector<int64_t> ids = r.prompt_ids.empty() ? encode_text(tok_, render(r), opts_.add_special_tokens) : r.prompt_ids;
  return fit_context(std::move(ids), p, max_context(), opts_.overflow, index);
}

Sequence Generator::make_sequence(const Request& r, const SamplingParams& p, size_t index,
                                  uint64_t id) {
  p.validate(cat("request ", index));
  Sequence s;
  s.id = id;
  s.prompt = render(r);
  s.prompt_ids = r.prompt_ids.empty() ? encode_text(tok_, s.prompt, opts_.add_special_tokens) : r.prompt_ids;
  s.prompt_ids = fit_context(std::move(s.prompt_ids), p, max_context(), opts_.overflow, index);
  int64_t vocab = model_->config().vocab_size;
  for (int64_t t : s.prompt_ids)
    SK_CHECK(t >= 0 && t < vocab, "request ", index, ": prompt token id ", t,
             " is outside the model's vocabulary (", vocab, ")");
  s.params = p;
  s.params.max_new_tokens =
      std::min<int64_t>(p.max_new_tokens, max_context() - static_cast<int64_t>(s.prompt_ids.size()));
  s.seed = p.seed ? *p.seed : next_seed_++;
  s.cancel = r.cancel;
  return s;
}

int64_t Generator::kv_bytes_per_position() const {
  const auto& c = model_->config();
  const auto elem = static_cast<int64_t>(model_->parameters().front().element_size());
  return 2 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim * elem;
}

EngineOptions Generator::engine_options() const {
  EngineOptions eo;
  eo.max_batch_size = opts_.max_batch_size;
  eo.max_model_len = max_context();
  if (opts_.kv_cache_bytes > 0) {
    const int64_t per_seq = kv_bytes_per_position() * max_context();
    const int64_t fits = opts_.kv_cache_bytes / per_seq;
    SK_CHECK(fits >= 1, "--kv-cache-memory-gb: ", opts_.kv_cache_bytes / double(1 << 30), " GiB holds no sequence of ",
             max_context(), " positions (one needs ", per_seq / double(1 << 30), " GiB); raise it or lower --max-context");
    eo.max_batch_size = std::min(eo.max_batch_size, fits);
    eo.kv_capacity = max_context();
  }
  eo.eos_token_ids = eos_;
  if (auto obs = opts_.observer) {
    eo.hook = [obs](StepView& v, Engine& e) { obs->on_step(v, e); };
    eo.on_finish = [obs](uint64_t id, Completion& c) { obs->on_finish(id, c); };
  }
  const text::Tokenizer* tok = &tok_;
  eo.decode = [tok](const std::vector<int64_t>& ids) { return decode_ids(*tok, ids, true); };
  eo.decode_with_special = [tok](const std::vector<int64_t>& ids) {
    return decode_ids(*tok, ids, false);
  };
  return eo;
}

std::vector<Completion> Generator::generate(const std::vector<Request>& requests,
                                            const SamplingParams& params) {
  return generate(requests, std::vector<SamplingParams>(requests.size(), params));
}

std::vector<Completion> Generator::generate(const std::vector<Request>& requests,
                                            const std::vector<SamplingParams>& params,
                                            const StreamFn& on_text) {
  SK_CHECK(params.size() == requests.size(), "generate: ", requests.size(), " requests but ",
           params.size(), " sampling parameter sets");
  std::vector<Sequence> seqs;
  seqs.reserve(requests.size());
  for (size_t i = 0; i < requests.size(); ++i)
    seqs.push_back(make_sequence(requests[i], params[i], i, i));

  std::vector<Completion> out(requests.size());
  size_t done = 0;
  auto on_event = [&](uint64_t id, const std::string& delta, bool finished, const Completion* c) {
    if (on_text) on_text(id, delta, finished, c);
    if (finished) {
      out[id] = *c;
      ++done;
    }
  };
  Engine engine(model_, engine_options(), on_event);
  // Longest prompts first: rows admitted together have similar lengths (less padding), and the
  // long ones do not end up alone at the end.
  std::vector<size_t> order(seqs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return seqs[a].prompt_ids.size() > seqs[b].prompt_ids.size();
  });
  for (size_t i : order) engine.submit(std::move(seqs[i]));

  using clock = std::chrono::steady_clock;
  auto t0 = clock::now(), last_log = t0;
  int64_t tokens = 0;
  while (!engine.idle()) {
    tokens += engine.step();
    auto now = clock::now();
    if (opts_.progress && (now - last_log > std::chrono::seconds(5) || engine.idle())) {
      double s = std::chrono::duration<double>(now - t0).count();
      std::fprintf(stderr, "generate: %zu/%zu done, %zu running, %lld tokens, %.1f tokens/s\n",
                   done, requests.size(), engine.running(), static_cast<long long>(tokens),
                   s > 0 ? tokens / s : 0.0);
      last_log = now;
    }
  }
  return out;
}

}  // namespace safekey::infer
