// Loading a model folder for generation, shared by `safekey generate`, `safekey serve` and
// `safekey eval`: the decoder (in --dtype, on --device), its tokenizer, its chat template when it has one, and a
// Generator configured from the common generation flags (flags/infer.inc).
#pragma once
#include <memory>
#include <string>

#include "cli.h"
#include "safekey/infer/generator.h"
#include "safekey/model/decoder.h"
#include "safekey/text/chat_template.h"
#include "safekey/text/tokenizer.h"

namespace safekey {

// What differs between the commands.
struct GenerationSetup {
  std::string command;              // names the command in messages ("generate", "serve", "eval")
  std::string without_template;     // what happens without a chat template (said on stderr)
  bool progress = true;             // tokens/s lines on stderr (not for the server)
  bool prompt_overflow_flag = true; // the command has --truncate-prompt (else: overflow is an error)
};

struct LoadedModel {
  std::string dir;
  model::DecoderModel model{nullptr};
  std::unique_ptr<text::Tokenizer> tok;
  std::unique_ptr<text::ChatFormat> chat;  // null: the folder has no chat template
  std::unique_ptr<infer::Generator> gen;
};

// --adapter DIR: attaches a PEFT LoRA adapter to the model (unmerged, applied on the fly); a no-op
// without the flag. Says what it attached on stderr.
void apply_adapter_flag(const cli::Args& a, model::DecoderModel& m);

// --dtype: float32 or bfloat16; anything else is an error naming the flag.
torch::ScalarType generation_dtype(const cli::Args& a);

// --device: cpu, cuda or cuda:N; an unknown name, or CUDA where this build or machine has none, is
// an error naming the flag.
torch::Device compute_device(const cli::Args& a);

std::unique_ptr<LoadedModel> load_for_generation(const cli::Args& a, const std::string& model_dir,
                                                 const GenerationSetup& setup);

// The sampling flags (max-new-tokens, temperature, top-p, top-k, repetition-penalty, stop, seed),
// validated; errors name "<command> flags".
infer::SamplingParams sampling_params(const cli::Args& a, const std::string& command);

// Python's str.strip() on ASCII whitespace (the reference strips each response).
std::string strip_response(const std::string& s);

}  // namespace safekey
