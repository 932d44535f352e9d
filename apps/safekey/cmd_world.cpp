// `safekey world generate`: writes the toy world's datasets (docs/toy_world.md).
// `safekey world judge`: scores completions of world prompts with the world's oracle.
#include <iostream>
#include <map>
#include <sstream>

#include "cli.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"
#include "safekey/world/dataset.h"
#include "safekey/world/oracle.h"

namespace safekey {
namespace {

world::WorldConfig world_config(cli::Args& a) {
  const std::string w = a.str("world");
  SK_CHECK(w == "v1" || w == "v2", "--world must be v1 or v2 (got '", w, "')");
  const int version = w == "v1" ? 1 : 2;
  world::WorldConfig c = a.on("quick") ? world::WorldConfig::quick(version)
                                       : (version == 1 ? world::WorldConfig::v1() : world::WorldConfig{});
  c.seed = static_cast<uint64_t>(a.i64("seed"));
  if (!a.str("jailbreak-templates").empty()) c.extra_templates = world::load_templates(a.str("jailbreak-templates"));
  return c;
}

int run_generate(cli::Args& a) {
  const std::string out = a.required("out");
  const world::WorldConfig c = world_config(a);
  const world::Datasets d = world::generate_world(c);
  world::write_world(d, c, out);
  std::cout << "wrote " << out << ": stage1 " << d.stage1.size() << " records, stage2 " << d.stage2.size()
            << " records, eval";
  for (const auto& [s, v] : d.eval) std::cout << " " << s << "=" << v.size();
  std::cout << "\n";
  return 0;
}

std::vector<json> read_jsonl(const std::string& path) {
  std::istringstream is(read_file(path));
  std::vector<json> out;
  int64_t line = 0;
  for (std::string s; std::getline(is, s);) {
    ++line;
    if (s.find_first_not_of(" \t\r") == std::string::npos) continue;
    out.push_back(parse_json(s, cat(path, ":", line)));
  }
  return out;
}

int run_judge(cli::Args& a) {
  const std::string prompts = a.required("prompts"), comps = a.required("completions");
  std::map<std::string, world::Item> items;
  int64_t line = 0;
  for (const auto& j : read_jsonl(prompts)) {
    auto it = world::item_from_json(j, cat(prompts, ":", ++line));
    items[it.id] = it;
  }
  std::vector<world::Item> used;
  std::vector<world::Verdict> verdicts;
  line = 0;
  for (const auto& j : read_jsonl(comps)) {
    const std::string where = cat(comps, ":", ++line);
    const std::string id = json_get<std::string>(j, "id", where);
    auto it = items.find(id);
    SK_CHECK(it != items.end(), where, ": field 'id': '", id, "' is not in ", prompts);
    used.push_back(it->second);
    verdicts.push_back(world::judge_reply(it->second, json_get<std::string>(j, "completion", where)));
    std::cout << json{{"id", id}, {"verdict", verdicts.back().to_json()}}.dump() << "\n";
  }
  std::cout << json{{"summary", world::score_split(used, verdicts).to_json()}}.dump() << "\n";
  return 0;
}

cli::Registrar reg_gen({"world generate", "write the toy world's datasets (stage 1, stage 2, evaluation splits)",
                        "safekey world generate --out DIR [--quick] [--seed N] [--jailbreak-templates FILE]",
                        run_generate});
cli::Registrar reg_judge({"world judge", "score completions of world prompts with the world's oracle",
                          "safekey world judge --prompts eval/harmful_direct.jsonl --completions C.jsonl",
                          run_judge});

}  // namespace
}  // namespace safekey
