// PyRandom against CPython itself: the same draws for the same seeds (the reference's GPQA choice
// order depends on it). Needs python3 ($SAFEKEY_TEST_PYTHON or /usr/bin/python3).
#include "safekey/util/py_random.h"

#include <gtest/gtest.h>

#include <sstream>

#include "safekey/util/file.h"
#include "support/support.h"

namespace safekey {
namespace {

// Catches: std::mt19937's seeding (init_genrand) instead of Python's init_by_array, a wrong
// getrandbits word order, and sample()'s set-based branch or pool swap done differently.
TEST(PyRandom, DrawsEqualCPython) {
  const std::string py = test::env_or("SAFEKEY_TEST_PYTHON", "/usr/bin/python3");
  if (!path_exists(py)) GTEST_SKIP() << "no " << py;
  auto r = test::run_process(
      {py, "-c",
       "import random\n"
       "r = random.Random(0)\n"
       "print(' '.join(''.join(map(str, r.sample(range(4), 4))) for _ in range(20)))\n"
       "q = random.Random(42); v = list(range(50)); q.shuffle(v); print(' '.join(map(str, v)))\n"
       "z = random.Random(12345678901234); print(z.getrandbits(40)); print(z.getrandbits(7))\n"
       "print(int(random.Random(3).random() * 2**53))\n"
       "print(' '.join(map(str, random.Random(7).sample(range(1000), 10))))\n"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ostringstream mine;
  PyRandom a(0);
  for (int i = 0; i < 20; ++i) {
    auto s = a.sample_range(4, 4);
    mine << (i ? " " : "") << s[0] << s[1] << s[2] << s[3];
  }
  mine << "\n";
  PyRandom q(42);
  std::vector<int> v(50);
  for (int i = 0; i < 50; ++i) v[i] = i;
  q.shuffle(v);
  for (int i = 0; i < 50; ++i) mine << (i ? " " : "") << v[i];
  mine << "\n";
  PyRandom z(12345678901234ull);
  const uint64_t b40 = z.getrandbits(40);
  const uint64_t b7 = z.getrandbits(7);
  mine << b40 << "\n" << b7 << "\n";
  mine << static_cast<uint64_t>(PyRandom(3).random() * 9007199254740992.0)
       << "\n";  // exact: 53 bits
  auto big = PyRandom(7).sample_range(1000, 10);
  for (size_t i = 0; i < big.size(); ++i) mine << (i ? " " : "") << big[i];
  mine << "\n";
  EXPECT_EQ(mine.str(), r.out);
}

}  // namespace
}  // namespace safekey
