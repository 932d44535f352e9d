// `safekey version`: the build and runtime facts (libtorch version, CUDA, threads).
#include <iostream>

#include "cli.h"
#include "safekey/tensor/runtime.h"

namespace safekey {
namespace {

int run_version(cli::Args&) {
  std::cout << "safekey 0.1.0 (" << runtime::describe() << ")\n";
  return 0;
}

cli::Registrar reg({"version", "print the version and runtime facts", "", run_version});

}  // namespace
}  // namespace safekey
