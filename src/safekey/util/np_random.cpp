#include "safekey/util/np_random.h"

#include <cstddef>
#include <numeric>
#include <utility>

namespace safekey {
namespace {

using u128 = unsigned __int128;

// SeedSequence constants (numpy/random/bit_generator.pyx).
constexpr uint32_t kInitA = 0x43b0d7e5, kMultA = 0x931e8875, kInitB = 0x8b51f9dd, kMultB = 0x58f38ded;
constexpr uint32_t kMixMultL = 0xca01f9dd, kMixMultR = 0x4973f715;
constexpr int kXShift = 16;
constexpr int kPoolSize = 4;

uint32_t hashmix(uint32_t value, uint32_t& hash_const) {
  value ^= hash_const;
  hash_const *= kMultA;
  value *= hash_const;
  value ^= value >> kXShift;
  return value;
}

uint32_t mix(uint32_t x, uint32_t y) {
  uint32_t r = kMixMultL * x - kMixMultR * y;
  r ^= r >> kXShift;
  return r;
}

// SeedSequence(seed).generate_state(n_words64, uint64).
std::vector<uint64_t> seed_sequence_state(uint64_t seed, int n_words64) {
  // The entropy as 32-bit words, least significant first (0 is one zero word).
  std::vector<uint32_t> entropy;
  do {
    entropy.push_back(static_cast<uint32_t>(seed));
    seed >>= 32;
  } while (seed != 0);
  uint32_t pool[kPoolSize];
  uint32_t hash_const = kInitA;
  for (int i = 0; i < kPoolSize; ++i)
    pool[i] = hashmix(i < static_cast<int>(entropy.size()) ? entropy[static_cast<std::size_t>(i)] : 0u, hash_const);
  for (int src = 0; src < kPoolSize; ++src)
    for (int dst = 0; dst < kPoolSize; ++dst)
      if (src != dst) pool[dst] = mix(pool[dst], hashmix(pool[src], hash_const));
  for (std::size_t src = kPoolSize; src < entropy.size(); ++src)
    for (int dst = 0; dst < kPoolSize; ++dst) pool[dst] = mix(pool[dst], hashmix(entropy[src], hash_const));
  // generate_state: 32-bit words cycling over the pool, viewed as little-endian uint64.
  std::vector<uint32_t> words(static_cast<std::size_t>(2 * n_words64));
  uint32_t hb = kInitB;
  for (std::size_t i = 0; i < words.size(); ++i) {
    uint32_t v = pool[i % kPoolSize];
    v ^= hb;
    hb *= kMultB;
    v *= hb;
    v ^= v >> kXShift;
    words[i] = v;
  }
  std::vector<uint64_t> out(static_cast<std::size_t>(n_words64));
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = uint64_t{words[2 * i]} | (uint64_t{words[2 * i + 1]} << 32);
  return out;
}

constexpr u128 kPcgMult = (u128{2549297995355413924ULL} << 64) | u128{4865540595714422341ULL};

}  // namespace

NpRandom::NpRandom(uint64_t seed) {
  const auto v = seed_sequence_state(seed, 4);
  const u128 initstate = (u128{v[0]} << 64) | v[1];
  const u128 initseq = (u128{v[2]} << 64) | v[3];
  state_ = 0;
  inc_ = (initseq << 1) | 1;
  state_ = state_ * kPcgMult + inc_;
  state_ += initstate;
  state_ = state_ * kPcgMult + inc_;
}

uint64_t NpRandom::next_uint64() {
  state_ = state_ * kPcgMult + inc_;
  const uint64_t x = static_cast<uint64_t>(state_ >> 64) ^ static_cast<uint64_t>(state_);
  const unsigned rot = static_cast<unsigned>(state_ >> 122);
  return (x >> rot) | (x << ((64 - rot) & 63));
}

uint32_t NpRandom::next_uint32() {
  if (has_uint32_) {
    has_uint32_ = false;
    return uinteger_;
  }
  const uint64_t next = next_uint64();
  has_uint32_ = true;
  uinteger_ = static_cast<uint32_t>(next >> 32);
  return static_cast<uint32_t>(next & 0xffffffffULL);
}

uint64_t NpRandom::interval(uint64_t max) {
  if (max == 0) return 0;
  uint64_t mask = max;
  for (int s = 1; s <= 32; s <<= 1) mask |= mask >> s;
  uint64_t value;
  if (max <= 0xffffffffULL) {
    while ((value = (next_uint32() & mask)) > max) {
    }
  } else {
    while ((value = (next_uint64() & mask)) > max) {
    }
  }
  return value;
}

std::vector<int64_t> NpRandom::permutation(int64_t n) {
  std::vector<int64_t> a(static_cast<std::size_t>(n < 0 ? 0 : n));
  std::iota(a.begin(), a.end(), int64_t{0});
  for (int64_t i = n - 1; i >= 1; --i) std::swap(a[static_cast<std::size_t>(i)], a[interval(static_cast<uint64_t>(i))]);
  return a;
}

void NpRandom::state(uint64_t& state_hi, uint64_t& state_lo, uint64_t& inc_hi, uint64_t& inc_lo) const {
  state_hi = static_cast<uint64_t>(state_ >> 64);
  state_lo = static_cast<uint64_t>(state_);
  inc_hi = static_cast<uint64_t>(inc_ >> 64);
  inc_lo = static_cast<uint64_t>(inc_);
}

}  // namespace safekey
