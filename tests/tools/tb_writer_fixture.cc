// Writes a known TensorBoard event file with kiln's EventWriter, for
// tests/test_tensorboard_events.py to read back with TensorBoard's own readers.
//
//   kiln_tb_writer_fixture LOGDIR          full run; prints the event file's path
//   kiln_tb_writer_fixture LOGDIR --crash  loss for steps 0..4, Flush, steps 5..9
//                                          buffered, then _exit(3) without closing
//   kiln_tb_writer_fixture LOGDIR --experiment
//                                          full run, plus a _hparams_/experiment
//                                          record naming the 4 hparams and 2 metrics
//
// Full run, all at wall time 1700000000 + step + 0.5 unless noted:
//   _hparams_/session_start_info  learning_rate 0.01, optimizer "adam",
//                                 batch_norm true, layers 3; group "kiln-group";
//                                 start time 1700000000
//   loss            steps 0..9, value 1 / (step + 1) as float
//   eval/accuracy   steps 4 and 9, values 0.5 and 0.75
//   weights/dense   step 9, histogram of (i - 50) / 10 as float for i in 0..99
//   _hparams_/session_end_info    STATUS_SUCCESS, end time 1700000100
#include <unistd.h>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "kiln/base/env.h"
#include "kiln/observe/event_writer.h"

namespace {

constexpr double kStart = 1700000000.0;

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "kiln_tb_writer_fixture: %s\n", s.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string flag = argc == 3 ? argv[2] : "";
  if (argc < 2 || argc > 3 || (argc == 3 && flag != "--crash" && flag != "--experiment")) {
    std::fprintf(stderr, "usage: %s LOGDIR [--crash | --experiment]\n", argv[0]);
    return 2;
  }
  const bool crash = flag == "--crash";
  kiln::observe::EventWriter::Options options;
  options.max_pending_micros = int64_t{3600} * 1000000;  // only Flush hands records over
  auto created = kiln::observe::EventWriter::Create(kiln::Env::Default(), argv[1], options);
  if (!created.ok()) return Fail(created.status());
  kiln::observe::EventWriter& writer = **created;

  if (crash) {
    for (int step = 0; step < 10; ++step) {
      absl::Status s =
          writer.AddScalar("loss", step, 1.0f / static_cast<float>(step + 1), kStart + step + 0.5);
      if (!s.ok()) return Fail(s);
      if (step == 4 && !(s = writer.Flush()).ok()) return Fail(s);
    }
    std::printf("%s\n", writer.path().c_str());
    std::fflush(stdout);
    _exit(3);  // a crash: no Close, no destructor
  }

  absl::Status s;
  if (flag == "--experiment") {
    tensorboard::hparams::Experiment experiment;
    for (auto [name, type] : {std::pair{"learning_rate", tensorboard::hparams::DATA_TYPE_FLOAT64},
                              std::pair{"layers", tensorboard::hparams::DATA_TYPE_FLOAT64},
                              std::pair{"optimizer", tensorboard::hparams::DATA_TYPE_STRING},
                              std::pair{"batch_norm", tensorboard::hparams::DATA_TYPE_BOOL}}) {
      tensorboard::hparams::HParamInfo* info = experiment.add_hparam_infos();
      info->set_name(name);
      info->set_type(type);
    }
    for (const char* tag : {"loss", "eval/accuracy"}) {
      experiment.add_metric_infos()->mutable_name()->set_tag(tag);
    }
    s = writer.WriteHparamsExperiment(experiment, kStart);
  }
  if (s.ok()) {
    s = writer.WriteHparamsSessionStart({{"learning_rate", 0.01},
                                         {"optimizer", std::string("adam")},
                                         {"batch_norm", true},
                                         {"layers", 3.0}},
                                        "kiln-group", kStart);
  }
  for (int step = 0; s.ok() && step < 10; ++step) {
    const double wall_time = kStart + step + 0.5;
    s = writer.AddScalar("loss", step, 1.0f / static_cast<float>(step + 1), wall_time);
    if (s.ok() && step == 4) s = writer.AddScalar("eval/accuracy", step, 0.5f, wall_time);
    if (s.ok() && step == 9) s = writer.AddScalar("eval/accuracy", step, 0.75f, wall_time);
  }
  std::vector<float> weights;
  for (int i = 0; i < 100; ++i) weights.push_back(static_cast<float>(i - 50) / 10.0f);
  if (s.ok()) s = writer.AddHistogram("weights/dense", 9, weights, kStart + 9.5);
  if (s.ok()) s = writer.WriteHparamsSessionEnd(tensorboard::hparams::STATUS_SUCCESS, kStart + 100);
  if (s.ok()) s = writer.Close();
  if (!s.ok()) return Fail(s);
  std::printf("%s\n", writer.path().c_str());
  return 0;
}
