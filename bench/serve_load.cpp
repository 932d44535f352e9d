// The server under load: N concurrent clients x M requests each, in R rounds, against `safekey
// serve` on loopback (the checks and figures: bench/serve_load.h; docs/server.md, "Under load").
//
//   build/release/bench_serve_load [--clients 200] [--requests 50] [--rounds 2] [--max-tokens 16]
//       [--cancel-max-tokens 3000] [--seed 1] [--deadline-s 900] [--rss-tolerance-mib 64]
//       [--drain-bound-s 10] [--request-timeout-s 300]
//       [--safekey build/release/safekey] [--model DIR] [--server-args "--threads 2 ..."]
//       [--api-key KEY]
//       [--url http://127.0.0.1:PORT --server-pid PID --model-name NAME]
//       [--tokenizer build/tokref/r1_distill_qwen_tokenizer.json]
//       [--template
//       ../shared/data/hf-configs/reconstructed/DeepSeek-R1-Distill-Qwen-7B/tokenizer_config.json]
//
// Without --url it starts `safekey serve --model DIR --port 0 --api-key KEY` itself (the key:
// --api-key, default "load-test-key"), reads the port from its "serving ... on http://HOST:PORT"
// line, and stops it with SIGTERM at the end (its exit status is one more check). Without --model
// it writes a tiny random Qwen2 folder (hidden 32, 2 layers, 4096 positions) with the real
// R1-Distill-Qwen tokenizer and chat template. With --url it drives a running server; --server-pid
// gives its RSS. Exit status: 0 when every check passed, 1 otherwise (2: bad flags or no server).
// Run from the repository root (the default paths are relative to it).
#include "serve_load.h"

#include <sys/stat.h>

#include <cstdlib>
#include <sstream>

#include "common.h"
#include "safekey/model/decoder.h"
#include "safekey/util/file.h"

using namespace safekey;

