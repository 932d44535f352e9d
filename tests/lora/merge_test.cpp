// Merging a LoRA adapter into a base HF folder (src/safekey/lora/merge.h), on real folders written
// by tests/lora/fixtures.h: the merged weights against the formula computed here, everything else
// copied byte for byte, BASE's sharding kept, errors before any output, and `safekey merge`.
#include "safekey/lora/merge.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "lora/fixtures.h"
#include "safekey/lora/peft.h"
#include "support/support.h"

using namespace safekey;

namespace {

constexpr int64_t kR = 4, kAlpha = 8;  // scale 2

// Five adapted modules over both layers, attention and MLP, square and non-square.
std::vector<test::FixtureModule> adapter_modules() {
  using test::kHidden, test::kInter, test::kKv;
  return {test::random_module("model.layers.0.self_attn.q_proj", kR, kHidden, kHidden),
          test::random_module("model.layers.0.self_attn.v_proj", kR, kHidden, kKv),
          test::random_module("model.layers.1.self_attn.q_proj", kR, kHidden, kHidden),
          test::random_module("model.layers.1.self_attn.v_proj", kR, kHidden, kKv),
          test::random_module("model.layers.1.mlp.down_proj", kR, kInter, kHidden)};
}

std::string write_adapter(const std::string& dir, const std::vector<test::FixtureModule>& mods) {
  test::write_peft_fixture(
      dir, test::peft013_config_text(kR, kAlpha, R"(["q_proj", "v_proj", "down_proj"])"), mods);
  return dir;
}

torch::Tensor read_tensor(const io::Checkpoint& c, const std::string& name) {
  return tensor::tensor_from_view(c.get(name), name);
}

bool same_bytes(const io::TensorView& a, const io::TensorView& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && a.nbytes == b.nbytes &&
         std::memcmp(a.data, b.data, a.nbytes) == 0;
}

std::vector<std::string> listing(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Checks OUT against BASE and the adapter: adapted weights by `check_merged`, every other tensor
// byte-identical, the non-weight files copied, the pickle not.
template <typename F>
void check_merge(const std::string& base, const std::string& out,
                 const std::vector<test::FixtureModule>& mods, F&& check_merged) {
  const io::Checkpoint b = io::Checkpoint::open(base), o = io::Checkpoint::open(out);
  ASSERT_EQ(o.names(), b.names());
  std::map<std::string, const test::FixtureModule*> adapted;
  for (const auto& m : mods) adapted[m.path + ".weight"] = &m;
  for (const auto& name : b.names()) {
    auto it = adapted.find(name);
    if (it == adapted.end()) {
      EXPECT_TRUE(same_bytes(b.get(name), o.get(name))) << name;
      continue;
    }
    EXPECT_EQ(o.get(name).dtype(), b.get(name).dtype()) << name;
    check_merged(name, read_tensor(b, name), read_tensor(o, name), *it->second);
  }
  for (const auto& f : test::tiny_base_other_files())
    EXPECT_EQ(read_file(out + "/" + f), read_file(base + "/" + f)) << f;
  EXPECT_FALSE(path_exists(out + "/training_args.bin"));
}

}  // namespace

// Catches: a missing or wrong scale (alpha/r), B @ A transposed or swapped, the delta added to the
// wrong module, untouched tensors re-encoded, tokenizer/config files not copied, a pickle copied.
TEST(LoraMerge, SingleFileFloat32MatchesFormula) {
  const std::string dir = test::make_temp_dir("merge-f32");
  test::write_tiny_base(dir + "/base", torch::kFloat);
  const auto mods = adapter_modules();
  write_adapter(dir + "/adapter", mods);

  const lora::MergeReport r = lora::merge_adapter(dir + "/base", dir + "/adapter", dir + "/out");
  EXPECT_EQ(r.merged_modules, 5);
  EXPECT_EQ(r.tensors, static_cast<int64_t>(io::Checkpoint::open(dir + "/base").names().size()));
  EXPECT_DOUBLE_EQ(r.scale, 2.0);
  EXPECT_EQ(listing(dir + "/out"), r.files);
  EXPECT_EQ(listing(dir),
            (std::vector<std::string>{"adapter", "base", "out"}));  // no temp folder left

  check_merge(dir + "/base", dir + "/out", mods,
              [](const std::string& name, torch::Tensor W, torch::Tensor got,
                 const test::FixtureModule& m) {
                // W' = W + (alpha / r) * B @ A, in float64 here (an independent reference of the
                // float32 merge).
                const double scale = static_cast<double>(kAlpha) / kR;
                const torch::Tensor want =
                    W.to(torch::kDouble) +
                    scale * torch::mm(m.B.to(torch::kDouble), m.A.to(torch::kDouble));
                const double max_diff = (got.to(torch::kDouble) - want).abs().max().item<double>();
                const double max_ref = want.abs().max().item<double>();
                EXPECT_LE(max_diff, 1e-6 * max_ref) << name << ": maxdiff " << max_diff;
                EXPECT_GT((got - W).abs().max().item<double>(), 1e-3)
                    << name << ": the delta was not applied";
              });
}

// Catches: re-sharding (other file names, tensors moved between shards, a rewritten index), a
// bf16 merge done in bf16 (double rounding) instead of float32 with one cast.
TEST(LoraMerge, ShardedBfloat16KeepsShardingAndRoundsOnce) {
  const std::string dir = test::make_temp_dir("merge-bf16");
  test::write_tiny_base(dir + "/base", torch::kBFloat16, /*max_shard_bytes=*/600);
  std::vector<std::string> shards;
  for (const auto& f : listing(dir + "/base"))
    if (f.rfind("model-", 0) == 0) shards.push_back(f);
  ASSERT_GE(shards.size(), 3u) << "the fixture should be sharded";
  const auto mods = adapter_modules();
  write_adapter(dir + "/adapter", mods);

  lora::merge_adapter(dir + "/base", dir + "/adapter", dir + "/out");
  const std::string index = "/model.safetensors.index.json";
  EXPECT_EQ(read_file(dir + "/out" + index), read_file(dir + "/base" + index));
  for (const auto& s : shards) {
    io::SafetensorsFile b(dir + "/base/" + s), o(dir + "/out/" + s);
    EXPECT_EQ(o.names(), b.names()) << s;
  }
  EXPECT_FALSE(path_exists(dir + "/out/model.safetensors"));

  check_merge(
      dir + "/base", dir + "/out", mods,
      [](const std::string& name, torch::Tensor W, torch::Tensor got,
         const test::FixtureModule& m) {
        ASSERT_EQ(got.scalar_type(), torch::kBFloat16) << name;
        // The float32 result of the formula, cast once to bf16: exactly what the merge must
        // produce.
        const float scale = static_cast<float>(kAlpha) / kR;
        const torch::Tensor want =
            (W.to(torch::kFloat) + torch::mm(m.B.to(torch::kFloat), m.A.to(torch::kFloat)) * scale)
                .to(torch::kBFloat16);
        EXPECT_TRUE(torch::equal(got, want))
            << name << ": maxdiff "
            << (got.to(torch::kFloat) - want.to(torch::kFloat)).abs().max().item<float>();
      });
}

// Catches: writing a partial output before finding a bad module, an error that does not say which
// adapter file and module, and an output folder that replaces or hides the base or adapter.
TEST(LoraMerge, ErrorsBeforeWriting) {
  const std::string dir = test::make_temp_dir("merge-err");
  const std::string base = dir + "/base";
  test::write_tiny_base(base, torch::kFloat);
  auto expect_error = [&](const std::string& adapter, const std::string& out,
                          const std::vector<std::string>& frags) {
    try {
      lora::merge_adapter(base, adapter, out);
      ADD_FAILURE() << "no error for " << adapter << " -> " << out;
    } catch (const Error& e) {
      for (const auto& f : frags)
        EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << f << " in: " << e.what();
    }
  };
  auto mods = adapter_modules();
  mods.push_back(test::random_module("model.layers.7.self_attn.q_proj", kR, 8, 8));
  const std::string missing = write_adapter(dir + "/missing", mods);
  expect_error(
      missing, dir + "/out",
      {missing + "/adapter_model.safetensors", "model.layers.7.self_attn.q_proj", "no tensor"});
  EXPECT_FALSE(path_exists(dir + "/out"));
  EXPECT_FALSE(path_exists(dir + "/out.tmp." + std::to_string(::getpid())));

  mods = adapter_modules();
  mods[1].A = torch::randn({kR, 5});  // v_proj's input is 8 wide
  const std::string shape = write_adapter(dir + "/shape", mods);
  expect_error(shape, dir + "/out",
               {shape + "/adapter_model.safetensors", "model.layers.0.self_attn.v_proj", "[4, 5]"});
  EXPECT_FALSE(path_exists(dir + "/out"));

  const std::string good = write_adapter(dir + "/good", adapter_modules());
  expect_error(good, base, {"must not be the base model folder"});
  expect_error(good, dir, {"must not be the base model folder"});
  expect_error(good, good, {"must not be the adapter folder"});
  make_dirs(dir + "/full");
  write_file_atomic(dir + "/full/x", "keep");
  expect_error(good, dir + "/full", {dir + "/full", "not an empty folder"});
  EXPECT_EQ(read_file(dir + "/full/x"), "keep");
}

// Catches: a command that is not wired (flags, registration), prints nothing useful, or writes a
// different result than the library call.
TEST(LoraMerge, CliEndToEnd) {
  const std::string dir = test::make_temp_dir("merge-cli");
  test::write_tiny_base(dir + "/base", torch::kFloat);
  write_adapter(dir + "/adapter", adapter_modules());
  auto r = test::run_safekey(
      {"merge", "--model", dir + "/base", "--adapter", dir + "/adapter", "--out", dir + "/cli"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("merged 5 LoRA module(s)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("scale 2"), std::string::npos) << r.out;
  lora::merge_adapter(dir + "/base", dir + "/adapter", dir + "/lib");
  EXPECT_EQ(listing(dir + "/cli"), listing(dir + "/lib"));
  EXPECT_EQ(read_file(dir + "/cli/model.safetensors"), read_file(dir + "/lib/model.safetensors"));

  auto bad = test::run_safekey({"merge", "--model", dir + "/base", "--out", dir + "/x"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("--adapter"), std::string::npos) << bad.err;
}
