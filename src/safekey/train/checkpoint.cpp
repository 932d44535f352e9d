#include "safekey/train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "safekey/model/adapter.h"
#include "safekey/train/zero3.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"

namespace fs = std::filesystem;

namespace safekey::train {

json TrainerState::to_json() const {
  return json{{"global_step", global_step},   {"epoch", epoch},
              {"micro_in_epoch", micro_in_epoch}, {"total_steps", total_steps},
              {"warmup_steps", warmup_steps}, {"epoch_order", epoch_order},
              {"torch_rng_state", torch_rng_state}, {"elapsed_s", elapsed_s},
              {"config", config}, {"data_fingerprint", data_fingerprint}};
}

TrainerState TrainerState::from_json(const json& j, const std::string& where) {
  TrainerState s;
  s.global_step = json_get<int64_t>(j, "global_step", where);
  s.epoch = json_get<int64_t>(j, "epoch", where);
  s.micro_in_epoch = json_get<int64_t>(j, "micro_in_epoch", where);
  s.total_steps = json_get<int64_t>(j, "total_steps", where);
  s.warmup_steps = json_get<int64_t>(j, "warmup_steps", where);
  s.epoch_order = json_get<std::vector<int64_t>>(j, "epoch_order", where);
  s.torch_rng_state = json_get<std::string>(j, "torch_rng_state", where);
  s.elapsed_s = json_get_or<double>(j, "elapsed_s", 0.0, where);
  s.config = j.at("config");
  s.data_fingerprint = j.value("data_fingerprint", json());  // absent in checkpoints of older versions
  return s;
}

const std::vector<std::string>& tokenizer_file_names() {
  static const std::vector<std::string> names = {
      "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
      "merges.txt", "added_tokens.json", "chat_template.jinja", "chat_template.json",
      "generation_config.json"};
  return names;
}

namespace {

std::string to_hex(const at::Tensor& st) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  const uint8_t* p = st.data_ptr<uint8_t>();
  for (int64_t i = 0; i < st.numel(); ++i) {
    out += hex[p[i] >> 4];
    out += hex[p[i] & 15];
  }
  return out;
}

at::Tensor from_hex(const std::string& h, const std::string& where) {
  SK_CHECK(h.size() % 2 == 0, where, ": RNG state has an odd hex length");
  auto st = torch::empty({static_cast<int64_t>(h.size() / 2)}, torch::kUInt8);
  uint8_t* p = st.data_ptr<uint8_t>();
  auto nib = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    fail(where, ": RNG state is not lower-case hex");
  };
  for (size_t i = 0; i < h.size() / 2; ++i) p[i] = static_cast<uint8_t>(nib(h[2 * i]) * 16 + nib(h[2 * i + 1]));
  return st;
}

std::string generator_state(at::Generator gen) {
  std::lock_guard<std::mutex> lock(gen.mutex());
  return to_hex(gen.get_state());
}

void set_generator_state(at::Generator gen, const std::string& hex, const std::string& where) {
  auto st = from_hex(hex, where);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(st);
}

std::string rank_file(const char* prefix, int rank, const char* suffix) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s%05d%s", prefix, rank, suffix);
  return buf;
}

}  // namespace

std::string get_torch_rng_state() { return generator_state(at::detail::getDefaultCPUGenerator()); }

void set_torch_rng_state(const std::string& h) {
  set_generator_state(at::detail::getDefaultCPUGenerator(), h, "torch_rng_state");
}

json get_rng_states(const std::string& device) {
  json j{{"cpu", get_torch_rng_state()}};
  torch::Device d(device);
  if (d.is_cuda())
    j["cuda"] = generator_state(at::globalContext().defaultGenerator(torch::Device(torch::kCUDA, d.has_index() ? d.index() : 0)));
  j["device"] = device;
  return j;
}

void set_rng_states(const json& j, const std::string& where) {
  set_generator_state(at::detail::getDefaultCPUGenerator(), json_get<std::string>(j, "cpu", where), where);
  if (j.contains("cuda")) {
    torch::Device d(json_get<std::string>(j, "device", where));
    SK_CHECK(d.is_cuda(), where, ": a CUDA RNG state for device ", d.str());
    set_generator_state(at::globalContext().defaultGenerator(torch::Device(torch::kCUDA, d.has_index() ? d.index() : 0)),
                        json_get<std::string>(j, "cuda", where), where);
  }
}

