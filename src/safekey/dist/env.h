// Where this process sits in a distributed job, read from the environment that launchers set:
//   * the torchrun contract (also `safekey launch`): RANK, LOCAL_RANK, WORLD_SIZE,
//     LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT;
//   * Slurm, when WORLD_SIZE is not set: SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID,
//     SLURM_NTASKS_PER_NODE (or SLURM_TASKS_PER_NODE), with MASTER_ADDR (required above one task)
//     and MASTER_PORT (default 29500) exported by the batch script (docs/distributed.md).
// Neither set (or a Slurm job of one task): a world of one process that uses no communication.
// Every problem is an Error naming the variable and its value.
#pragma once
#include <functional>
#include <string>

namespace safekey::dist {

struct Env {
  int rank = 0, local_rank = 0;
  int world_size = 1, local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // "" (no launcher: one process, no process group), "torchrun" or "slurm".
  std::string source;
  // TORCHELASTIC_USE_AGENT_STORE=True: torchrun's agent already hosts the store on MASTER_PORT, so
  // rank 0 connects to it like every other rank instead of hosting one.
  bool agent_store = false;
  bool launched() const { return !source.empty(); }
  std::string describe() const;  // "rank 1/2 (local 1/2, torchrun, 127.0.0.1:29500)"
};

using GetEnv = std::function<const char*(const char*)>;

// Reads the variables through `get` (default: the process environment).
Env read_env(const GetEnv& get = {});

}  // namespace safekey::dist
