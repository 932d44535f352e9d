// `safekey serve`: an OpenAI-compatible server for one model (docs/server.md).
//
//   safekey serve --model DIR [--host 127.0.0.1] [--port 8000] [--api-key K] [--served-model-name NAME]
//
// Features and their flags: auth (--api-key, env SAFEKEY_API_KEY), limits (--max-body-bytes,
// --max-tokens-limit, --default-max-tokens, --request-timeout, --workers), batching (--batch-size,
// --max-context), reasoning_content (--reasoning-parser deepseek_r1|none), shutdown on SIGINT/SIGTERM
// after running requests finish (--drain-timeout).
#include <atomic>
#include <chrono>
#include <csignal>
#include <iostream>
#include <thread>

#include "cli.h"
#include "model_setup.h"
#include "safekey/infer/generator.h"
#include "safekey/infer/prompt.h"
#include "safekey/lora/peft.h"
#include "safekey/model/adapter.h"
#include "safekey/model/decoder.h"
#include "safekey/serve/server.h"
#include "safekey/tensor/runtime.h"
#include "safekey/text/chat_template.h"
#include "safekey/text/tokenizer.h"
#include "safekey/util/error.h"

namespace safekey {
namespace {

volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_signal(int) { g_stop = 1; }

int run_serve(cli::Args& a) {
  runtime::set_threads(static_cast<int>(a.i64("threads")));
  std::string model_dir = a.required("model");
  std::string parser = a.str("reasoning-parser");
  SK_CHECK(parser == "deepseek_r1" || parser == "none",
           "--reasoning-parser must be deepseek_r1 or none (got '", parser, "')");

  const auto loaded =
      load_for_generation(a, model_dir, {"serve", "/v1/chat/completions will fail", false, false});
  infer::Generator& gen = *loaded->gen;

  serve::ServerOptions so;
  so.host = a.str("host");
  so.port = static_cast<int>(a.i64("port"));
  so.api_key = a.str("api-key");
  so.max_waiting = a.i64("max-waiting");
  SK_CHECK(so.max_waiting >= 0, "--max-waiting must be >= 0");
  so.served_model_name = a.str("served-model-name");
  if (so.served_model_name.empty()) {
    std::string d = model_dir;
    while (d.size() > 1 && d.back() == '/') d.pop_back();
    so.served_model_name = d.substr(d.find_last_of('/') == std::string::npos ? 0 : d.find_last_of('/') + 1);
  }
  SK_CHECK(a.i64("max-body-bytes") > 0, "--max-body-bytes must be > 0");
  so.max_body_bytes = static_cast<size_t>(a.i64("max-body-bytes"));
  so.limits.max_tokens_limit = a.i64("max-tokens-limit");
  so.limits.default_max_tokens = a.i64("default-max-tokens");
  SK_CHECK(so.limits.max_tokens_limit >= 1 && so.limits.default_max_tokens >= 1,
           "--max-tokens-limit and --default-max-tokens must be >= 1");
  so.request_timeout_ms = static_cast<int64_t>(a.f64("request-timeout") * 1000);
  so.drain_ms = static_cast<int64_t>(a.f64("drain-timeout") * 1000);
  so.worker_threads = static_cast<int>(a.i64("workers"));
  SK_CHECK(so.worker_threads >= 1, "--workers must be >= 1");
  so.reasoning_parser = parser == "deepseek_r1";
  // --lora-modules name=DIR,...: each adapter on a model that shares the base's weights.
  for (const auto& item : a.list("lora-modules")) {
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    SK_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < item.size(), "--lora-modules: expected name=DIR, got '",
             item, "'");
    serve::ServerOptions::LoraModule lm;
    lm.name = item.substr(0, eq);
    lm.source = item.substr(eq + 1);
    lm.model = model::share_weights(loaded->model);
    const auto adapter = lora::load_adapter(lm.source);
    model::attach_adapter(lm.model, adapter, lm.source);
    lm.model->eval();
    std::cerr << "serve: LoRA module " << lm.name << " = " << lm.source << " (r=" << adapter.config.r << ", "
              << adapter.modules.size() << " modules)\n";
    so.lora_modules.push_back(std::move(lm));
  }

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  serve::Server server(gen, so);
  server.start();
  // The port line is what scripts and tests wait for.
  std::cout << "serving " << so.served_model_name << " on http://" << so.host << ":" << server.port()
            << " (" << runtime::describe() << ")" << std::endl;
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::cerr << "serve: shutting down (running requests get " << a.str("drain-timeout") << " s)\n";
  server.stop();
  std::cerr << "serve: stopped\n";
  return 0;
}

cli::Registrar reg({"serve", "OpenAI-compatible HTTP server (/v1/chat/completions, /v1/completions)",
                    "safekey serve --model DIR [--host 127.0.0.1] [--port 8000] [--api-key K]",
                    run_serve});

}  // namespace
}  // namespace safekey
