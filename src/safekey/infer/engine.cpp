#include "safekey/infer/engine.h"

#include <algorithm>
#include <unordered_set>

#include "safekey/util/error.h"

namespace safekey::infer {

struct Engine::Row {
  Sequence seq;
  std::mt19937_64 rng;
  std::vector<int64_t> out;             // generated ids
  std::unordered_set<int64_t> seen;     // prompt + generated (repetition penalty)
  std::vector<int64_t> seen_list;
  std::unique_ptr<TextStream> text;
  int64_t pad = 0;       // left padding columns of this row in the cache
  int64_t next_pos = 0;  // position id of the next token fed (= real tokens so far)
  int64_t pending = -1;  // sampled token not yet fed to the model
  bool done = false;
  std::string finish_reason;

  void see(int64_t t) {
    if (seen.insert(t).second) seen_list.push_back(t);
  }
};

Engine::Engine(model::DecoderModel model, EngineOptions opts, EventFn on_event)
    : model_(std::move(model)), opts_(std::move(opts)), on_event_(std::move(on_event)) {
  SK_CHECK(opts_.max_batch_size >= 1, "engine: max_batch_size must be >= 1");
  SK_CHECK(opts_.prefill_chunk >= 1, "engine: prefill_chunk must be >= 1");
  SK_CHECK(opts_.decode != nullptr, "engine: a decode function is required");
  if (!opts_.decode_with_special) opts_.decode_with_special = opts_.decode;
}

Engine::~Engine() = default;

void Engine::submit(Sequence s) {
  SK_CHECK(!s.prompt_ids.empty(), "engine: sequence ", s.id, " has an empty prompt");
  queue_.push_back(std::move(s));
}

bool Engine::idle() const { return queue_.empty() && rows_.empty(); }
size_t Engine::running() const { return rows_.size(); }

int64_t Engine::step() {
  torch::NoGradGuard no_grad;
  int64_t before = generated_;
  // Cancelled rows stop before any more work is spent on them.
  for (auto& r : rows_)
    if (!r->done && r->seq.cancel && r->seq.cancel->load()) finish(*r, "abort");
  retire_finished();
  if (static_cast<int64_t>(rows_.size()) < opts_.max_batch_size && !queue_.empty()) admit();
  retire_finished();
  if (!rows_.empty()) decode_step();
  retire_finished();
  return generated_ - before;
}

// Left-pads the time axis (dim 2 of the cache, dim 1 of the mask) by `n` hidden columns.
static torch::Tensor pad_left(const torch::Tensor& t, int64_t n, int64_t dim) {
  if (n == 0) return t;
  auto shape = t.sizes().vec();
  shape[dim] = n;
  return torch::cat({torch::zeros(shape, t.options()), t}, dim);
}

void Engine::admit() {
  // Take as many waiting sequences as there are free rows; cancelled ones finish right away.
  std::vector<std::unique_ptr<Row>> fresh;
  while (!queue_.empty() &&
         static_cast<int64_t>(rows_.size() + fresh.size()) < opts_.max_batch_size) {
    auto row = std::make_unique<Row>();
    row->seq = std::move(queue_.front());
    queue_.pop_front();
    row->rng.seed(row->seq.seed);
    const auto& p = row->seq.params;
    row->text = std::make_unique<TextStream>(
        p.skip_special_tokens ? opts_.decode : opts_.decode_with_special, p.stop);
    for (int64_t t : row->seq.prompt_ids) row->see(t);
    if (row->seq.cancel && row->seq.cancel->load()) {
      finish(*row, "abort");
      continue;
    }
    fresh.push_back(std::move(row));
  }
  if (fresh.empty()) return;

  // Left-padded prompt batch: ids [n, L], mask [n, L], positions [n, L].
  int64_t n = static_cast<int64_t>(fresh.size()), L = 0;
  for (auto& r : fresh) L = std::max<int64_t>(L, r->seq.prompt_ids.size());
  auto ids = torch::zeros({n, L}, torch::kInt64);
  auto mask = torch::zeros({n, L}, torch::kBool);
  auto pos = torch::zeros({n, L}, torch::kInt64);
  auto ids_a = ids.accessor<int64_t, 2>();
  auto mask_a = mask.accessor<bool, 2>();
  auto pos_a = pos.accessor<int64_t, 2>();
  for (int64_t b = 0; b < n; ++b) {
    const auto& p = fresh[b]->seq.prompt_ids;
    int64_t pad = L - static_cast<int64_t>(p.size());
    fresh[b]->pad = pad;
    fresh[b]->next_pos = static_cast<int64_t>(p.size());
    for (int64_t j = 0; j < static_cast<int64_t>(p.size()); ++j) {
      ids_a[b][pad + j] = p[j];
      mask_a[b][pad + j] = true;
      pos_a[b][pad + j] = j;
    }
  }

  auto device = model_->parameters().front().device();
  model::KVCache cache;
  torch::Tensor last_logits;  // [n, V]
  for (int64_t s = 0; s < L; s += opts_.prefill_chunk) {
    int64_t e = std::min(L, s + opts_.prefill_chunk);
    model::ForwardInput in;
    in.input_ids = ids.slice(1, s, e).to(device);
    in.position_ids = pos.slice(1, s, e).to(device);
    in.key_mask = mask.slice(1, 0, e).to(device);
    in.cache = &cache;
    in.compute_logits = e == L;
    if (e == L) in.logits_positions = torch::full({n, 1}, e - s - 1, torch::kInt64).to(device);
    auto outp = model_->forward(in);
    if (e == L) last_logits = outp.logits.select(1, 0).to(torch::kCPU, torch::kFloat32);
  }

  // Merge into the running batch.
  if (rows_.empty()) {
    cache_ = std::move(cache);
    key_mask_ = mask.to(device);
  } else {
    int64_t S = cache_.length(), T = std::max(S, L);
    for (auto& r : rows_) r->pad += T - S;
    for (auto& r : fresh) r->pad += T - L;
    for (size_t l = 0; l < cache_.keys.size(); ++l) {
      cache_.keys[l] = torch::cat({pad_left(cache_.keys[l], T - S, 2), pad_left(cache.keys[l], T - L, 2)}, 0);
      cache_.values[l] =
          torch::cat({pad_left(cache_.values[l], T - S, 2), pad_left(cache.values[l], T - L, 2)}, 0);
    }
    key_mask_ = torch::cat({pad_left(key_mask_, T - S, 1), pad_left(mask.to(device), T - L, 1)}, 0);
  }
  size_t first = rows_.size();
  for (auto& r : fresh) rows_.push_back(std::move(r));
  sample_rows(last_logits, first);
}

void Engine::decode_step() {
  // Every row has a pending token (rows that finished were retired).
  int64_t B = static_cast<int64_t>(rows_.size());
  auto device = key_mask_.device();
  auto ids = torch::empty({B, 1}, torch::kInt64);  // [B, 1]
  auto pos = torch::empty({B, 1}, torch::kInt64);  // [B, 1]
  auto ids_a = ids.accessor<int64_t, 2>();
  auto pos_a = pos.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    ids_a[b][0] = rows_[b]->pending;
    pos_a[b][0] = rows_[b]->next_pos;
  }
  key_mask_ = torch::cat({key_mask_, torch::ones({B, 1}, key_mask_.options())}, 1);  // [B, S+1]
  model::ForwardInput in;
  in.input_ids = ids.to(device);
  in.position_ids = pos.to(device);
  in.key_mask = key_mask_;
  in.cache = &cache_;
  auto outp = model_->forward(in);
  for (auto& r : rows_) {
    r->next_pos += 1;
    r->pending = -1;
  }
  auto logits = outp.logits.select(1, outp.logits.size(1) - 1).to(torch::kCPU, torch::kFloat32);
  sample_rows(logits, 0);
}