namespace {

// A tiny random Qwen2 folder as tests/infer/tiny_model.h makes it, with max_positions 4096 so that
// a closed stream can ask for thousands of tokens.
void write_tiny_model(const std::string& dir, const std::string& tokenizer,
                      const std::string& tmpl) {
  json cfg = {{"architectures", {"Qwen2ForCausalLM"}},
              {"model_type", "qwen2"},
              {"vocab_size", 151936},
              {"hidden_size", 32},
              {"intermediate_size", 64},
              {"num_hidden_layers", 2},
              {"num_attention_heads", 4},
              {"num_key_value_heads", 2},
              {"max_position_embeddings", 4096},
              {"rms_norm_eps", 1e-6},
              {"rope_theta", 10000.0},
              {"tie_word_embeddings", true},
              {"initializer_range", 0.2},
              {"bos_token_id", 151646},
              {"eos_token_id", 151643},
              {"torch_dtype", "float32"},
              {"use_sliding_window", false}};
  model::DecoderModel m(model::ModelConfig::from_json(cfg, "bench_serve_load tiny model"));
  model::init_weights(m, 7);
  model::save_model(m, dir);
  write_file_atomic(path_join(dir, "tokenizer.json"), read_file(tokenizer));
  write_file_atomic(path_join(dir, "tokenizer_config.json"), read_file(tmpl));
}

std::vector<std::string> split_words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  load::LoadOptions o;
  std::string url, exe = bench::exe_dir() + "/safekey", model_dir, server_args, model_name;
  std::string tokenizer = "build/tokref/r1_distill_qwen_tokenizer.json";
  std::string tmpl =
      "../shared/data/hf-configs/reconstructed/DeepSeek-R1-Distill-Qwen-7B/tokenizer_config.json";
  std::string api_key = "load-test-key";
  bool key_given = false;
  for (int i = 1; i < argc; i += 2) {
    const std::string a = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "bench_serve_load: %s needs a value\n", a.c_str());
      return 2;
    }
    const std::string v = argv[i + 1];
    if (a == "--clients")
      o.clients = std::atoi(v.c_str());
    else if (a == "--requests")
      o.requests = std::atoi(v.c_str());
    else if (a == "--rounds")
      o.rounds = std::atoi(v.c_str());
    else if (a == "--max-tokens")
      o.max_tokens = std::atoi(v.c_str());
    else if (a == "--cancel-max-tokens")
      o.cancel_max_tokens = std::atoi(v.c_str());
    else if (a == "--seed")
      o.seed = std::strtoull(v.c_str(), nullptr, 10);
    else if (a == "--deadline-s")
      o.deadline_s = std::atof(v.c_str());
    else if (a == "--rss-tolerance-mib")
      o.rss_tolerance_mib = std::atof(v.c_str());
    else if (a == "--drain-bound-s")
      o.drain_bound_s = std::atof(v.c_str());
    else if (a == "--request-timeout-s")
      o.request_timeout_s = std::atof(v.c_str());
    else if (a == "--safekey")
      exe = v;
    else if (a == "--model")
      model_dir = v;
    else if (a == "--server-args")
      server_args = v;
    else if (a == "--api-key")
      api_key = v, key_given = true;
    else if (a == "--url")
      url = v;
    else if (a == "--server-pid")
      o.server_pid = std::atoi(v.c_str());
    else if (a == "--model-name")
      model_name = v;
    else if (a == "--tokenizer")
      tokenizer = v;
    else if (a == "--template")
      tmpl = v;
    else {
      std::fprintf(stderr, "bench_serve_load: unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  if (o.clients < 1 || o.requests < 1 || o.rounds < 1 || o.max_tokens < 1 ||
      o.cancel_max_tokens < 1) {
    std::fprintf(
        stderr,
        "bench_serve_load: --clients, --requests, --rounds and the token counts must be >= 1\n");
    return 2;
  }
  load::ServerChild child;
  std::string tmp_dir;
  int server_exit = 0;
  try {
    if (!url.empty()) {  // a running server: http://HOST:PORT
      const size_t h = url.find("://"), colon = url.rfind(':');
      if (h == std::string::npos || colon == std::string::npos || colon < h + 3) {
        std::fprintf(stderr, "bench_serve_load: --url must be http://HOST:PORT (got %s)\n",
                     url.c_str());
        return 2;
      }
      o.host = url.substr(h + 3, colon - h - 3);
      o.port = std::atoi(url.c_str() + colon + 1);
      o.api_key = key_given ? api_key : "";
      o.model = model_name;
      if (o.model.empty()) {  // the served name, from /v1/models
        load::LoadClient lc(o);
        auto r = lc.call("GET", "/v1/models", o.api_key);
        json j = r && r->status == 200 ? json::parse(r->body, nullptr, false) : json();
        if (!j.is_object() || !j.contains("data") || j["data"].empty()) {
          std::fprintf(stderr, "bench_serve_load: GET %s/v1/models failed (%s)\n", url.c_str(),
                       r ? std::to_string(r->status).c_str() : "no response");
          return 2;
        }
        o.model = j["data"][0]["id"].get<std::string>();
      }
    } else {
      if (model_dir.empty()) {
        char tmpl_dir[] = "/tmp/bench_serve_load-XXXXXX";
        SK_CHECK(mkdtemp(tmpl_dir), "mkdtemp failed");
        tmp_dir = model_dir = tmpl_dir;
        write_tiny_model(model_dir, tokenizer, tmpl);
      }
      o.api_key = api_key;
      o.model = model_name.empty() ? "load-model" : model_name;
      std::vector<std::string> args = {"serve", "--model",   model_dir, "--port",
                                       "0",     "--api-key", o.api_key, "--served-model-name",
                                       o.model};
      for (auto& w : split_words(server_args)) args.push_back(w);
      child = load::start_server(exe, args);
      if (child.port <= 0) {
        std::fprintf(
            stderr,
            "bench_serve_load: %s serve printed no 'serving ... on http://HOST:PORT' line\n",
            exe.c_str());
        load::stop_server(child, 5);
        return 2;
      }
      o.port = child.port;
      o.server_pid = child.pid;
    }
    std::printf(
        "bench_serve_load: %d clients x %d requests x %d rounds against %s:%d (model %s%s), "
        "max_tokens 1..%d, closed streams ask for %d, seed %llu\n",
        o.clients, o.requests, o.rounds, o.host.c_str(), o.port, o.model.c_str(),
        o.api_key.empty() ? "" : ", with an API key", o.max_tokens, o.cancel_max_tokens,
        static_cast<unsigned long long>(o.seed));
    std::fflush(stdout);
    load::LoadReport rep = load::run_load(o);
    if (child.pid > 0) {
      server_exit = load::stop_server(child);
      if (server_exit != 0)
        rep.failures.push_back(cat("the server exited with ", server_exit, " on SIGTERM"));
    }
    load::print_report(o, rep);
    if (!tmp_dir.empty()) std::system(("rm -rf '" + tmp_dir + "'").c_str());
    std::printf("%s\n", rep.failures.empty() ? "all checks passed" : "SOME CHECKS FAILED");
    return rep.failures.empty() ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_serve_load: %s\n", e.what());
    load::stop_server(child, 5);
    if (!tmp_dir.empty()) std::system(("rm -rf '" + tmp_dir + "'").c_str());
    return 2;
  }
}
