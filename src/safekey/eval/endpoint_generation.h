// Generation through any OpenAI-compatible server (vLLM, SGLang, `safekey serve` on another
// machine): the benchmark's messages are sent to /v1/chat/completions (the server applies the chat
// template), a bounded number of requests in flight, retries as the judge client
// (net/chat_client.h). The reply becomes the same text local generation produces: when the server
// splits the thinking into `reasoning_content`, text = reasoning + "</think>" + content; otherwise
// the content as is (a `<think>` block inside it stays). Prefilling items need the served model's
// tokenizer and chat template: `render` (the CLI's --generate-tokenizer) renders the whole prompt
// locally, generation prompt and prefill cut to --prefilling tokens as local generation does, and it
// goes to /v1/completions as a raw prompt. docs/evaluation.md, "Generation through an endpoint".
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "safekey/eval/benchmarks.h"
#include "safekey/net/chat_client.h"

namespace safekey::eval {

struct EndpointGenerationOptions {
  net::ChatClientOptions client;  // endpoint, key, retries, timeouts
  std::string model;              // the served model name
  int concurrency = 8;            // requests in flight
  // Sampling, sent as the OpenAI / vLLM body fields of the same names.
  double temperature = 0;
  double top_p = 1;
  int64_t top_k = -1;  // -1 = not sent
  double repetition_penalty = 1;
  int64_t max_tokens = -1;
  int64_t seed = -1;  // -1 = not sent
  std::vector<std::string> stop;
  bool progress = true;
  // The final prompt text of an item as local generation renders it (chat template, generation
  // prompt, prefill); set, prefilling items are sent as that raw prompt. Unset, they are an error.
  std::function<std::string(const BenchItem&)> render;
};

struct EndpointCompletion {
  std::string text;    // as local generation's Completion::text
  std::string prompt;  // the raw prompt sent (prefilling items); "" when the server rendered it
  std::string finish_reason;
  int64_t prompt_tokens = 0, completion_tokens = 0;
};

// The request for one item: its messages for /v1/chat/completions, or for a prefilling item the raw
// prompt opts.render gives it (without a renderer such an item is an error naming the flag).
net::ChatRequest endpoint_request(const BenchItem& item, const EndpointGenerationOptions& opts);

// The local-generation text from a chat reply (see the header comment).
std::string text_from_reply(const net::ChatReply& reply);

// One completion per item, in order. Authentication and network failures stop the run with the
// endpoint named; any other failed request throws naming the item.
std::vector<EndpointCompletion> generate_via_endpoint(const std::vector<BenchItem>& items,
                                                      const EndpointGenerationOptions& opts);

}  // namespace safekey::eval
