// The libtorch models through the model registry: training on small synthetic data,
// the bundle round trip, parameter errors, determinism, early stopping and callbacks, and
// small batches scored in plain C++ as libtorch scores them.
#include <atomic>
#include <cmath>
#include <random>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/base/env.h"
#include "kiln/base/str.h"
#include "kiln/model/model.h"
#include "kiln/testing/temp_dir.h"

namespace kiln::model {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

// 16 dense columns (a 4x4 image for cnn) and two categorical columns (cardinalities 5
// and 3). The label depends on the dense columns and on the first categorical column.
struct Data {
  transform::OutputSignature signature;
  transform::TransformedBatch x;
  Examples ex;
};

Data MakeData(size_t rows, uint32_t seed, Task task = Task::kBinary) {
  Data d;
  for (int j = 0; j < 16; ++j) d.signature.dense.push_back({"d" + std::to_string(j)});
  d.signature.categorical.push_back({"c0", transform::OutputKind::kCategorical, 5, 4});
  d.signature.categorical.push_back({"c1", transform::OutputKind::kCategorical, 3, 2});
  d.x.num_rows = rows;
  d.x.dense_dim = 16;
  d.x.num_categorical = 2;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  for (size_t r = 0; r < rows; ++r) {
    double z = 0;
    for (int j = 0; j < 16; ++j) {
      float v = normal(rng);
      d.x.dense.push_back(v);
      if (j < 4) z += v;
    }
    int64_t c0 = static_cast<int64_t>(rng() % 5), c1 = static_cast<int64_t>(rng() % 3);
    d.x.ids.push_back(c0);
    d.x.ids.push_back(c1);
    z += c0 == 2 ? 2.0 : 0.0;
    float y = 0;
    if (task == Task::kBinary) y = z + 0.5 * normal(rng) > 0.5 ? 1.f : 0.f;
    if (task == Task::kMulticlass) y = z < -1 ? 0.f : z < 1 ? 1.f : 2.f;
    if (task == Task::kRegression) y = static_cast<float>(100 + 10 * z);
    d.ex.labels.push_back(y);
  }
  d.ex.x = &d.x;
  return d;
}

// Keeps Data at a stable address (Examples points into it).
struct Split {
  Data train = MakeData(600, 1);
  Data eval = MakeData(300, 2);
  Split() {
    train.ex.x = &train.x;
    eval.ex.x = &eval.x;
  }
};

TrainOptions Options(nlohmann::json params, Task task = Task::kBinary, int num_classes = 2) {
  TrainOptions o;
  o.task = task;
  o.num_classes = num_classes;
  o.params = std::move(params);
  o.threads = 1;
  o.eval_every = 1000;  // at epoch ends only
  return o;
}

nlohmann::json CnnParams() {
  return {{"type", "cnn"},        {"epochs", 10},
          {"batch_size", 32},     {"image", {{"height", 4}, {"width", 4}}},
          {"conv_channels", {4}}, {"hidden_units", {8}}};
}

class TorchModelsTest : public ::testing::Test {
 protected:
  absl::StatusOr<std::unique_ptr<Model>> Train(const nlohmann::json& params,
                                               const TrainOptions* options = nullptr) {
    TrainOptions o = options ? *options : Options(params);
    o.params = params;
    return TrainModel(params["type"].get<std::string>(), o, s_.train.signature, s_.train.ex,
                      s_.eval.ex);
  }

  std::vector<float> Scores(const Model& m, const Data& d) {
    std::vector<float> out;
    EXPECT_TRUE(m.Predict(d.x, &out).ok());
    return out;
  }

