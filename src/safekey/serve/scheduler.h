// The server's scheduler: one thread owns the model and an infer::Engine; HTTP worker threads hand it
// prepared sequences and read results from a Job. Requests that arrive while others are decoding
// join the running batch at the next step (continuous batching).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "safekey/infer/engine.h"

namespace safekey::serve {

// One request's results, shared by the worker thread that waits and the scheduler that fills it.
struct Job {
  std::mutex mu;
  std::condition_variable cv;
  std::string text;          // streamed text not yet taken by the worker
  bool done = false;
  infer::Completion result;  // valid when done
  std::string error;         // non-empty when the engine failed
  std::atomic<bool> cancel{false};

  // Waits up to `ms` for new text or the end; moves pending text into *out. Returns done.
  bool wait_take(int ms, std::string* out);
};

struct SchedulerStats {
  int64_t running = 0, waiting = 0;
  int64_t max_running = 0;  // largest batch decoded so far
  int64_t requests_done = 0, tokens_generated = 0;
  int64_t requests_aborted = 0;  // of requests_done: cancelled (client gone, timeout, shutdown)
};

class Scheduler {
 public:
  Scheduler(model::DecoderModel model, infer::EngineOptions opts);
  ~Scheduler();  // stop(0)
  // Queues a sequence; its id is assigned here. Fails (returns null) after stop() began.
  std::shared_ptr<Job> submit(infer::Sequence seq);
  // Stops taking work, lets running jobs finish for up to `drain_ms`, then cancels the rest and
  // joins the thread.
  void stop(int64_t drain_ms);
  SchedulerStats stats();

 private:
  void loop();
  model::DecoderModel model_;
  infer::EngineOptions opts_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<infer::Sequence, std::shared_ptr<Job>>> inbox_;
  std::map<uint64_t, std::shared_ptr<Job>> jobs_;  // scheduler thread only
  std::atomic<bool> stopping_{false}, cancel_all_{false};
  uint64_t next_id_ = 1;
  SchedulerStats stats_;
  std::thread thread_;
};

}  // namespace safekey::serve