int64_t Engine::sample_rows(const torch::Tensor& logits, size_t first) {
  // logits: [n, V] for rows first .. first + n
  int64_t n = logits.size(0), made = 0;
  for (int64_t i = 0; i < n; ++i) {
    Row& r = *rows_[first + i];
    const auto& p = r.seq.params;
    torch::Tensor row = logits[i];  // [V]
    if (p.repetition_penalty != 1.0) {
      row = row.clone();
      apply_repetition_penalty(row, r.seen_list, p.repetition_penalty);
    }
    int64_t tok = choose_token(row, p, r.rng);
    ++made;
    accept_token(r, tok);
  }
  generated_ += made;
  return made;
}

bool Engine::accept_token(Row& r, int64_t tok) {
  const auto& p = r.seq.params;
  r.out.push_back(tok);
  r.see(tok);
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
  on_event_(r.seq.id, r.text->take_ready(), true, &c);
}

void Engine::retire_finished() {
  bool any = false;
  for (auto& r : rows_) any = any || r->done;
  if (!any) return;
  std::vector<int64_t> keep;
  std::vector<std::unique_ptr<Row>> kept;
  for (size_t i = 0; i < rows_.size(); ++i) {
    if (rows_[i]->done) continue;
    keep.push_back(static_cast<int64_t>(i));
    kept.push_back(std::move(rows_[i]));
  }
  rows_ = std::move(kept);
  if (rows_.empty()) {
    cache_.clear();
    key_mask_ = torch::Tensor();
    return;
  }
  auto idx = torch::tensor(keep, torch::kInt64).to(key_mask_.device());
  cache_.select_rows(idx);
  key_mask_ = key_mask_.index_select(0, idx);
  // Columns that are padding in every remaining row are dropped.
  int64_t trim = rows_[0]->pad;
  for (auto& r : rows_) trim = std::min(trim, r->pad);
  if (trim > 0) {
    for (size_t l = 0; l < cache_.keys.size(); ++l) {
      cache_.keys[l] = cache_.keys[l].slice(2, trim).contiguous();
      cache_.values[l] = cache_.values[l].slice(2, trim).contiguous();
    }
    key_mask_ = key_mask_.slice(1, trim).contiguous();
    for (auto& r : rows_) r->pad -= trim;
  }
}

}  // namespace safekey::infer