  absl::StatusOr<std::unique_ptr<Model>> RoundTrip(const Model& m, const std::string& name,
                                                   Task task = Task::kBinary, int classes = 2) {
    const std::string dir = tmp_.File(name);
    auto w = BundleWriter::Create(Env::Default(), dir);
    if (!w.ok()) return w.status();
    if (auto st = m.Save(w->get()); !st.ok()) return st;
    BundleManifest manifest;
    manifest.backend = std::string(m.backend());
    manifest.model_type = std::string(m.type());
    if (auto st = (*w)->Finish(manifest); !st.ok()) return st;
    auto b = Bundle::Open(Env::Default(), dir);
    if (!b.ok()) return b.status();
    return LoadModel(**b, task, classes);
  }

  Split s_;
  kiln::testing::TempDir tmp_;
};

TEST_F(TorchModelsTest, EveryTypeLearnsAndRoundTripsThroughABundle) {
  const std::vector<nlohmann::json> all = {
      {{"type", "linear"}, {"epochs", 5}, {"batch_size", 32}},
      {{"type", "mlp"},
       {"epochs", 5},
       {"batch_size", 32},
       {"hidden_units", {16}},
       {"dropout", 0.1}},
      {{"type", "wide_deep"},
       {"epochs", 5},
       {"batch_size", 32},
       {"hidden_units", {16, 8}},
       {"activation", "tanh"}},
      CnnParams(),
  };
  for (const nlohmann::json& params : all) {
    const std::string type = params["type"];
    SCOPED_TRACE(type);
    auto m = Train(params);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ((*m)->type(), type);
    EXPECT_EQ((*m)->backend(), "torch");
    std::vector<float> scores = Scores(**m, s_.eval);
    ASSERT_EQ(scores.size(), s_.eval.ex.size());
    EXPECT_GT(BinaryAuc(scores, s_.eval.ex.labels), 0.9);
    auto loaded = RoundTrip(**m, type);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ((*loaded)->type(), type);
    EXPECT_EQ(Scores(**loaded, s_.eval), scores);  // bit for bit
  }
}

TEST_F(TorchModelsTest, MulticlassGivesProbabilitiesAndRegressionTheTargetScale) {
  Data train = MakeData(600, 1, Task::kMulticlass), eval = MakeData(300, 2, Task::kMulticlass);
  train.ex.x = &train.x;
  eval.ex.x = &eval.x;
  nlohmann::json p = {{"type", "mlp"}, {"epochs", 10}};
  auto m = TrainModel("mlp", Options(p, Task::kMulticlass, 3), train.signature, train.ex, eval.ex);
  ASSERT_TRUE(m.ok()) << m.status();
  std::vector<float> probs;
  ASSERT_TRUE((*m)->Predict(eval.x, &probs).ok());
  ASSERT_EQ(probs.size(), 3 * eval.ex.size());
  for (size_t r = 0; r < eval.ex.size(); ++r) {
    EXPECT_NEAR(probs[3 * r] + probs[3 * r + 1] + probs[3 * r + 2], 1.0, 1e-5);
  }
  EXPECT_GT(ComputeMetrics(Task::kMulticlass, 3, probs, eval.ex.labels).at("accuracy"), 0.8);
  auto loaded = RoundTrip(**m, "multi", Task::kMulticlass, 3);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  std::vector<float> again;
  ASSERT_TRUE((*loaded)->Predict(eval.x, &again).ok());
  EXPECT_EQ(again, probs);
  // Loaded as another task: the stored architecture disagrees.
  EXPECT_EQ(RoundTrip(**m, "multi2", Task::kBinary, 2).status().code(),
            absl::StatusCode::kDataLoss);

  Data rtrain = MakeData(600, 1, Task::kRegression), reval = MakeData(300, 2, Task::kRegression);
  rtrain.ex.x = &rtrain.x;
  reval.ex.x = &reval.x;
  auto r = TrainModel("linear", Options({{"type", "linear"}, {"epochs", 30}}, Task::kRegression, 1),
                      rtrain.signature, rtrain.ex, reval.ex);
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<float> pred;
  ASSERT_TRUE((*r)->Predict(reval.x, &pred).ok());
  // Targets are 100 + 10 z (z linear in the inputs): learnt on their own scale.
  EXPECT_GT(ComputeMetrics(Task::kRegression, 1, pred, reval.ex.labels).at("r2"), 0.95);
}

TEST_F(TorchModelsTest, BadParamsNameTheParam) {
  const std::vector<std::pair<nlohmann::json, std::string>> cases = {
      {{{"type", "mlp"}, {"hidden_units", "big"}}, "model.hidden_units must be a list"},
      {{{"type", "mlp"}, {"hidden_units", {8, 0}}}, "model.hidden_units must be an integer"},
      {{{"type", "linear"}, {"learning_rate", -1}}, "model.learning_rate must be a number in (0"},
      {{{"type", "linear"}, {"optimizer", "rmsprop"}},
       "model.optimizer must be one of adam, sgd, adagrad, ftrl"},
      {{{"type", "linear"}, {"epochs", 0}}, "model.epochs must be an integer in [1"},
      {{{"type", "linear"}, {"batch_size", 2.5}}, "model.batch_size must be an integer"},
      {{{"type", "mlp"}, {"dropout", 1.5}}, "model.dropout must be a number in [0, 0.99]"},
      {{{"type", "mlp"}, {"activation", "swish"}}, "model.activation must be one of relu, tanh"},
      {{{"type", "linear"}, {"momentum", 0.5}},
       "model.momentum is not a parameter of model type linear with optimizer adam"},
      {{{"type", "linear"}, {"optimizer", "sgd"}, {"l1", 0.5}},
       "model.l1 is not a parameter of model type linear with optimizer sgd"},
      {{{"type", "linear"}, {"hidden_units", {8}}},
       "model.hidden_units is not a parameter of model type linear"},
      {{{"type", "linear"}, {"optimizer", "ftrl"}, {"lr_power", 0.5}},
       "model.lr_power must be a number in [-inf, 0]"},
      {{{"type", "cnn"}}, "model.image is required"},
      {{{"type", "cnn"}, {"image", {{"height", 4}}}}, "model.image.width is required"},
      {{{"type", "cnn"}, {"image", {{"height", 8}, {"width", 8}}}},
       "model.image is 8x8x1 = 64 values, but the transform outputs 16 dense columns"},
      {{{"type", "cnn"}, {"image", {{"height", 4}, {"width", 4}}}, {"kernel_size", 2}},
       "model.kernel_size must be odd"},
      {{{"type", "mlp"}, {"embedding_dim", 0}}, "model.embedding_dim must be an integer in [1"},
  };
  for (const auto& [params, message] : cases) {
    SCOPED_TRACE(params.dump());
    auto m = Train(params);
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(m.status().message(), HasSubstr(message));
  }
}

TEST_F(TorchModelsTest, SameSeedSameModelOtherSeedOtherModel) {
  nlohmann::json p = {{"type", "wide_deep"}, {"epochs", 3}, {"dropout", 0.2}};
  TrainOptions o = Options(p);
  auto a = Train(p, &o);
  auto b = Train(p, &o);
  o.seed = 7;
  auto c = Train(p, &o);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(Scores(**a, s_.eval), Scores(**b, s_.eval));
  EXPECT_NE(Scores(**a, s_.eval), Scores(**c, s_.eval));
}

TEST_F(TorchModelsTest, EarlyStoppingKeepsTheBestEvaluation) {
  // A wide network with a large learning rate overfits 600 rows quickly.
  nlohmann::json p = {{"type", "mlp"},
                      {"epochs", 200},
                      {"batch_size", 32},
                      {"learning_rate", 0.05},
                      {"hidden_units", {128}}};
  TrainOptions o = Options(p);
  o.eval_every = 5;
  o.patience = 4;
  o.early_stopping_metric = "log_loss";
  std::vector<std::pair<int64_t, double>> seen;
  o.on_eval = [&](int64_t step, const Metrics& m) { seen.emplace_back(step, m.at("log_loss")); };
  auto m = Train(p, &o);
  ASSERT_TRUE(m.ok()) << m.status();
  const nlohmann::json summary = (*m)->Summary();
  const int64_t steps_per_epoch = (600 + 31) / 32;
  EXPECT_LT(summary["steps"].get<int64_t>(), 200 * steps_per_epoch);  // stopped early
  EXPECT_EQ(summary["steps"].get<int64_t>(), seen.back().first);
  auto best = std::min_element(seen.begin(), seen.end(),
                               [](const auto& x, const auto& y) { return x.second < y.second; });
  EXPECT_EQ(summary["best_step"].get<int64_t>(), best->first);
  EXPECT_EQ(seen.end() - best, o.patience + 1);  // stopped `patience` evaluations later
  // The kept weights are those of the best evaluation.
  const double now =
      ComputeMetrics(Task::kBinary, 2, Scores(**m, s_.eval), s_.eval.ex.labels).at("log_loss");
  EXPECT_DOUBLE_EQ(now, best->second);
}

TEST_F(TorchModelsTest, CallbacksSeeEveryStepAndEveryWeightTensor) {
  nlohmann::json p = {
      {"type", "wide_deep"}, {"epochs", 2}, {"batch_size", 100}, {"hidden_units", {4}}};
  TrainOptions o = Options(p);
  o.eval_every = 4;
  std::vector<int64_t> loss_steps, eval_steps;
  std::map<std::string, std::vector<int64_t>> hist;  // tag -> steps
  size_t deep_out_values = 0;
  o.on_loss = [&](int64_t step, double loss) {
    EXPECT_TRUE(std::isfinite(loss));
    loss_steps.push_back(step);
  };
  o.on_eval = [&](int64_t step, const Metrics&) { eval_steps.push_back(step); };
  o.on_histogram = [&](const std::string& tag, int64_t step, std::span<const float> v) {
    hist[tag].push_back(step);
    if (tag == "weights/deep_out.weight") deep_out_values = v.size();
  };
  ASSERT_TRUE(Train(p, &o).ok());
  EXPECT_EQ(loss_steps, (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
  EXPECT_EQ(eval_steps, (std::vector<int64_t>{4, 6, 8, 12}));  // every 4 and each epoch end
  std::vector<std::string> tags;
  for (const auto& [tag, steps] : hist) {
    tags.push_back(tag);
    EXPECT_EQ(steps, (std::vector<int64_t>{6, 12})) << tag;
  }
  EXPECT_THAT(tags, Contains("weights/wide_bias"));
  EXPECT_THAT(tags, Contains("weights/wide_ids.weight"));
  EXPECT_THAT(tags, Contains("weights/embedding0.weight"));
  EXPECT_THAT(tags, Contains("weights/hidden0.weight"));
  EXPECT_EQ(deep_out_values, 4u);
}

TEST_F(TorchModelsTest, FtrlL1ZeroesWeights) {
  // l1 beyond any accumulated gradient: every coordinate, bias included, stays at 0, so
  // every prediction is sigmoid(0).
  auto sparse = Train({{"type", "linear"}, {"optimizer", "ftrl"}, {"l1", 1e9}, {"epochs", 2}});
  ASSERT_TRUE(sparse.ok()) << sparse.status();
  for (float s : Scores(**sparse, s_.eval)) ASSERT_EQ(s, 0.5f);
  auto dense = Train({{"type", "linear"}, {"optimizer", "ftrl"}, {"epochs", 5}});
  ASSERT_TRUE(dense.ok()) << dense.status();
  EXPECT_GT(BinaryAuc(Scores(**dense, s_.eval), s_.eval.ex.labels), 0.9);
}

TEST_F(TorchModelsTest, RowWeightsShiftPredictionsTowardsTheHeavierClass) {
  nlohmann::json p = {{"type", "linear"}, {"epochs", 5}, {"batch_size", 32}};
  auto plain = Train(p);
  for (float y : s_.train.ex.labels) s_.train.ex.weights.push_back(y > 0.5f ? 10.f : 1.f);
  auto weighted = Train(p);
  ASSERT_TRUE(plain.ok() && weighted.ok());
  auto mean = [](const std::vector<float>& v) {
    double sum = 0;
    for (float x : v) sum += x;
    return sum / static_cast<double>(v.size());
  };
  const double positives = mean(s_.eval.ex.labels);
  EXPECT_LT(std::abs(mean(Scores(**plain, s_.eval)) - positives), 0.05);
  EXPECT_GT(mean(Scores(**weighted, s_.eval)), positives + 0.15);
}

TEST_F(TorchModelsTest, PredictRefusesInputsOfAnotherShape) {
  auto m = Train({{"type", "linear"}, {"epochs", 1}});
  ASSERT_TRUE(m.ok());
  transform::TransformedBatch x = s_.eval.x;
  x.ids[3] = 3;  // column 1 has cardinality 3
  std::vector<float> out;
  absl::Status st = (*m)->Predict(x, &out);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("categorical column 1 has id 3 in row 1"));
  x = s_.eval.x;
  x.dense_dim = 8;
  x.num_rows = s_.eval.x.num_rows * 2;
  x.num_categorical = 1;
  st = (*m)->Predict(x, &out);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("takes 16 dense and 2 categorical columns; got 8 and 1"));
  x = s_.eval.x;
  x.num_rows += 1;  // more rows than the matrices hold
  st = (*m)->Predict(x, &out);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("a batch of 301 rows holds 4800 dense values and 600 ids"));
}

