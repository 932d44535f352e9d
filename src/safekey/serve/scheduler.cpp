#include "safekey/serve/scheduler.h"

#include "safekey/util/error.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace safekey::serve {

bool Job::wait_take(int ms, std::string* out) {
  std::unique_lock<std::mutex> lk(mu);
  cv.wait_for(lk, std::chrono::milliseconds(ms), [&] { return done || !text.empty(); });
  out->append(text);
  text.clear();
  return done;
}

Scheduler::Scheduler(model::DecoderModel model, infer::EngineOptions opts)
    : model_(std::move(model)), opts_(std::move(opts)) {
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() { stop(0); }

std::shared_ptr<Job> Scheduler::submit(infer::Sequence seq) {
  auto job = std::make_shared<Job>();
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopping_) return nullptr;
    seq.id = next_id_++;
    seq.cancel = &job->cancel;
    inbox_.emplace_back(std::move(seq), job);
    stats_.waiting += 1;
  }
  cv_.notify_one();
  return job;
}

void Scheduler::stop(int64_t drain_ms) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_one();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(drain_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stats_.running == 0 && stats_.waiting == 0) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  cancel_all_ = true;
  cv_.notify_one();
  thread_.join();
}

SchedulerStats Scheduler::stats() {
  std::lock_guard<std::mutex> lk(mu_);
  return stats_;
}

void Scheduler::loop() {
  auto on_event = [this](uint64_t id, const std::string& delta, bool done,
                         const infer::Completion* c) {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return;
    auto job = it->second;
    {
      std::lock_guard<std::mutex> lk(job->mu);
      job->text += delta;
      if (done) {
        job->done = true;
        job->result = *c;
      }
    }
    job->cv.notify_all();
    if (done) {
      jobs_.erase(it);
      std::lock_guard<std::mutex> lk(mu_);
      stats_.requests_done += 1;
      if (c->finish_reason == "abort") stats_.requests_aborted += 1;
      stats_.tokens_generated += static_cast<int64_t>(c->token_ids.size());
    }
  };
  auto engine = std::make_unique<infer::Engine>(model_, opts_, on_event);
  auto fail_all = [&](const std::string& why) {
    for (auto& [id, job] : jobs_) {
      std::lock_guard<std::mutex> lk(job->mu);
      job->error = why;
      job->done = true;
      job->cv.notify_all();
    }
    jobs_.clear();
  };
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait_for(lk, std::chrono::milliseconds(200), [&] {
        return !inbox_.empty() || !engine->idle() || cancel_all_ || (stopping_ && jobs_.empty());
      });
      if (cancel_all_ || (stopping_ && jobs_.empty() && inbox_.empty())) {
        // Cancel what is left: queued jobs never started, running ones stop at the next step.
        for (auto& [seq, job] : inbox_) jobs_[seq.id] = job, engine->submit(std::move(seq));
        inbox_.clear();
        stats_.waiting = 0;
        for (auto& [id, job] : jobs_) job->cancel = true;
        if (jobs_.empty()) break;
      }
      while (!inbox_.empty()) {
        auto& [seq, job] = inbox_.front();
        jobs_[seq.id] = job;
        engine->submit(std::move(seq));
        inbox_.pop_front();
      }
    }
    if (engine->idle()) continue;
    try {
      engine->step();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "serve: generation failed: %s\n", e.what());
      fail_all(cat("generation failed: ", e.what()));
      engine = std::make_unique<infer::Engine>(model_, opts_, on_event);
    }
    std::lock_guard<std::mutex> lk(mu_);
    stats_.running = static_cast<int64_t>(engine->running());
    stats_.max_running = std::max(stats_.max_running, stats_.running);
    stats_.waiting = static_cast<int64_t>(engine->waiting() + inbox_.size());
  }
  std::lock_guard<std::mutex> lk(mu_);
  stats_.running = stats_.waiting = 0;
}

}  // namespace safekey::serve
