#include "safekey/eval/judge_runner.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <mutex>
#include <thread>

#include "safekey/util/file.h"

namespace safekey::eval {

// ---- SHA-256 (FIPS 180-4) ---------------------------------------------------------------------
std::string sha256_hex(const std::string& data) {
  static const uint32_t k[64] = {
      0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
      0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
      0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
      0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
      0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
      0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
      0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
      0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::string msg = data;
  const uint64_t bits = static_cast<uint64_t>(data.size()) * 8;
  msg += static_cast<char>(0x80);
  while (msg.size() % 64 != 56) msg += '\0';
  for (int i = 7; i >= 0; --i) msg += static_cast<char>((bits >> (i * 8)) & 0xff);
  auto rotr = [](uint32_t x, int n) { return (x >> n) | (x << (32 - n)); };
  for (size_t off = 0; off < msg.size(); off += 64) {
    uint32_t w[64];
    for (int i = 0; i < 16; ++i) {
      const auto* p = reinterpret_cast<const unsigned char*>(msg.data() + off + i * 4);
      w[i] = (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
    }
    for (int i = 16; i < 64; ++i) {
      uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; ++i) {
      uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }
  char out[65];
  for (int i = 0; i < 8; ++i) std::snprintf(out + i * 8, 9, "%08x", h[i]);
  return std::string(out, 64);
}

// ---- cache ------------------------------------------------------------------------------------
std::string ReplyCache::key(const std::string& judge, const std::string& model,
                            const std::string& prompt) {
  return sha256_hex(judge + '\0' + model + '\0' + prompt);
}

bool ReplyCache::get(const std::string& key, std::string* reply) const {
  if (!enabled()) return false;
  std::string p = path_join(path_join(dir_, key.substr(0, 2)), key + ".json");
  if (!path_exists(p)) return false;
  try {
    json j = json::parse(read_file(p));
    *reply = j.at("reply").get<std::string>();
    return true;
  } catch (const std::exception&) {
    return false;  // a damaged entry is simply paid for again (and rewritten)
  }
}

void ReplyCache::put(const std::string& key, const std::string& judge, const std::string& model,
                     const std::string& reply) const {
  if (!enabled()) return;
  std::string dir = path_join(dir_, key.substr(0, 2));
  make_dirs(dir);
  json j = {{"judge", judge}, {"model", model}, {"reply", reply}};
  write_file_atomic(path_join(dir, key + ".json"),
                    j.dump(-1, ' ', false, json::error_handler_t::replace));
}

// ---- runner -----------------------------------------------------------------------------------
json JudgeCounts::to_json() const {
  return {{"total", total},
          {"ok", ok},
          {"unparsed", unparsed},
          {"error", error},
          {"harmful", harmful},
          {"refused", refused},
          {"full_compliance", full_compliance},
          {"full_refusal", full_refusal},
          {"partial_refusal", partial_refusal},
          {"cached", cached},
          {"requests", requests}};
}

std::string label_key(const std::string& judge, Part part) { return judge + ":" + part_name(part); }

JudgeCounts run_judge(json& doc, const Judge& judge, const JudgeRunOptions& opts) {
  struct Task {
    size_t item, resp;
  };
  std::vector<Task> tasks;
  json& data = doc["data"];
  for (size_t i = 0; i < data.size(); ++i)
    for (size_t r = 0; r < data[i]["response"].size(); ++r) tasks.push_back({i, r});
  std::vector<Verdict> verdicts(tasks.size());

  const bool is_model = judge.request_for(JudgeInput{}).has_value();
  std::unique_ptr<net::ChatClient> client;
  if (is_model) {
    SK_CHECK(!opts.client.endpoint.empty(), "--judge ", judge.name(),
             " needs --endpoint (an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1)");
    client = std::make_unique<net::ChatClient>(opts.client);
  }
  ReplyCache cache(opts.cache_dir);

  std::atomic<size_t> next{0}, done{0};
  std::atomic<int64_t> requests{0};
  std::atomic<bool> stop{false};
  std::exception_ptr fatal;
  std::mutex mu;
  const auto t0 = std::chrono::steady_clock::now();
  auto worker = [&]() {
    while (!stop) {
      size_t t = next++;
      if (t >= tasks.size()) return;
      const json& item = data[tasks[t].item];
      JudgeInput in{judge_request_of(item),
                    extract_part(item["response"][tasks[t].resp].get<std::string>(), opts.part)};
      Verdict v;
      if (!is_model) {
        v = judge.judge_offline(in);
      } else {
        net::ChatRequest req = *judge.request_for(in);
        std::string prompt = net::chat_request_body(req)["messages"].dump(
            -1, ' ', false, json::error_handler_t::replace);
        std::string key = ReplyCache::key(judge.name(), judge.model(), prompt);
        std::string reply;
        bool hit = cache.get(key, &reply);
        if (!hit) {
          try {
            reply = client->complete(req).content;
            ++requests;
            cache.put(key, judge.name(), judge.model(), reply);
          } catch (const net::ChatAuthError&) {
            std::lock_guard<std::mutex> g(mu);
            if (!fatal) fatal = std::current_exception();
            stop = true;
            return;
          } catch (const net::ChatNetworkError&) {
            std::lock_guard<std::mutex> g(mu);
            if (!fatal) fatal = std::current_exception();
            stop = true;
            return;
          } catch (const std::exception& e) {
            v.status = "error";
            v.reason = e.what();
          }
        }
        if (v.status != "error") {
          v = judge.parse(reply);
          v.cached = hit;
        }
      }
      verdicts[t] = std::move(v);
      size_t d = ++done;
      if (opts.progress && (d == tasks.size() || d % std::max<size_t>(1, tasks.size() / 20) == 0)) {
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::lock_guard<std::mutex> g(mu);
        std::fprintf(stderr, "judge %s: %zu/%zu (%.1f items/s)\n", judge.name().c_str(), d,
                     tasks.size(), s > 0 ? d / s : 0.0);
      }
    }
  };
  int n_threads = is_model ? std::max(1, opts.concurrency) : 1;
  std::vector<std::thread> pool;
  for (int i = 0; i < n_threads; ++i) pool.emplace_back(worker);
  for (auto& th : pool) th.join();
  if (fatal) std::rethrow_exception(fatal);

  const std::string key = label_key(judge.name(), opts.part);
  JudgeCounts c;
  c.requests = requests;
  for (size_t i = 0; i < data.size(); ++i) {
    json& item = data[i];
    if (!item.contains("judge") || !item["judge"].is_object()) item["judge"] = json::object();
    item["judge"][key] = {{"judge", judge.name()}, {"model", judge.model()},
                          {"part", part_name(opts.part)}, {"verdicts", json::array()}};
  }
  for (size_t t = 0; t < tasks.size(); ++t) {
    const Verdict& v = verdicts[t];
    data[tasks[t].item]["judge"][key]["verdicts"].push_back(v.to_json());
    ++c.total;
    if (v.cached) ++c.cached;
    if (v.status == "unparsed") ++c.unparsed;
    if (v.status == "error") ++c.error;
    if (v.status != "ok") continue;
    ++c.ok;
    if (v.harmful.value_or(false)) ++c.harmful;
    if (v.refused.value_or(false)) ++c.refused;
    if (v.refusal_class == "1_full_compliance") ++c.full_compliance;
    if (v.refusal_class == "2_full_refusal") ++c.full_refusal;
    if (v.refusal_class == "3_partial_refusal") ++c.partial_refusal;
  }
  json& meta = doc["meta_info"];
  if (!meta.is_object()) meta = json::object();
  if (!meta.contains("judges") || !meta["judges"].is_object()) meta["judges"] = json::object();
  meta["judges"][key] = {{"judge", judge.name()},
                         {"model", judge.model()},
                         {"part", part_name(opts.part)},
                         {"endpoint", is_model ? opts.client.endpoint : ""},
                         {"rule", judge.harmful_rule()},
                         {"counts", c.to_json()}};
  return c;
}

}  // namespace safekey::eval