// torch_models.cc's kNativeMaxRows: a batch of at most this many rows (of a linear, mlp or
// wide_deep network as small as these) is scored in plain C++, a larger one by libtorch.
constexpr size_t kNativeMaxRows = 32;

// The first `rows` rows of `x`.
transform::TransformedBatch FirstRows(const transform::TransformedBatch& x, size_t rows) {
  transform::TransformedBatch b = x;
  b.num_rows = rows;
  b.dense.resize(rows * x.dense_dim);
  b.ids.resize(rows * x.num_categorical);
  return b;
}

// Drops the dense or the categorical columns of `d`.
void KeepColumns(Data* d, bool dense, bool categorical) {
  if (!dense) {
    d->signature.dense.clear();
    d->x.dense_dim = 0;
    d->x.dense.clear();
  }
  if (!categorical) {
    d->signature.categorical.clear();
    d->x.num_categorical = 0;
    d->x.ids.clear();
  }
}

// Small batches take the plain C++ forward pass, large ones libtorch's: for every model
// type it computes, task, activation and mix of inputs (a NaN dense value read as 0), the
// scores of the same rows agree, and a model loaded from its bundle gives the same ones.
// cnn batches run their convolutions channels-last (one row keeps NCHW): a batch's scores
// are each row's own.
TEST_F(TorchModelsTest, CnnBatchScoresEqualEachRowScoredAlone) {
  nlohmann::json params = CnnParams();
  params["conv_channels"] = {4, 6};
  auto m = Train(params);
  ASSERT_TRUE(m.ok()) << m.status();
  std::vector<float> batch;
  ASSERT_TRUE((*m)->Predict(s_.eval.x, &batch).ok());
  ASSERT_EQ(batch.size(), 300u);
  for (size_t r = 0; r < 300; r += 37) {
    transform::TransformedBatch one = FirstRows(s_.eval.x, r + 1);
    std::vector<float> scores;
    ASSERT_TRUE((*m)->Predict(one, &scores).ok());
    std::vector<float> alone;
    transform::TransformedBatch row = one;
    row.num_rows = 1;
    row.dense.erase(row.dense.begin(), row.dense.begin() + r * row.dense_dim);
    row.ids.erase(row.ids.begin(), row.ids.begin() + r * row.num_categorical);
    ASSERT_TRUE((*m)->Predict(row, &alone).ok());
    ASSERT_EQ(alone.size(), 1u);
    EXPECT_NEAR(alone[0], batch[r], 1e-6f) << "row " << r;
    EXPECT_NEAR(scores[r], batch[r], 1e-6f) << "row " << r;
  }
}

