// Toy tokenizer and model folders; see toy_model.h.
#include "safekey/demo/toy_model.h"

#include "safekey/model/config.h"
#include "safekey/model/decoder.h"
#include "safekey/text/bpe_trainer.h"
#include "safekey/text/tokenizer.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"

namespace safekey::demo {

const char* const kToyChatTemplate =
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
    "{{bos_token}}{%- for message in messages %}"
    "{%- if message['role'] == 'user' %}{{'<｜User｜>' + message['content']}}{%- endif %}"
    "{%- if message['role'] == 'assistant' and message['content'] is not none %}"
    "{% set content = message['content'] %}"
    "{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}"
    "{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}{%- endif %}"
    "{%- endfor -%}"
    "{% if add_generation_prompt %}{{'<｜Assistant｜><think>\\n'}}{% endif %}";

static const char* kBos = "<｜begin▁of▁sentence｜>";
static const char* kEos = "<｜end▁of▁sentence｜>";

json ToyModelSpec::to_json() const {
  return {{"vocab_size", vocab_size},
          {"hidden_size", hidden_size},
          {"intermediate_size", intermediate_size},
          {"num_hidden_layers", num_hidden_layers},
          {"num_attention_heads", num_attention_heads},
          {"num_key_value_heads", num_key_value_heads},
          {"max_position_embeddings", max_position_embeddings}};
}

void write_toy_tokenizer(const std::vector<std::string>& corpus, int64_t vocab_size, const std::string& dir) {
  text::TrainOptions opt;
  opt.vocab_size = static_cast<size_t>(vocab_size);
  opt.special_tokens = {kBos, kEos};
  opt.added_tokens = {"<｜User｜>", "<｜Assistant｜>", "<think>", "</think>"};
  opt.bos_token = kBos;
  opt.pattern = "qwen";  // digits split one by one, as Qwen2's pre-tokenizer does
  const ordered_json tj = text::train_bpe(corpus, opt);
  make_dirs(dir);
  write_file_atomic(path_join(dir, "tokenizer.json"), tj.dump(2) + "\n");
  ordered_json cfg;
  cfg["tokenizer_class"] = "LlamaTokenizerFast";
  cfg["bos_token"] = kBos;
  cfg["eos_token"] = kEos;
  cfg["pad_token"] = kEos;
  cfg["add_bos_token"] = true;
  cfg["add_eos_token"] = false;
  cfg["clean_up_tokenization_spaces"] = false;
  cfg["model_max_length"] = 512;
  cfg["chat_template"] = kToyChatTemplate;
  write_file_atomic(path_join(dir, "tokenizer_config.json"), cfg.dump(2) + "\n");
}

void write_toy_model(const ToyModelSpec& spec, const std::string& tokenizer_dir, uint64_t seed,
                     const std::string& dir) {
  const auto tok = text::Tokenizer::from_file(tokenizer_dir);
  ordered_json c;
  c["architectures"] = {"Qwen2ForCausalLM"};
  c["model_type"] = "qwen2";
  c["vocab_size"] = tok.vocab_size();
  c["hidden_size"] = spec.hidden_size;
  c["intermediate_size"] = spec.intermediate_size;
  c["num_hidden_layers"] = spec.num_hidden_layers;
  c["num_attention_heads"] = spec.num_attention_heads;
  c["num_key_value_heads"] = spec.num_key_value_heads;
  c["max_position_embeddings"] = spec.max_position_embeddings;
  c["hidden_act"] = "silu";
  c["rms_norm_eps"] = 1e-6;
  c["rope_theta"] = 10000.0;
  c["initializer_range"] = 0.02;
  c["tie_word_embeddings"] = true;
  c["use_sliding_window"] = false;
  c["sliding_window"] = spec.max_position_embeddings;
  c["max_window_layers"] = spec.num_hidden_layers;
  c["attention_dropout"] = 0.0;
  c["use_cache"] = true;
  c["bos_token_id"] = tok.token_to_id(kBos);
  c["eos_token_id"] = tok.token_to_id(kEos);
  c["torch_dtype"] = "float32";
  const auto cfg = model::ModelConfig::from_json(json::parse(c.dump()), "toy config.json");
  model::DecoderModel m(cfg);
  model::init_weights(m, seed);
  make_dirs(dir);
  model::save_model(m, dir);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    write_file_atomic(path_join(dir, f), read_file(path_join(tokenizer_dir, f)));
  ordered_json gen = {{"bos_token_id", c["bos_token_id"]}, {"eos_token_id", c["eos_token_id"]}, {"do_sample", false}};
  write_file_atomic(path_join(dir, "generation_config.json"), gen.dump(2) + "\n");
}

}  // namespace safekey::demo
