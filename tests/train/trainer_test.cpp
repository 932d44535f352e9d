// The trainer in-process (run_training, the API the toy-world demo calls): a tiny SafeKey run
// learns, writes its run folder (config, metrics, curves, checkpoints in the documented layout) and
// stops with clear errors on bad input.
#include <gtest/gtest.h>

#include "safekey/model/decoder.h"
#include "safekey/train/checkpoint.h"
#include "safekey/train/trainer.h"
#include "safekey/util/file.h"
#include "support/support.h"
#include "train/tiny.h"

using namespace safekey;
using namespace safekey::train;

namespace {

TrainConfig tiny_run(const std::string& dir) {
  TrainConfig c;
  c.model_dir = test::make_tiny_model(dir + "/model");
  c.data_path = test::make_tiny_data(dir + "/data.jsonl", 24);
  c.output_dir = dir + "/run";
  c.epochs = 4;
  c.batch_size = 4;
  c.grad_accum = 2;
  c.lr = 3e-3;
  c.qmm = c.head = true;
  c.last_k_epoch = 2;
  c.quiet = true;
  return c;
}

TEST(Trainer, TinySafeKeyRunLearnsAndWritesTheRunFolder) {
  const std::string dir = test::make_temp_dir("trainer");
  TrainConfig c = tiny_run(dir);
  c.save_total_limit = 2;
  auto r = run_training(c);
  // 24 examples / 4 = 6 micro-batches = 3 steps per epoch.
  ASSERT_EQ(r.steps, 12);
  ASSERT_EQ(r.history.size(), 12u);
  EXPECT_LT(r.history.back().sft_loss, r.history.front().sft_loss * 0.8);
  for (const auto& m : r.history) {
    EXPECT_EQ(m.objectives_on, m.epoch >= 2);
    if (m.objectives_on) {
      EXPECT_GT(m.k_loss, 0);
      EXPECT_GT(m.head_loss, 0);
      EXPECT_NEAR(m.loss, m.sft_loss + 0.2 * m.k_loss + 0.2 * m.head_loss, 1e-5);  // float32 sums
    } else {
      EXPECT_EQ(m.k_loss, 0);
      EXPECT_EQ(m.loss, m.sft_loss);
    }
  }
  for (const char* f : {"run_config.json", "metrics.jsonl", "loss_curves.svg"})
    EXPECT_TRUE(path_exists(c.output_dir + "/" + f)) << f;
  auto ck = list_checkpoints(c.output_dir);
  ASSERT_EQ(ck.size(), 2u);  // epoch ends at steps 3, 6, 9, 12; --save-total-limit 2
  EXPECT_EQ(ck.back(), c.output_dir + "/checkpoint-12");
  for (const char* f : {"model/config.json", "model/model.safetensors", "safety_head.safetensors",
                        "optimizer.safetensors", "trainer_state.json"})
    EXPECT_TRUE(path_exists(ck.back() + "/" + f)) << f;
  // The checkpoint's model loads and carries the trained weights.
  auto m = model::load_model(r.model_dir);
  EXPECT_EQ(m->config().hidden_size, 32);
  const std::string svg = read_file(c.output_dir + "/loss_curves.svg");
  EXPECT_NE(svg.find("<polyline"), std::string::npos);
  EXPECT_NE(svg.find("k_loss"), std::string::npos);
}

// Points of the first curve (the total loss) of a loss_curves.svg; 0 when there is no file.
size_t plotted_steps(const std::string& path) {
  if (!path_exists(path)) return 0;
  const std::string svg = read_file(path);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>\n"), std::string::npos) << "a partly written plot";
  const size_t a = svg.find("points=\"");
  if (a == std::string::npos) return 0;
  const std::string pts = svg.substr(a + 8, svg.find('"', a + 8) - a - 8);
  size_t n = 0;
  for (char ch : pts) n += ch == ',';
  return n;
}

// The loss plot is rewritten while training, not only at the end: catches a plot written once after
// the loop (every step would see no file) or one that lags behind the metrics.
TEST(Trainer, LossCurvesAreRewrittenEveryPlotSteps) {
  const std::string dir = test::make_temp_dir("trainer_plot");
  TrainConfig c = tiny_run(dir);
  c.max_steps = 5;
  const std::string svg = c.output_dir + "/loss_curves.svg";
  std::vector<size_t> seen;
  c.on_step = [&](const StepMetrics&) { seen.push_back(plotted_steps(svg)); };
  c.plot_steps = 1;
  run_training(c);
  EXPECT_EQ(seen, (std::vector<size_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(plotted_steps(svg), 5u);  // a run stopped after 5 steps leaves a plot of 5 steps

  // Every 2 steps; and -1 (the default) follows --logging-steps.
  for (int64_t plot : {2, -1}) {
    TrainConfig d = tiny_run(dir + "/p" + std::to_string(plot));
    d.max_steps = 5;
    d.plot_steps = plot;
    d.logging_steps = 2;
    const std::string path = d.output_dir + "/loss_curves.svg";
    seen.clear();
    d.on_step = [&](const StepMetrics&) { seen.push_back(plotted_steps(path)); };
    run_training(d);
    EXPECT_EQ(seen, (std::vector<size_t>{0, 2, 2, 4, 4})) << "plot_steps " << plot;
    EXPECT_EQ(plotted_steps(path), 5u) << "the end of the run writes the last steps";
  }
}

TEST(Trainer, NonFiniteLossStopsWithStepAndRecords) {
  const std::string dir = test::make_temp_dir("trainer_nan");
  TrainConfig c = tiny_run(dir);
  c.lr = 1e30;
  c.warmup_ratio = 0;
  c.save_steps = 1;
  try {
    run_training(c);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("non-finite"), std::string::npos) << msg;
    EXPECT_NE(msg.find("data.jsonl:"), std::string::npos) << msg;
    EXPECT_NE(msg.find("checkpoint-1"), std::string::npos) << msg;
  }
  EXPECT_TRUE(path_exists(c.output_dir + "/checkpoint-1/trainer_state.json"));
}

TEST(Trainer, QueryLongerThanMaxSeqLenIsAnError) {
  const std::string dir = test::make_temp_dir("trainer_len");
  TrainConfig c = tiny_run(dir);
  c.max_seq_len = 4;
  try {
    run_training(c);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("--max-seq-len 4"), std::string::npos) << msg;
    EXPECT_NE(msg.find("data.jsonl:1"), std::string::npos) << msg;
  }
}

TEST(Trainer, FreshRunRefusesAFolderWithCheckpoints) {
  const std::string dir = test::make_temp_dir("trainer_fresh");
  TrainConfig c = tiny_run(dir);
  c.epochs = 1;
  run_training(c);
  EXPECT_THROW(run_training(c), Error);
}

TEST(Trainer, BadPretokenizedRecordNamesLineAndField) {
  const std::string dir = test::make_temp_dir("trainer_bad");
  TrainConfig c = tiny_run(dir);
  std::string data = read_file(c.data_path);
  data += "{\"input_ids\": [1, 2, 3], \"query_len\": 1, \"k_begin\": 2, \"k_end\": 9, \"unsafe\": 1}\n";
  write_file_atomic(c.data_path, data);
  try {
    run_training(c);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("data.jsonl:25"), std::string::npos) << msg;
    EXPECT_NE(msg.find("K span"), std::string::npos) << msg;
  }
}

}  // namespace