TEST_F(TorchModelsTest, SmallBatchesScoreAsLibtorchDoes) {
  const std::vector<nlohmann::json> nets = {
      {{"type", "linear"}},
      // Layer widths of all sizes, and dropout (off when predicting).
      {{"type", "mlp"}, {"hidden_units", {40, 5}}, {"activation", "relu"}, {"dropout", 0.2}},
      {{"type", "mlp"}, {"hidden_units", {40, 5}}, {"activation", "tanh"}},
      {{"type", "wide_deep"}, {"hidden_units", {33, 4}}, {"activation", "relu"}},
      {{"type", "wide_deep"}, {"hidden_units", {16}}, {"activation", "tanh"}, {"dropout", 0.1}},
  };
  int bundles = 0;
  for (Task task : {Task::kBinary, Task::kMulticlass, Task::kRegression}) {
    const int classes = task == Task::kMulticlass ? 3 : task == Task::kBinary ? 2 : 1;
    const size_t per_row = task == Task::kMulticlass ? 3 : 1;
    for (nlohmann::json params : nets) {
      params["epochs"] = 2;
      params["batch_size"] = 32;
      for (auto [dense, categorical] : {std::pair{true, false}, {false, true}, {true, true}}) {
        SCOPED_TRACE(StrCat(TaskName(task), " ", params.dump(), dense ? " dense" : "",
                            categorical ? " categorical" : ""));
        Data train = MakeData(300, 1, task), eval = MakeData(100, 2, task);
        KeepColumns(&train, dense, categorical);
        KeepColumns(&eval, dense, categorical);
        train.ex.x = &train.x;
        eval.ex.x = &eval.x;
        if (dense) {
          eval.x.dense[3] = std::nanf("");   // row 0
          eval.x.dense[16] = std::nanf("");  // row 1
        }
        auto m = TrainModel(params["type"], Options(params, task, classes), train.signature,
                            train.ex, eval.ex);
        ASSERT_TRUE(m.ok()) << m.status();
        std::vector<float> large;  // libtorch's
        ASSERT_TRUE((*m)->Predict(eval.x, &large).ok());
        ASSERT_EQ(large.size(), 100 * per_row);
        std::vector<float> small;
        for (size_t rows : {size_t{1}, size_t{2}, kNativeMaxRows}) {
          SCOPED_TRACE(StrCat(rows, " rows"));
          ASSERT_TRUE((*m)->Predict(FirstRows(eval.x, rows), &small).ok());
          ASSERT_EQ(small.size(), rows * per_row);
          for (size_t i = 0; i < small.size(); ++i) {
            // Regression scores are ~100: float keeps 7 digits.
            const float tolerance = task == Task::kRegression ? 1e-6f * std::abs(large[i]) : 1e-5f;
            ASSERT_NEAR(small[i], large[i], tolerance) << "value " << i;
          }
        }
        if (dense) {  // NaN is 0
          transform::TransformedBatch zeros = FirstRows(eval.x, 2);
          zeros.dense[3] = zeros.dense[16] = 0;
          std::vector<float> with_zeros;
          ASSERT_TRUE((*m)->Predict(zeros, &with_zeros).ok());
          EXPECT_EQ(with_zeros, std::vector<float>(small.begin(), small.begin() + 2 * per_row));
        }
        auto loaded = RoundTrip(**m, StrCat("net", bundles++), task, classes);
        ASSERT_TRUE(loaded.ok()) << loaded.status();
        std::vector<float> again;
        ASSERT_TRUE((*loaded)->Predict(FirstRows(eval.x, kNativeMaxRows), &again).ok());
        EXPECT_EQ(again, small);  // bit for bit
      }
    }
  }
}

