#include <gtest/gtest.h>

#include "safekey/util/error.h"
#include "safekey/util/file.h"
#include "safekey/util/json.h"
#include "support/support.h"

using namespace safekey;

TEST(File, AtomicWriteReplacesWholeFile) {
  std::string dir = test::make_temp_dir("file");
  std::string p = dir + "/a.txt";
  write_file_atomic(p, "first");
  write_file_atomic(p, "second version");
  EXPECT_EQ(read_file(p), "second version");
}

TEST(File, MissingFileNamesThePath) {
  try {
    read_file("/nonexistent/x.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/x.json"), std::string::npos);
  }
}

TEST(Json, ParseErrorGivesLineAndColumn) {
  try {
    parse_json("{\n  \"a\": 1,\n  \"b\": }", "cfg.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cfg.json:3:"), std::string::npos) << e.what();
  }
}

TEST(Json, WrongTypeNamesTheField) {
  json j = parse_json("{\"hidden_size\": \"big\"}", "config.json");
  try {
    json_get<int>(j, "hidden_size", "config.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("hidden_size"), std::string::npos);
  }
}

TEST(Cli, VersionRuns) {
  auto r = test::run_safekey({"version"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("libtorch"), std::string::npos);
  auto bad = test::run_safekey({"version", "--no-such-flag"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("--no-such-flag"), std::string::npos) << bad.err;
}
