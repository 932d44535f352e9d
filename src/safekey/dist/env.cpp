#include "safekey/dist/env.h"

#include <cerrno>
#include <climits>
#include <cstdlib>

#include "safekey/util/error.h"

namespace safekey::dist {

namespace {

// The integer value of `name`, or `fallback` when unset and not required.
int int_var(const GetEnv& get, const char* name, bool required, int fallback) {
  const char* v = get(name);
  if (!v || !*v) {
    SK_CHECK(!required, "distributed environment: ", name, " is not set (", name,
             " is part of the launcher's contract; see docs/distributed.md)");
    return fallback;
  }
  errno = 0;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  // Slurm's SLURM_TASKS_PER_NODE looks like "8(x2)": its leading number is the count per node.
  const bool slurm_list = end != v && *end == '(';
  SK_CHECK(end != v && (*end == '\0' || slurm_list) && errno == 0 && x >= INT_MIN && x <= INT_MAX,
           "distributed environment: ", name, "='", v, "' is not an integer");
  return static_cast<int>(x);
}

std::string str_var(const GetEnv& get, const char* name) {
  const char* v = get(name);
  return v ? std::string(v) : std::string();
}

void check_ranges(const Env& e, const char* rank_var, const char* world_var, const char* local_var,
                  const char* local_world_var) {
  SK_CHECK(e.world_size >= 1, "distributed environment: ", world_var, "=", e.world_size, " must be >= 1");
  SK_CHECK(e.rank >= 0 && e.rank < e.world_size, "distributed environment: ", rank_var, "=", e.rank,
           " is outside [0, ", world_var, "=", e.world_size, ")");
  SK_CHECK(e.local_world_size >= 1 && e.local_world_size <= e.world_size, "distributed environment: ",
           local_world_var, "=", e.local_world_size, " must be in [1, ", world_var, "=", e.world_size, "]");
  SK_CHECK(e.local_rank >= 0 && e.local_rank < e.local_world_size, "distributed environment: ", local_var, "=",
           e.local_rank, " is outside [0, ", local_world_var, "=", e.local_world_size, ")");
  SK_CHECK(e.local_rank <= e.rank, "distributed environment: ", local_var, "=", e.local_rank, " is larger than ",
           rank_var, "=", e.rank, " (inconsistent variables)");
  SK_CHECK(e.master_port >= 1 && e.master_port <= 65535, "distributed environment: MASTER_PORT=", e.master_port,
           " is not a TCP port (1..65535)");
  SK_CHECK(e.world_size == 1 || !e.master_addr.empty(), "distributed environment: MASTER_ADDR is not set (",
           world_var, "=", e.world_size, ")");
}

}  // namespace

std::string Env::describe() const {
  if (!launched()) return "one process (no launcher)";
  return cat("rank ", rank, "/", world_size, " (local ", local_rank, "/", local_world_size, ", ", source, ", ",
             master_addr, ":", master_port, ")");
}

Env read_env(const GetEnv& get_in) {
  const GetEnv get = get_in ? get_in : GetEnv([](const char* n) -> const char* { return std::getenv(n); });
  Env e;
  const char* ws = get("WORLD_SIZE");
  if (ws && *ws) {
    e.source = "torchrun";
    e.world_size = int_var(get, "WORLD_SIZE", true, 1);
    const bool multi = e.world_size > 1;
    e.rank = int_var(get, "RANK", multi, 0);
    e.local_rank = int_var(get, "LOCAL_RANK", multi, 0);
    e.local_world_size = int_var(get, "LOCAL_WORLD_SIZE", false, e.world_size);
    const char* addr = get("MASTER_ADDR");
    SK_CHECK(!multi || (addr && *addr), "distributed environment: MASTER_ADDR is not set (WORLD_SIZE=", e.world_size,
             ")");
    if (addr && *addr) e.master_addr = addr;
    e.master_port = int_var(get, "MASTER_PORT", multi, 29500);
    const char* agent = get("TORCHELASTIC_USE_AGENT_STORE");
    e.agent_store = agent && std::string(agent) == "True";
    check_ranges(e, "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE");
    return e;
  }
  const char* nt = get("SLURM_NTASKS");
  if (nt && *nt) {
    e.source = "slurm";
    e.world_size = int_var(get, "SLURM_NTASKS", true, 1);
    if (e.world_size == 1) return Env{};  // one task (an interactive allocation): no process group
    e.rank = int_var(get, "SLURM_PROCID", true, 0);
    e.local_rank = int_var(get, "SLURM_LOCALID", true, 0);
    const char* per_node = get("SLURM_NTASKS_PER_NODE") ? "SLURM_NTASKS_PER_NODE" : "SLURM_TASKS_PER_NODE";
    e.local_world_size = int_var(get, per_node, false, e.world_size);
    e.master_addr = str_var(get, "MASTER_ADDR");
    SK_CHECK(e.world_size == 1 || !e.master_addr.empty(), "distributed environment: MASTER_ADDR is not set (Slurm, ",
             "SLURM_NTASKS=", e.world_size, "); export it in the batch script, e.g. MASTER_ADDR=$(scontrol show "
             "hostnames \"$SLURM_JOB_NODELIST\" | head -n1)");
    if (e.master_addr.empty()) e.master_addr = "127.0.0.1";
    e.master_port = int_var(get, "MASTER_PORT", false, 29500);
    check_ranges(e, "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", per_node);
    return e;
  }
  return e;
}

}  // namespace safekey::dist
