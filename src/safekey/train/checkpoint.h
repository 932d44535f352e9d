// Checkpoints of a training run, written atomically by every rank together: everything goes into a
// temp folder (`.tmp-checkpoint-N`) that rank 0 renames to `checkpoint-N` only once every rank has
// written its part, so a crash, a killed rank or a full disk leaves the previous checkpoints intact
// (a checkpoint is complete on every rank or absent). Layout (docs/training.md, docs/distributed.md):
//   checkpoint-N/model/                    HF model folder (config.json, safetensors, tokenizer files)
//   checkpoint-N/safety_head.safetensors   when the safety head is on
//   checkpoint-N/optimizer.safetensors     AdamW moments, per-parameter steps (master weights for bf16);
//                                          at ZeRO stage 1/2 one optimizer-rank-R-of-W.safetensors per rank
//   checkpoint-N/rng-rank-R.json           every rank's torch RNG states (CPU, and CUDA when used)
//   checkpoint-N/trainer_state.json        step, epoch, position in the epoch, data order, RNG state,
//                                          scheduler, the run config, the data fingerprint (written
//                                          last: the mark of a complete checkpoint)
#pragma once
#include <string>
#include <vector>

#include "safekey/lora/peft.h"
#include "safekey/model/decoder.h"
#include "safekey/train/objectives/dual_path_safety_head.h"
#include "safekey/train/optim.h"
#include "safekey/util/json.h"

namespace safekey::train {

struct TrainerState {
  int64_t global_step = 0;       // optimizer steps done
  int64_t epoch = 0;             // epoch the next micro-batch belongs to
  int64_t micro_in_epoch = 0;    // micro-batches of `epoch` already consumed
  int64_t total_steps = 0;       // scheduler horizon
  int64_t warmup_steps = 0;
  std::vector<int64_t> epoch_order;  // example order of `epoch`
  std::string torch_rng_state;   // hex of the default CPU generator state
  double elapsed_s = 0;          // training time so far
  json config;                   // the run config (compared on resume)
  json data_fingerprint;         // train/data_fingerprint.h (compared on resume); null in older checkpoints
  json to_json() const;
  static TrainerState from_json(const json& j, const std::string& where);
};

// Writes output_dir/checkpoint-<step> atomically on every rank of the optimizer's process group (a
// collective: every rank calls it) and returns its path. Rank 0 writes the model, head and trainer
// state; each rank its optimizer partition and RNG state. `tokenizer_src` is the folder whose
// tokenizer files are copied next to the model (may be ""). `save_dtype` ("" = the model's): the
// dtype of the saved weights; the model is written shard by shard. `head` may be null. A failure on any
// rank fails the save on every rank, names the rank(s), and leaves no temp folder.
// With `lora` (a LoRA run) the checkpoint holds the adapter in PEFT's format (adapter/) instead of
// the model, the tokenizer files beside it.
std::string save_checkpoint(const std::string& output_dir, model::DecoderModel& model, SafetyHead* head,
                            dist::ShardedAdamW& optimizer, const TrainerState& state,
                            const std::string& tokenizer_src, const std::string& save_dtype = "",
                            const lora::LoraConfig* lora = nullptr);

// Complete checkpoints (with trainer_state.json) in output_dir, oldest first.
std::vector<std::string> list_checkpoints(const std::string& output_dir);
// Deletes the oldest complete checkpoints beyond `limit` (limit <= 0: keep all) and stale temp folders.
void rotate_checkpoints(const std::string& output_dir, int64_t limit);

// Reads trainer_state.json of a checkpoint folder.
TrainerState read_trainer_state(const std::string& checkpoint_dir);
// Restores the model weights, head, this rank's optimizer state and RNG states of a checkpoint into
// existing objects. A checkpoint that lacks a rank's file (another world size or ZeRO stage) is
// refused with a message naming the file.
// A LoRA run's checkpoint restores the adapter (the base comes from --model).
void load_checkpoint_weights(const std::string& checkpoint_dir, model::DecoderModel& model, SafetyHead* head,
                             dist::ShardedAdamW& optimizer, bool lora = false);

// The torch CPU generator state as hex, and back.
std::string get_torch_rng_state();
void set_torch_rng_state(const std::string& hex);
// This process's RNG states as JSON ({"cpu": hex, "cuda": hex when `device` is CUDA}), and back.
json get_rng_states(const std::string& device);
void set_rng_states(const json& states, const std::string& where);

// Files copied with the model so that the checkpoint loads as a complete HF model folder.
const std::vector<std::string>& tokenizer_file_names();

}  // namespace safekey::train
