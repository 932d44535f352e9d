#include "safekey/infer/engine.h"

#include <algorithm>

#include "safekey/util/error.h"

namespace safekey::infer {

struct Engine::Row {
  Sequence seq;
  std::mt19937_64 rng;
  std::vector<int64_t> out;             // generated ids
  std::deque<int64_t> forced;           // tokens to emit next instead of chosen ones
  std::unique_ptr<TextStream> text;
  int64_t next_pos = 0;  // position id of the next token fed (= real tokens so far)
  int64_t pending = -1;  // chosen token not yet fed to the model
  bool done = false;
  std::string finish_reason;
};

Engine::Engine(model::DecoderModel model, EngineOptions opts, EventFn on_event)
    : model_(std::move(model)), opts_(std::move(opts)), on_event_(std::move(on_event)) {
  SK_CHECK(opts_.max_batch_size >= 1, "engine: max_batch_size must be >= 1");
  SK_CHECK(opts_.prefill_chunk >= 1, "engine: prefill_chunk must be >= 1");
  SK_CHECK(opts_.max_model_len >= 0 && opts_.kv_capacity >= 0, "engine: max_model_len and kv_capacity must be >= 0");
  SK_CHECK(opts_.max_model_len == 0 || opts_.kv_capacity <= opts_.max_model_len, "engine: kv_capacity ",
           opts_.kv_capacity, " exceeds max_model_len ", opts_.max_model_len);
  SK_CHECK(opts_.decode != nullptr, "engine: a decode function is required");
  if (!opts_.decode_with_special) opts_.decode_with_special = opts_.decode;
  slots_.resize(static_cast<size_t>(opts_.max_batch_size));
  cache_.reserve(opts_.max_batch_size, opts_.kv_capacity, opts_.max_model_len);
  seen_ = torch::zeros({opts_.max_batch_size, model_->config().vocab_size},
                       torch::TensorOptions().dtype(torch::kBool).device(device()));
}

Engine::~Engine() = default;

torch::Device Engine::device() const { return model_->parameters().front().device(); }

void Engine::submit(Sequence s) {
  SK_CHECK(!s.prompt_ids.empty(), "engine: sequence ", s.id, " has an empty prompt");
  const int64_t need = static_cast<int64_t>(s.prompt_ids.size()) + s.params.max_new_tokens;
  SK_CHECK(opts_.max_model_len == 0 || need <= opts_.max_model_len, "engine: sequence ", s.id, " needs ", need,
           " positions (prompt ", s.prompt_ids.size(), " + max_new_tokens ", s.params.max_new_tokens,
           ") but max_model_len is ", opts_.max_model_len);
  auto row = std::make_unique<Row>();
  row->seq = std::move(s);
  row->rng.seed(row->seq.seed);
  const auto& p = row->seq.params;
  row->text = std::make_unique<TextStream>(p.skip_special_tokens ? opts_.decode : opts_.decode_with_special, p.stop);
  queue_.push_back(std::move(row));
}

bool Engine::idle() const { return queue_.empty() && running_ == 0; }

bool Engine::force(uint64_t id, const std::vector<int64_t>& tokens) {
  auto add = [&](Row& r) {
    if (r.seq.id != id || r.done) return false;
    r.forced.insert(r.forced.end(), tokens.begin(), tokens.end());
    return true;
  };
  for (int64_t i = 0; i < running_; ++i)
    if (add(*slots_[static_cast<size_t>(i)])) return true;
  for (auto& r : queue_)
    if (add(*r)) return true;
  return false;
}

int64_t Engine::step() {
  torch::NoGradGuard no_grad;
  int64_t before = generated_;
  // Cancelled sequences stop before any more work is spent on them, queued ones included.
  for (int64_t i = 0; i < running_; ++i) {
    Row& r = *slots_[static_cast<size_t>(i)];
    if (!r.done && r.seq.cancel && r.seq.cancel->load()) finish(r, "abort");
  }
  for (auto it = queue_.begin(); it != queue_.end();) {
    if ((*it)->seq.cancel && (*it)->seq.cancel->load()) {
      finish(**it, "abort");
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
  retire_finished();
  if (running_ < opts_.max_batch_size && !queue_.empty()) admit();
  retire_finished();
  if (running_ > 0) decode_step();
  retire_finished();
  return generated_ - before;
}

void Engine::admit() {
  // Fresh rows take the free slots after the running ones (which always occupy 0..running_-1).
  const int64_t first = running_;
  int64_t n = 0;
  while (!queue_.empty() && first + n < opts_.max_batch_size) {
    slots_[static_cast<size_t>(first + n)] = std::move(queue_.front());
    queue_.pop_front();
    ++n;
  }
  if (n == 0) return;
  const auto dev = device();

  // Right-padded prompt batch: row b's tokens at columns [0, len_b), padding (id 0) after them.
  int64_t L = 0;
  std::vector<int64_t> lens(static_cast<size_t>(n)), cache_slots(static_cast<size_t>(n));
  for (int64_t b = 0; b < n; ++b) {
    Row& r = *slots_[static_cast<size_t>(first + b)];
    lens[static_cast<size_t>(b)] = static_cast<int64_t>(r.seq.prompt_ids.size());
    L = std::max(L, lens[static_cast<size_t>(b)]);
    cache_slots[static_cast<size_t>(b)] = first + b;
    cache_.set_length(first + b, 0);
    // The repetition penalty's ids start as the prompt's.
    auto ids = torch::tensor(r.seq.prompt_ids, torch::kLong).to(dev);
    seen_[first + b].zero_().index_fill_(0, ids, true);
    r.next_pos = lens[static_cast<size_t>(b)];
  }
  auto ids = torch::zeros({n, L}, torch::kInt64);
  auto ids_a = ids.accessor<int64_t, 2>();
  for (int64_t b = 0; b < n; ++b) {
    const auto& p = slots_[static_cast<size_t>(first + b)]->seq.prompt_ids;
    for (size_t j = 0; j < p.size(); ++j) ids_a[b][static_cast<int64_t>(j)] = p[j];
  }
  ids = ids.to(dev);
  torch::Tensor pos = torch::arange(L, torch::TensorOptions().dtype(torch::kLong).device(dev)).unsqueeze(0).expand({n, L});
  torch::Tensor last_logits, last_hidden;  // [n, V], [n, H]: at each row's last prompt token
  torch::Tensor hidden_sum;                // [n, H] float32 over each row's prompt (for a hook)
  const torch::Tensor len_t = torch::tensor(lens, torch::kLong).to(dev).unsqueeze(1);  // [n, 1]
  for (int64_t s = 0; s < L; s += opts_.prefill_chunk) {
    const int64_t e = std::min(L, s + opts_.prefill_chunk);
    // Rows whose last prompt token lies in this chunk take their logits from it.
    std::vector<int64_t> ending, at(static_cast<size_t>(n));
    for (int64_t b = 0; b < n; ++b) {
      const int64_t last = lens[static_cast<size_t>(b)] - 1;
      at[static_cast<size_t>(b)] = std::clamp<int64_t>(last - s, 0, e - s - 1);
      if (last >= s && last < e) ending.push_back(b);
    }
    model::ForwardInput in;
    in.input_ids = ids.slice(1, s, e);
    in.position_ids = pos.slice(1, s, e);
    in.cache = &cache_;
    in.cache_slots = cache_slots;
    in.compute_logits = !ending.empty();
    torch::Tensor where = torch::tensor(at, torch::kLong).to(dev).unsqueeze(1);  // [n, 1]
    if (in.compute_logits) in.logits_positions = where;
    auto outp = model_->forward(in);
    if (opts_.hook) {
      // Each row's real columns of this chunk: [s, min(e, len)).
      auto col = torch::arange(s, e, torch::TensorOptions().dtype(torch::kLong).device(dev)).unsqueeze(0);
      auto keep = (col < len_t).unsqueeze(-1).to(torch::kFloat32);                   // [n, e-s, 1]
      auto part = (outp.hidden.to(torch::kFloat32) * keep).sum(1);                   // [n, H]
      hidden_sum = hidden_sum.defined() ? hidden_sum + part : part;
    }
    if (ending.empty()) continue;
    torch::Tensor logits = outp.logits.select(1, 0).to(torch::kFloat32);                       // [n, V]
    torch::Tensor hidden = outp.hidden.gather(1, where.unsqueeze(-1).expand({n, 1, outp.hidden.size(2)}))
                               .select(1, 0);                                                    // [n, H]
    if (!last_logits.defined()) {
      last_logits = torch::empty_like(logits);
      last_hidden = torch::empty_like(hidden);
    }
    torch::Tensor rows = torch::tensor(ending, torch::kLong).to(dev);
    last_logits.index_copy_(0, rows, logits.index_select(0, rows));
    last_hidden.index_copy_(0, rows, hidden.index_select(0, rows));
  }
  // The padding columns beyond each row's prompt are free again: its next tokens overwrite them.
  for (int64_t b = 0; b < n; ++b) cache_.set_length(first + b, lens[static_cast<size_t>(b)]);
  running_ = first + n;
  choose(last_logits, last_hidden, first, n, hidden_sum);
}

void Engine::decode_step() {
  // Every running row has a pending token (rows that finished were retired).
  const int64_t B = running_;
  auto host = torch::empty({2, B}, torch::kInt64);  // [ids; positions], one transfer
  auto h = host.accessor<int64_t, 2>();
  std::vector<int64_t> cache_slots(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const Row& r = *slots_[static_cast<size_t>(b)];
    h[0][b] = r.pending;
    h[1][b] = r.next_pos;
    cache_slots[static_cast<size_t>(b)] = b;
  }
  torch::Tensor dev = host.to(device());
  model::ForwardInput in;
  in.input_ids = dev[0].unsqueeze(1);     // [B, 1]
  in.position_ids = dev[1].unsqueeze(1);  // [B, 1]
  in.cache = &cache_;
  in.cache_slots = std::move(cache_slots);
  auto outp = model_->forward(in);
  for (int64_t b = 0; b < B; ++b) {
    Row& r = *slots_[static_cast<size_t>(b)];
    r.next_pos += 1;
    r.pending = -1;
  }
  choose(outp.logits.select(1, 0).to(torch::kFloat32), outp.hidden.select(1, 0), 0, B);
}

void Engine::choose(torch::Tensor logits, const torch::Tensor& hidden, int64_t first, int64_t n,
                    const torch::Tensor& prompt_hidden_sum) {
  if (opts_.hook) {
    StepView view;
    for (int64_t i = 0; i < n; ++i) {
      const Row& r = *slots_[static_cast<size_t>(first + i)];
      const auto g = static_cast<int64_t>(r.out.size());
      view.ids.push_back(r.seq.id);
      view.generated.push_back(g);
      view.fed.push_back(g > 0 ? r.out.back() : -1);
      view.prompt_len.push_back(static_cast<int64_t>(r.seq.prompt_ids.size()));
    }
    view.hidden = hidden;
    view.logits = logits;
    view.prefill = prompt_hidden_sum.defined();
    view.prompt_hidden_sum = prompt_hidden_sum;
    opts_.hook(view, *this);
  }
  std::vector<const SamplingParams*> params;
  std::vector<double> uniforms;
  bool penalty = false;
  for (int64_t i = 0; i < n; ++i) {
    Row& r = *slots_[static_cast<size_t>(first + i)];
    params.push_back(&r.seq.params);
    penalty = penalty || r.seq.params.repetition_penalty != 1.0;
    // Greedy rows draw nothing: their RNG stream stays as it was.
    uniforms.push_back(r.seq.params.greedy() ? 0.0 : std::uniform_real_distribution<double>(0.0, 1.0)(r.rng));
  }
  torch::Tensor seen = penalty ? seen_.narrow(0, first, n) : torch::Tensor();
  torch::Tensor chosen = choose_tokens(logits, seen, params, uniforms).to(torch::kCPU);  // the one transfer
  std::vector<int64_t> toks(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    Row& r = *slots_[static_cast<size_t>(first + i)];
    int64_t tok = chosen.data_ptr<int64_t>()[i];
    if (!r.forced.empty()) {
      tok = r.forced.front();
      r.forced.pop_front();
    }
    toks[static_cast<size_t>(i)] = tok;
    accept_token(r, tok);
  }
  const auto dev = seen_.device();
  seen_.narrow(0, first, n)
      .index_put_({torch::arange(n, torch::TensorOptions().dtype(torch::kLong).device(dev)),
                   torch::tensor(toks, torch::kLong).to(dev)},
                  torch::ones({}, seen_.options()));
  generated_ += n;
}

bool Engine::accept_token(Row& r, int64_t tok) {
  const auto& p = r.seq.params;
  r.out.push_back(tok);
  bool is_eos = !p.ignore_eos && std::find(opts_.eos_token_ids.begin(), opts_.eos_token_ids.end(),
                                           tok) != opts_.eos_token_ids.end();
  bool is_stop_id = std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), tok) !=
                    p.stop_token_ids.end();
  if (is_eos || is_stop_id) {
    finish(r, "stop");
    return true;
  }
  if (r.text->push(tok)) {
    finish(r, "stop");
    return true;
  }
  if (static_cast<int64_t>(r.out.size()) >= p.max_new_tokens) {
    finish(r, "length");
    return true;
  }
  r.pending = tok;
  std::string delta = r.text->take_ready();
  if (!delta.empty()) on_event_(r.seq.id, delta, false, nullptr);
  return false;
}

void Engine::finish(Row& r, const std::string& reason) {
  if (r.done) return;
  r.done = true;
  r.pending = -1;
  r.finish_reason = reason;
  r.text->finish();
  Completion c;
  c.text = r.text->text();
  c.token_ids = r.out;
  c.finish_reason = reason;
  c.stop_string = r.text->matched_stop();
  c.prompt_tokens = static_cast<int64_t>(r.seq.prompt_ids.size());
  c.prompt = r.seq.prompt;
  if (opts_.on_finish) opts_.on_finish(r.seq.id, c);
  on_event_(r.seq.id, r.text->take_ready(), true, &c);
}

void Engine::retire_finished() {
  // Free the slots of finished rows, then close the holes: the highest running row moves into the
  // lowest hole, so the running rows stay in slots 0..running_-1.
  int64_t lo = 0, hi = running_ - 1;
  for (int64_t i = 0; i < running_; ++i) {
    if (slots_[static_cast<size_t>(i)]->done) {
      slots_[static_cast<size_t>(i)].reset();
      cache_.set_length(i, 0);
    }
  }
  for (;;) {
    while (lo <= hi && slots_[static_cast<size_t>(lo)]) ++lo;   // lowest hole
    while (hi >= lo && !slots_[static_cast<size_t>(hi)]) --hi;  // highest running row
    if (lo >= hi) break;
    cache_.move_slot(hi, lo);
    seen_[lo].copy_(seen_[hi]);
    slots_[static_cast<size_t>(lo)] = std::move(slots_[static_cast<size_t>(hi)]);
  }
  running_ = 0;
  while (running_ < static_cast<int64_t>(slots_.size()) && slots_[static_cast<size_t>(running_)]) ++running_;
}

}  // namespace safekey::infer
