// `safekey launch`: starts N ranks of a command on this node under the torchrun environment
// contract (src/safekey/dist/launcher.h); docs/distributed.md.
#include <unistd.h>

#include <climits>

#include "cli.h"
#include "safekey/dist/launcher.h"
#include "safekey/util/error.h"

namespace safekey {
namespace {

std::string self_exe() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

int run_launch(cli::Args& args) {
  dist::LaunchOptions o;
  o.nproc_per_node = static_cast<int>(args.i64("nproc-per-node"));
  o.nnodes = static_cast<int>(args.i64("nnodes"));
  o.node_rank = static_cast<int>(args.i64("node-rank"));
  o.master_addr = args.str("master-addr");
  o.master_port = static_cast<int>(args.i64("master-port"));
  o.prefix_output = args.on("prefix-output");
  o.term_timeout_s = args.f64("term-timeout");
  o.command = args.positional();
  o.self_exe = self_exe();
  return dist::launch(o);
}

cli::Registrar reg({"launch", "start N ranks of a command on this node (torchrun's environment): multi-process training",
                    "safekey launch --nproc-per-node N [--master-port P] -- safekey train ... [--zero-stage 0|1|2]\n"
                    "Each rank gets RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT; its\n"
                    "output lines are prefixed with [rank N]; SIGINT/SIGTERM are forwarded; when a rank fails the\n"
                    "others are stopped and the exit status names it. Several nodes: the same command on each\n"
                    "with --nnodes, --node-rank and --master-addr (or torchrun / Slurm srun). docs/distributed.md.",
                    run_launch});

}  // namespace
}  // namespace safekey
