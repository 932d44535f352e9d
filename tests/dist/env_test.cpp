// The distributed environment (torchrun contract, Slurm, none): values and the error for every bad
// variable. Catches: reading the wrong variable, accepting RANK >= WORLD_SIZE or a non-numeric value
// silently, Slurm variables ignored, and an error that does not name the variable.
#include <gtest/gtest.h>

#include <map>

#include "safekey/dist/env.h"
#include "safekey/util/error.h"
#include "support/support.h"

using namespace safekey;

namespace {

dist::Env read(const std::map<std::string, std::string>& vars) {
  return dist::read_env([&](const char* n) -> const char* {
    auto it = vars.find(n);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

std::string error_of(const std::map<std::string, std::string>& vars) {
  return test::error_of([&] { read(vars); });
}

const std::map<std::string, std::string> kTorchrun = {{"RANK", "3"},           {"LOCAL_RANK", "1"},
                                                      {"WORLD_SIZE", "4"},     {"LOCAL_WORLD_SIZE", "2"},
                                                      {"MASTER_ADDR", "10.1.2.3"}, {"MASTER_PORT", "29512"}};

std::map<std::string, std::string> with(std::map<std::string, std::string> m, const std::string& k,
                                        const std::string& v) {
  if (v.empty()) m.erase(k);
  else m[k] = v;
  return m;
}

}  // namespace

TEST(DistEnv, NoLauncherIsAWorldOfOne) {
  auto e = read({});
  EXPECT_FALSE(e.launched());
  EXPECT_EQ(e.world_size, 1);
  EXPECT_EQ(e.rank, 0);
}

TEST(DistEnv, TorchrunContract) {
  auto e = read(kTorchrun);
  EXPECT_EQ(e.source, "torchrun");
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.world_size, 4);
  EXPECT_EQ(e.local_world_size, 2);
  EXPECT_EQ(e.master_addr, "10.1.2.3");
  EXPECT_EQ(e.master_port, 29512);
}

TEST(DistEnv, WorldSizeOneNeedsNothingElse) {
  auto e = read({{"WORLD_SIZE", "1"}});
  EXPECT_TRUE(e.launched());  // a real process group of one (the NCCL world-1 check uses it)
  EXPECT_EQ(e.world_size, 1);
}

TEST(DistEnv, BadTorchrunVariablesNameTheVariable) {
  EXPECT_NE(error_of(with(kTorchrun, "RANK", "")).find("RANK is not set"), std::string::npos);
  EXPECT_NE(error_of(with(kTorchrun, "LOCAL_RANK", "")).find("LOCAL_RANK is not set"), std::string::npos);
  EXPECT_NE(error_of(with(kTorchrun, "MASTER_ADDR", "")).find("MASTER_ADDR is not set"), std::string::npos);
  EXPECT_NE(error_of(with(kTorchrun, "MASTER_PORT", "")).find("MASTER_PORT is not set"), std::string::npos);
  EXPECT_NE(error_of(with(kTorchrun, "RANK", "4")).find("RANK=4 is outside [0, WORLD_SIZE=4)"), std::string::npos);
  EXPECT_NE(error_of(with(kTorchrun, "RANK", "x1")).find("RANK='x1' is not an integer"), std::string::npos);
  EXPECT_NE(error_of(with(kTorchrun, "WORLD_SIZE", "0")).find("WORLD_SIZE=0"), std::string::npos);
  EXPECT_NE(error_of(with(kTorchrun, "LOCAL_RANK", "2")).find("LOCAL_RANK=2 is outside [0, LOCAL_WORLD_SIZE=2)"),
            std::string::npos);
  EXPECT_NE(error_of(with(kTorchrun, "LOCAL_WORLD_SIZE", "5")).find("LOCAL_WORLD_SIZE=5"), std::string::npos);
  EXPECT_NE(error_of(with(kTorchrun, "MASTER_PORT", "70000")).find("MASTER_PORT=70000"), std::string::npos);
  // LOCAL_RANK larger than RANK cannot happen under any launcher.
  auto m = with(with(kTorchrun, "RANK", "0"), "LOCAL_RANK", "1");
  EXPECT_NE(error_of(m).find("LOCAL_RANK=1 is larger than RANK=0"), std::string::npos);
}

TEST(DistEnv, SlurmWhenTorchrunVariablesAreAbsent) {
  auto e = read({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "16"}, {"SLURM_LOCALID", "5"},
                 {"SLURM_TASKS_PER_NODE", "8(x2)"}, {"MASTER_ADDR", "node01"}});
  EXPECT_EQ(e.source, "slurm");
  EXPECT_EQ(e.rank, 5);
  EXPECT_EQ(e.world_size, 16);
  EXPECT_EQ(e.local_rank, 5);
  EXPECT_EQ(e.local_world_size, 8);
  EXPECT_EQ(e.master_addr, "node01");
  EXPECT_EQ(e.master_port, 29500);
  // torchrun's variables win when both are present (torchrun inside an allocation).
  auto both = kTorchrun;
  both["SLURM_NTASKS"] = "2";
  EXPECT_EQ(read(both).source, "torchrun");
}

TEST(DistEnv, SlurmErrorsNameTheVariable) {
  EXPECT_NE(error_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_LOCALID", "0"}}).find("MASTER_ADDR is not set"),
            std::string::npos);
  EXPECT_NE(error_of({{"SLURM_NTASKS", "2"}, {"SLURM_LOCALID", "0"}, {"MASTER_ADDR", "a"}}).find("SLURM_PROCID is not set"),
            std::string::npos);
  EXPECT_NE(error_of({{"SLURM_PROCID", "2"}, {"SLURM_NTASKS", "2"}, {"SLURM_LOCALID", "0"}, {"MASTER_ADDR", "a"}})
                .find("SLURM_PROCID=2 is outside [0, SLURM_NTASKS=2)"),
            std::string::npos);
}

TEST(DistEnv, ASlurmJobOfOneTaskIsAWorldOfOne) {
  // An interactive allocation must not make every command host a rendezvous.
  EXPECT_FALSE(read({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}, {"SLURM_LOCALID", "0"}}).launched());
}
