// libFuzzer target for the safetensors header parser (build with -DSAFEKEY_FUZZ=ON and clang):
//   build/fuzz/fuzz_safetensors -max_total_time=60
// Any input must either parse into a header whose tensors lie inside the buffer, or throw
// safekey::Error — never crash, hang or read out of bounds.
#include <cstdint>
#include <cstdlib>

#include "safekey/io/safetensors.h"
#include "safekey/util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    safekey::io::Header h = safekey::io::parse_header(data, size, "fuzz");
    uint64_t covered = 0;
    for (const auto& t : h.tensors) {
      if (t.end > size - h.data_start || t.begin > t.end) std::abort();
      covered += t.end - t.begin;
    }
    if (covered != size - h.data_start) std::abort();
  } catch (const safekey::Error&) {
  }
  return 0;
}
