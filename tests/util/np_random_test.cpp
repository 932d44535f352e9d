// NpRandom against NumPy: the same PCG64 state, raw draws and permutations for the same seeds (the
// reference's WildJailbreak subset is Hugging Face datasets' Dataset.shuffle(seed=42), i.e.
// np.random.default_rng(42).permutation). The fixed values were printed by NumPy 1.24.2; the live
// comparison runs NumPy when python3 has it ($SAFEKEY_TEST_PYTHON or /usr/bin/python3).
#include "safekey/util/np_random.h"

#include <gtest/gtest.h>

#include <sstream>

#include "safekey/util/file.h"
#include "support/support.h"

namespace safekey {
namespace {

std::string join(const std::vector<int64_t>& v) {
  std::ostringstream s;
  for (size_t i = 0; i < v.size(); ++i) s << (i ? " " : "") << v[i];
  return s.str();
}

// A 128-bit value given as (high, low) halves, in decimal.
std::string decimal(uint64_t hi, uint64_t lo) {
  unsigned __int128 v = (static_cast<unsigned __int128>(hi) << 64) | lo;
  std::string s;
  do {
    s.insert(s.begin(), static_cast<char>('0' + static_cast<int>(v % 10)));
    v /= 10;
  } while (v != 0);
  return s;
}

// Catches: a different SeedSequence mixing (state and increment differ), PCG64's output taken
// before the step or with another rotation (raw draws differ), and a shuffle that draws 64-bit
// values, uses modulo or Lemire's method, or runs forwards (permutations differ).
TEST(NpRandom, KnownNumPyValues) {
  NpRandom r(42);
  uint64_t sh, sl, ih, il;
  r.state(sh, sl, ih, il);
  EXPECT_EQ(decimal(sh, sl), "274674114334540486603088602300644985544");
  EXPECT_EQ(decimal(ih, il), "332724090758049132448979897138935081983");
  EXPECT_EQ(r.next_uint64(), 14276969152011380360ULL);
  NpRandom q(123);
  EXPECT_EQ(q.next_uint64(), 12587170189557361101ULL);
  EXPECT_EQ(q.next_uint64(), 992822559630912803ULL);
  EXPECT_EQ(q.next_uint64(), 4064922177151560342ULL);
  EXPECT_EQ(join(NpRandom(42).permutation(10)), "5 6 0 7 3 2 4 9 1 8");
  EXPECT_EQ(join(NpRandom(7).permutation(5)), "2 0 4 1 3");
  EXPECT_EQ(join(NpRandom(0).permutation(12)), "9 2 7 4 5 11 0 3 6 10 8 1");
  // A seed over 32 bits has two entropy words.
  EXPECT_EQ(join(NpRandom((uint64_t{1} << 40) + 5).permutation(12)), "9 5 1 2 8 3 0 10 7 4 6 11");
  const auto p = NpRandom(42).permutation(300);
  EXPECT_EQ(join({p[0], p[1], p[2], p[3], p[4]}), "261 293 61 253 166");
  EXPECT_EQ(join({p[245], p[246], p[247], p[248], p[249]}), "74 248 10 116 53");
  EXPECT_TRUE(NpRandom(1).permutation(0).empty());
  EXPECT_EQ(join(NpRandom(1).permutation(1)), "0");
}

TEST(NpRandom, PermutationsEqualLiveNumPy) {
  const std::string py = test::env_or("SAFEKEY_TEST_PYTHON", "/usr/bin/python3");
  if (!path_exists(py)) GTEST_SKIP() << "no " << py;
  auto r = test::run_process(
      {py, "-c",
       "import numpy as np\n"
       "for seed, n in [(42, 2000), (0, 1), (1, 2), (2**32 - 1, 77), (2**32, 77), (2**63 + 11, 500), (99, 70000)]:\n"
       "    print(' '.join(map(str, np.random.default_rng(seed).permutation(n))))\n"});
  if (r.exit_code != 0 && r.err.find("No module named 'numpy'") != std::string::npos)
    GTEST_SKIP() << "python3 has no numpy (scripts/install_test_refs.sh installs python3-numpy)";
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ostringstream mine;
  for (auto [seed, n] : std::vector<std::pair<uint64_t, int64_t>>{
           {42, 2000}, {0, 1}, {1, 2}, {4294967295ULL, 77}, {4294967296ULL, 77}, {(uint64_t{1} << 63) + 11, 500}, {99, 70000}})
    mine << join(NpRandom(seed).permutation(n)) << "\n";
  EXPECT_EQ(mine.str(), r.out);
}

}  // namespace
}  // namespace safekey
