// safetensors reader/writer: round trips, HF's exact layout, sharded checkpoints, and strict header
// validation with errors that name the file and the tensor.
#include <gtest/gtest.h>

#include <cstring>

#include "safekey/io/hf_folder.h"
#include "safekey/io/safetensors.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"
#include "safekey/util/json.h"
#include "support/support.h"

using namespace safekey;
using namespace safekey::io;

namespace {

// A file image: 8-byte length + header text (as given) + data bytes.
std::string image(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(n >> (8 * i));
  return out + header + data;
}

// Expects parse_header to throw with every fragment in the message.
void expect_bad(const std::string& img, std::vector<std::string> fragments) {
  try {
    parse_header(reinterpret_cast<const uint8_t*>(img.data()), img.size(), "x.safetensors");
    ADD_FAILURE() << "accepted a bad file";
  } catch (const Error& e) {
    std::string msg = e.what();
    for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << msg;
    EXPECT_NE(msg.find("x.safetensors"), std::string::npos) << msg;
  }
}

TEST(Safetensors, WriteReadRoundTripAllDtypes) {
  std::string dir = test::make_temp_dir("st");
  std::vector<float> f32 = {1.5f, -2.f, 3.25f, 0.f, 7.f, -1e30f};
  std::vector<uint16_t> bf16 = {0x3f80, 0xc000, 0x4040};
  std::vector<int64_t> i64 = {1, -2, 1LL << 40};
  std::vector<int32_t> i32 = {7};
  std::vector<uint8_t> b = {1, 0, 1, 1};
  std::vector<WriteTensor> ts = {
      {"w", DType::F32, {2, 3}, f32.data()}, {"h", DType::BF16, {3}, bf16.data()},
      {"ids", DType::I64, {3}, i64.data()},  {"one", DType::I32, {}, i32.data()},
      {"m", DType::BOOL, {2, 2}, b.data()},  {"empty", DType::F16, {0, 4}, nullptr},
  };
  std::string p = dir + "/a.safetensors";
  write_safetensors(p, ts);
  SafetensorsFile f(p);
  EXPECT_EQ(f.header().metadata.at("format"), "pt");
  EXPECT_EQ(f.header().data_start % 8, 0u);
  for (const auto& t : ts) {
    TensorView v = f.get(t.name);
    EXPECT_EQ(v.dtype(), t.dtype) << t.name;
    EXPECT_EQ(v.shape(), t.shape) << t.name;
    ASSERT_EQ(v.nbytes, t.nbytes()) << t.name;
    if (v.nbytes) {
      EXPECT_EQ(std::memcmp(v.data, t.data, v.nbytes), 0) << t.name;
    }
  }
  // Data order: 8-byte dtypes first, then 4, 2, 1 (by name within a dtype), as HF's writer does.
  EXPECT_EQ(f.names(), (std::vector<std::string>{"ids", "w", "one", "h", "empty", "m"}));
}

TEST(Safetensors, RewritingHFFileIsByteIdentical) {
  std::string src = path_join(test::golden_dir(), "qwen2/model.safetensors");
  SAFEKEY_REQUIRE_DIR(src);
  SafetensorsFile f(src);
  std::vector<WriteTensor> ts;
  for (const auto& n : f.names()) {
    TensorView v = f.get(n);
    ts.push_back({n, v.dtype(), v.shape(), v.data});
  }
  std::string out = test::make_temp_dir("st") + "/copy.safetensors";
  write_safetensors(out, ts, f.header().metadata);
  EXPECT_TRUE(read_file(out) == read_file(src));
}

TEST(Safetensors, ShardedCheckpointWithIndex) {
  std::string dir = test::make_temp_dir("st") + "/ckpt";
  std::vector<std::vector<float>> bufs;
  std::vector<WriteTensor> ts;
  for (int i = 0; i < 5; ++i) bufs.emplace_back(100, static_cast<float>(i));
  for (int i = 0; i < 5; ++i) ts.push_back({"t" + std::to_string(i), DType::F32, {10, 10}, bufs[i].data()});
  auto files = write_checkpoint(dir, ts, /*max_shard_bytes=*/900);  // 2 tensors (800 B) per shard
  ASSERT_EQ(files.size(), 4u);
  EXPECT_TRUE(path_exists(dir + "/model-00001-of-00003.safetensors"));
  json idx = read_json_file(dir + "/model.safetensors.index.json");
  EXPECT_EQ(idx["metadata"]["total_size"], 2000);
  EXPECT_EQ(idx["weight_map"]["t4"], "model-00003-of-00003.safetensors");
  Checkpoint c = Checkpoint::open(dir);
  EXPECT_EQ(c.names().size(), 5u);
  for (int i = 0; i < 5; ++i) {
    TensorView v = c.get("t" + std::to_string(i));
    EXPECT_EQ(reinterpret_cast<const float*>(v.data)[99], static_cast<float>(i));
  }
  EXPECT_NE(c.file_of("t2").find("model-00002-of-00003"), std::string::npos);
  // Saving again as one file removes the index, so the folder has one consistent layout.
  write_checkpoint(dir, ts, 1 << 20);
  EXPECT_FALSE(path_exists(dir + "/model.safetensors.index.json"));
  EXPECT_EQ(Checkpoint::open(dir).names().size(), 5u);
  // A tensor listed in the index but missing from its shard is an error naming both.
  write_checkpoint(dir, ts, 900);
  json bad = read_json_file(dir + "/model.safetensors.index.json");
  bad["weight_map"]["t0"] = "model-00003-of-00003.safetensors";
  write_file_atomic(dir + "/model.safetensors.index.json", bad.dump());
  try {
    Checkpoint::open(dir);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'t0'"), std::string::npos) << e.what();
  }
}

TEST(Safetensors, HeaderValidation) {
  const std::string ok_entry = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string data8(8, '\0');
  // Valid baseline.
  std::string good = image("{" + ok_entry + "}", data8);
  EXPECT_EQ(parse_header(reinterpret_cast<const uint8_t*>(good.data()), good.size(), "x").tensors.size(), 1u);

  expect_bad(std::string(5, '\0'), {"truncated"});
  expect_bad(image("{" + ok_entry + "}", data8).substr(0, 20), {"exceeds the file size"});
  std::string huge = image("{}", "");
  huge[7] = 0x7f;
  expect_bad(huge, {"implausible"});
  expect_bad(image("{\"a\":", data8), {"not valid JSON"});
  expect_bad(image("[1,2]", ""), {"not a JSON object"});
  expect_bad(image(R"({"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", data8), {"'a'", "F33"});
  expect_bad(image(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data8),
             {"'a'", "needs 12 bytes"});
  expect_bad(image(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data8), {"'a'", "non-negative"});
  expect_bad(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", data8), {"'a'", "end before begin"});
  expect_bad(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "1234"),
             {"'a'", "outside the data section"});
  expect_bad(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                   R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                   data8),
             {"overlap"});
  expect_bad(image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", data8), {"'a'", "gap"});
  expect_bad(image("{" + ok_entry + "}", data8 + "xx"), {"cover 8"});
  expect_bad(image(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}})", data8),
             {"'a'"});
  expect_bad(image(R"({"a":{"dtype":"F32","shape":[2]}})", data8), {"'a'", "data_offsets"});
  expect_bad(image(R"({"__metadata__":{"format":1}})", ""), {"__metadata__"});
}

TEST(Safetensors, MissingFileAndTensorNameThePath) {
  try {
    SafetensorsFile f("/nonexistent/m.safetensors");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/m.safetensors"), std::string::npos);
  }
  std::string dir = test::make_temp_dir("st");
  float x = 1;
  write_safetensors(dir + "/a.safetensors", {{"x", DType::F32, {1}, &x}});
  SafetensorsFile f(dir + "/a.safetensors");
  try {
    f.get("y");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'y'"), std::string::npos);
  }
}

TEST(HfFolder, CopiesTokenizerFiles) {
  std::string src = test::make_temp_dir("tok");
  write_file_atomic(src + "/tokenizer.json", "{}");
  write_file_atomic(src + "/tokenizer_config.json", "{\"a\":1}");
  write_file_atomic(src + "/other.bin", "x");
  std::string dst = test::make_temp_dir("tok") + "/out";
  auto copied = copy_tokenizer_files(src, dst);
  EXPECT_EQ(copied.size(), 2u);
  EXPECT_EQ(read_file(dst + "/tokenizer_config.json"), "{\"a\":1}");
  EXPECT_FALSE(path_exists(dst + "/other.bin"));
  EXPECT_THROW(copy_tokenizer_files(src + "/nope", dst), Error);
  EXPECT_THROW(copy_tokenizer_files(test::make_temp_dir("empty"), dst), Error);
}

}  // namespace
