// Precompiled header for every translation unit that uses libtorch (see CMakeLists.txt).
#pragma once
#include <torch/torch.h>
