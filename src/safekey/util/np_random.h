// NumPy's `np.random.default_rng(seed)` for integer seeds, draw for draw: SeedSequence's pool and
// generate_state, PCG64 (128-bit LCG, XSL-RR output, the buffered 32-bit draws) and
// Generator.permutation / shuffle (Fisher-Yates with masked rejection, random_interval), as
// NumPy 1.17+ implements them. Used where the reference shuffles through Hugging Face `datasets`
// (Dataset.shuffle(seed) is default_rng(seed).permutation(len)): WildJailbreak's 250-prompt subset.
// Checked against NumPy in tests/util/np_random_test.cpp.
#pragma once
#include <cstdint>
#include <vector>

namespace safekey {

class NpRandom {
 public:
  explicit NpRandom(uint64_t seed);
  uint64_t next_uint64();
  uint32_t next_uint32();
  // A uniform integer in [0, max] (NumPy's random_interval).
  uint64_t interval(uint64_t max);
  // default_rng(seed).permutation(n).
  std::vector<int64_t> permutation(int64_t n);
  // The PCG64 state and increment as (high, low) 64-bit halves, for tests.
  void state(uint64_t& state_hi, uint64_t& state_lo, uint64_t& inc_hi, uint64_t& inc_lo) const;

 private:
  unsigned __int128 state_ = 0, inc_ = 0;
  bool has_uint32_ = false;
  uint32_t uinteger_ = 0;
};

}  // namespace safekey
