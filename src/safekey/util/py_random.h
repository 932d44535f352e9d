// Python's `random.Random` for integer seeds, draw for draw: MT19937 seeded by init_by_array with
// the seed's 32-bit words, getrandbits, _randbelow, shuffle and sample as CPython 3.x implements
// them. Used where the reference shuffles with Python (simple-evals' GPQA choice order:
// random.Random(0), one rng.sample(range(4), 4) per question). Checked against CPython in
// tests/util/py_random_test.cpp.
#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace safekey {

class PyRandom {
 public:
  explicit PyRandom(uint64_t seed);
  uint32_t genrand_uint32();
  uint64_t getrandbits(int k);     // 0 <= k <= 64
  uint64_t randbelow(uint64_t n);  // uniform in [0, n); 0 when n == 0
  double random();                 // random.random(): 53-bit float in [0, 1)
  // random.sample(range(n), k).
  std::vector<int64_t> sample_range(int64_t n, int64_t k);
  // random.shuffle(x).
  template <typename T>
  void shuffle(std::vector<T>& x) {
    for (std::size_t i = x.size(); i-- > 1;) std::swap(x[i], x[randbelow(i + 1)]);
  }

 private:
  uint32_t mt_[624];
  int index_ = 624;
};

}  // namespace safekey