std::string save_checkpoint(const std::string& output_dir, model::DecoderModel& model, SafetyHead* head,
                            dist::ShardedAdamW& optimizer, const TrainerState& state,
                            const std::string& tokenizer_src, const std::string& save_dtype,
                            const lora::LoraConfig* lora) {
  auto& group = optimizer.group();
  const int rank = group.rank();
  const std::string name = cat("checkpoint-", state.global_step);
  const std::string final_dir = path_join(output_dir, name);
  const std::string tmp = path_join(output_dir, ".tmp-" + name);
  std::error_code ec;
  std::string err;
  auto guarded = [&](auto&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      err = e.what();
    }
  };
  // Every phase ends with an agreement: one failing rank fails the save on all of them.
  auto agree = [&] {
    const auto failed = group.failed_ranks(err.empty());
    if (failed.empty()) return;
    if (rank == 0) fs::remove_all(tmp, ec);
    std::string who;
    for (int r : failed) who += (who.empty() ? "" : ", ") + std::to_string(r);
    if (group.size() == 1) fail("saving ", final_dir, " failed: ", err, " (the previous checkpoints are intact)");
    fail("saving ", final_dir, " failed on rank ", who,
         err.empty() ? std::string() : cat(" (rank ", rank, ": ", err, ")"), " (the previous checkpoints are intact)");
  };
  if (rank == 0) guarded([&] {
      fs::remove_all(tmp, ec);
      make_dirs(path_join(tmp, lora ? "adapter" : "model"));
    });
  agree();
  guarded([&] {
    // ZeRO-3: every rank gathers the layers one at a time while rank 0 writes them.
    if (optimizer.stage() == 3) save_model_zero3(model, optimizer, path_join(tmp, "model"), save_dtype, rank == 0);
    if (rank == 0) {
      // LoRA: only the adapter (float32 unless --save-dtype says otherwise), in PEFT's format.
      if (lora) lora::save_adapter(path_join(tmp, "adapter"), model::adapter_of(model, *lora), save_dtype);
      else if (optimizer.stage() != 3) model::save_model(model, path_join(tmp, "model"), 5'000'000'000LL, save_dtype);
      if (!tokenizer_src.empty())
        for (const auto& f : tokenizer_file_names()) {
          const std::string src = path_join(tokenizer_src, f);
          if (path_exists(src)) write_file_atomic(path_join(path_join(tmp, lora ? "adapter" : "model"), f), read_file(src));
        }
      if (head) save_safety_head(*head, path_join(tmp, "safety_head.safetensors"));
    }
    if (optimizer.writes_state()) optimizer.save_state(path_join(tmp, optimizer.state_file_name()));
    const auto device = model->parameters().front().device().str();
    write_file_atomic(path_join(tmp, rank_file("rng-rank-", rank, ".json")), get_rng_states(device).dump());
  });
  agree();
  if (rank == 0) guarded([&] {
      // trainer_state.json last: its presence marks a complete checkpoint.
      write_file_atomic(path_join(tmp, "trainer_state.json"), state.to_json().dump(1));
      fsync_dir(tmp);
      if (path_exists(final_dir)) fs::remove_all(final_dir);
      fs::rename(tmp, final_dir);
      fsync_dir(output_dir);
    });
  agree();
  return final_dir;
}

std::vector<std::string> list_checkpoints(const std::string& output_dir) {
  std::vector<std::pair<int64_t, std::string>> found;
  if (!is_directory(output_dir)) return {};
  for (const auto& e : fs::directory_iterator(output_dir)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("checkpoint-", 0) != 0 || !e.is_directory()) continue;
    if (!path_exists(path_join(e.path().string(), "trainer_state.json"))) continue;
    try {
      found.emplace_back(std::stoll(n.substr(11)), e.path().string());
    } catch (...) {
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

void rotate_checkpoints(const std::string& output_dir, int64_t limit) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(output_dir))
    if (e.path().filename().string().rfind(".tmp-checkpoint-", 0) == 0) fs::remove_all(e.path(), ec);
  if (limit <= 0) return;
  auto all = list_checkpoints(output_dir);
  for (size_t i = 0; i + static_cast<size_t>(limit) < all.size(); ++i) fs::remove_all(all[i], ec);
}

TrainerState read_trainer_state(const std::string& checkpoint_dir) {
  const std::string p = path_join(checkpoint_dir, "trainer_state.json");
  return TrainerState::from_json(read_json_file(p), p);
}

void load_checkpoint_weights(const std::string& checkpoint_dir, model::DecoderModel& model, SafetyHead* head,
                             dist::ShardedAdamW& optimizer, bool lora) {
  const int rank = optimizer.group().rank();
  for (const auto& f : optimizer.all_state_file_names())
    SK_CHECK(path_exists(path_join(checkpoint_dir, f)), checkpoint_dir, ": no ", f, " (the checkpoint was written ",
             "with another world size or ZeRO stage; resume with the ones it was written with, see "
             "docs/distributed.md)");
  if (lora) {  // the adapter; the frozen base came from --model
    const std::string adapter_dir = path_join(checkpoint_dir, "adapter");
    model::load_adapter_weights(model, lora::load_adapter(adapter_dir), adapter_dir);
  } else {  // into the run's model, tensor by tensor: a resume never holds a second model
    const std::string model_dir = path_join(checkpoint_dir, "model");
    const auto saved = model::ModelConfig::from_file(path_join(model_dir, "config.json"));
    SK_CHECK(saved.parameter_shapes().size() == model->config().parameter_shapes().size(), checkpoint_dir,
             ": the checkpoint's model has ", saved.parameter_shapes().size(), " parameters, the run's model ",
             model->config().parameter_shapes().size());
    model::load_weights(model, model_dir);  // ZeRO-3: the layers' placeholders are only checked
    if (optimizer.stage() == 3) load_layer_slices(optimizer, model_dir);
  }
  if (head) {
    const std::string hp = path_join(checkpoint_dir, "safety_head.safetensors");
    SK_CHECK(path_exists(hp), checkpoint_dir, ": no safety_head.safetensors but the safety head is on");
    load_safety_head(*head, hp);
  }
  optimizer.load_state(path_join(checkpoint_dir, optimizer.state_file_name()));
  const std::string rng = path_join(checkpoint_dir, rank_file("rng-rank-", rank, ".json"));
  if (path_exists(rng)) set_rng_states(read_json_file(rng), rng);
  else SK_CHECK(rank == 0, checkpoint_dir, ": no ", rng, " for rank ", rank);
}

}  // namespace safekey::train