// Predict runs concurrently on serving threads; each call's buffers are its own.
TEST_F(TorchModelsTest, SmallBatchesPredictConcurrently) {
  auto m = Train({{"type", "wide_deep"}, {"epochs", 1}, {"hidden_units", {64, 32}}});
  ASSERT_TRUE(m.ok()) << m.status();
  std::vector<std::vector<float>> expected(kNativeMaxRows + 1);
  for (size_t rows = 1; rows <= kNativeMaxRows; ++rows) {
    ASSERT_TRUE((*m)->Predict(FirstRows(s_.eval.x, rows), &expected[rows]).ok());
  }
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<float> out;
      for (int i = 0; i < 200; ++i) {
        const size_t rows = 1 + static_cast<size_t>(i * 7 + t) % kNativeMaxRows;
        if (!(*m)->Predict(FirstRows(s_.eval.x, rows), &out).ok() || out != expected[rows]) {
          ++mismatches;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(mismatches, 0);
}

// Both paths check ids and shapes with the same code: the same errors.
TEST_F(TorchModelsTest, SmallAndLargeBatchesRefuseBadInputsAlike) {
  for (const char* type : {"linear", "mlp", "wide_deep"}) {
    SCOPED_TRACE(type);
    auto m = Train({{"type", type}, {"epochs", 1}});
    ASSERT_TRUE(m.ok()) << m.status();
    for (int64_t id : {int64_t{3}, int64_t{-1}}) {
      transform::TransformedBatch large = s_.eval.x;  // 300 rows
      large.ids[1] = id;                              // row 0, column 1 (cardinality 3)
      std::vector<float> out;
      const absl::Status torch_error = (*m)->Predict(large, &out);
      const absl::Status native_error = (*m)->Predict(FirstRows(large, 1), &out);
      EXPECT_EQ(torch_error.code(), absl::StatusCode::kInvalidArgument);
      EXPECT_EQ(native_error, torch_error);
      EXPECT_EQ(native_error.message(),
                StrCat("categorical column 1 has id ", id, " in row 0; its cardinality is 3"));
    }
    transform::TransformedBatch narrow = FirstRows(s_.eval.x, 2);
    narrow.dense_dim = 8;
    narrow.num_rows = 4;
    std::vector<float> out;
    const absl::Status st = (*m)->Predict(narrow, &out);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(st.message(), HasSubstr("takes 16 dense and 2 categorical columns; got 8 and 2"));
  }
}

TEST_F(TorchModelsTest, WeightsThatDoNotFitTheArchitectureAreDataLoss) {
  auto m = Train({{"type", "mlp"}, {"epochs", 1}, {"hidden_units", {8}}});
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(RoundTrip(**m, "good").ok());
  auto bundle = Bundle::Open(Env::Default(), tmp_.File("good"));
  ASSERT_TRUE(bundle.ok());
  nlohmann::json arch = nlohmann::json::parse(*(*bundle)->ReadFile("model/arch.json"));
  arch["hidden_units"] = {4};
  auto w = BundleWriter::Create(Env::Default(), tmp_.File("bad"));
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->AddFile("model/arch.json", arch.dump()).ok());
  ASSERT_TRUE((*w)->AddFile("model/weights.pt", *(*bundle)->ReadFile("model/weights.pt")).ok());
  BundleManifest manifest;
  manifest.backend = "torch";
  manifest.model_type = "mlp";
  ASSERT_TRUE((*w)->Finish(manifest).ok());
  auto bad = Bundle::Open(Env::Default(), tmp_.File("bad"));
  ASSERT_TRUE(bad.ok());
  auto loaded = LoadModel(**bad, Task::kBinary, 2);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(loaded.status().message(), HasSubstr("model/weights.pt does not fit"));
}

// Resuming from any checkpoint ends with the model of the uninterrupted run: for each
// optimizer (their state is in the checkpoint), with dropout (libtorch's generator) and
// early stopping (its best weights and counters), from a checkpoint mid-epoch.
TEST_F(TorchModelsTest, ResumingFromACheckpointEndsWithTheUninterruptedModel) {
  for (const char* optimizer : {"adam", "sgd", "adagrad", "ftrl"}) {
    SCOPED_TRACE(optimizer);
    nlohmann::json p = {{"type", "wide_deep"},
                        {"epochs", 4},
                        {"batch_size", 64},
                        {"dropout", 0.3},
                        {"optimizer", optimizer}};
    TrainOptions o = Options(p);
    o.eval_every = 3;
    o.patience = 5;
    o.checkpoint_every = 5;  // 10 steps per epoch: mid-epoch and at an epoch's last step
    std::map<int64_t, std::string> checkpoints;
    o.on_checkpoint = [&](int64_t step, std::string bytes) {
      checkpoints[step] = std::move(bytes);
      return absl::OkStatus();
    };
    auto whole = Train(p, &o);
    ASSERT_TRUE(whole.ok()) << whole.status();
    // Steps 5, 10, ... of 40, unless early stopping ends the run sooner.
    ASSERT_GE(checkpoints.size(), 4u);
    for (int64_t at : {int64_t{5}, int64_t{10}, int64_t{20}}) {
      TrainOptions r = o;
      r.on_checkpoint = nullptr;
      r.resume_from = checkpoints.at(at);
      std::vector<int64_t> steps;
      r.on_step = [&](int64_t step, int64_t total) {
        steps.push_back(step);
        EXPECT_EQ(total, 40);
      };
      auto resumed = Train(p, &r);
      ASSERT_TRUE(resumed.ok()) << resumed.status();
      EXPECT_EQ(steps.front(), at + 1);
      EXPECT_EQ(Scores(**resumed, s_.eval), Scores(**whole, s_.eval));
      EXPECT_EQ((*resumed)->Summary()["best_step"], (*whole)->Summary()["best_step"]);
      EXPECT_EQ((*resumed)->Summary()["resumed_from_step"], at);
    }
  }
}

TEST_F(TorchModelsTest, ACheckpointOfAnotherRunIsDataLoss) {
  nlohmann::json p = {{"type", "mlp"}, {"epochs", 1}, {"batch_size", 100}};
  TrainOptions o = Options(p);
  o.checkpoint_every = 2;
  std::string saved;
  o.on_checkpoint = [&](int64_t, std::string bytes) {
    saved = std::move(bytes);
    return absl::OkStatus();
  };
  ASSERT_TRUE(Train(p, &o).ok());
  ASSERT_FALSE(saved.empty());
  o.on_checkpoint = nullptr;
  nlohmann::json linear = {{"type", "linear"}, {"epochs", 1}};
  o.resume_from = saved;
  auto other_type = Train(linear, &o);
  EXPECT_EQ(other_type.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(other_type.status().message()), HasSubstr("of a mlp model"));
  o.resume_from = "not a checkpoint";
  EXPECT_EQ(Train(p, &o).status().code(), absl::StatusCode::kDataLoss);
  o.resume_from = saved.substr(0, saved.size() / 2);
  EXPECT_EQ(Train(p, &o).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(TorchModelsTest, AFailingCheckpointEndsTraining) {
  nlohmann::json p = {{"type", "linear"}, {"epochs", 3}};
  TrainOptions o = Options(p);
  o.checkpoint_every = 4;
  o.on_checkpoint = [](int64_t, std::string) { return absl::ResourceExhaustedError("disk full"); };
  auto m = Train(p, &o);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace kiln::model
