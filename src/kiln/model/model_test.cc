#include "kiln/model/model.h"

#include <xgboost/c_api.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/base/env.h"
#include "kiln/base/str.h"
#include "kiln/model/bundle.h"
#include "kiln/testing/temp_dir.h"

namespace kiln::model {
namespace {

using ::testing::HasSubstr;

// Against the definition: the fraction of (positive, negative) pairs ordered right, ties
// counted half; scores of both signs, many ties, -0 and +0 as one score.
TEST(MetricsTest, AucEqualsThePairwiseDefinition) {
  std::mt19937 rng(7);
  for (size_t n : {size_t{2}, size_t{17}, size_t{1000}, size_t{5000}}) {
    std::vector<float> scores(n), labels(n);
    for (size_t i = 0; i < n; ++i) {
      int bucket = static_cast<int>(rng() % 200) - 100;
      scores[i] = bucket == 0 ? (rng() % 2 ? 0.0f : -0.0f) : bucket * 0.37f;
      if (rng() % 3 == 0) scores[i] = std::ldexp(scores[i], static_cast<int>(rng() % 60) - 30);
      labels[i] = static_cast<float>(rng() % 2);
    }
    labels[0] = 0, labels[1] = 1;
    double good = 0, pairs = 0;
    for (size_t i = 0; i < n; ++i) {
      if (labels[i] != 1) continue;
      for (size_t j = 0; j < n; ++j) {
        if (labels[j] != 0) continue;
        pairs += 1;
        good += scores[i] > scores[j] ? 1 : scores[i] == scores[j] ? 0.5 : 0;
      }
    }
    EXPECT_NEAR(BinaryAuc(scores, labels), good / pairs, 1e-12) << n;
  }
}

TEST(MetricsTest, AucCountsTiesHalf) {
  // Pairs (pos, neg): (0.8,0.1) (0.8,0.4) (0.8,0.8)=half (0.35,0.1) (0.35,0.4)=0 (0.35,0.8)=0
  // -> (1 + 1 + 0.5 + 1) / 6.
  EXPECT_DOUBLE_EQ(BinaryAuc({0.1f, 0.4f, 0.35f, 0.8f, 0.8f}, {0, 0, 1, 1, 0}), 3.5 / 6);
  EXPECT_DOUBLE_EQ(BinaryAuc({0.1f, 0.2f, 0.3f}, {0, 1, 1}), 1.0);
  EXPECT_DOUBLE_EQ(BinaryAuc({0.5f, 0.5f}, {0, 1}), 0.5);
  EXPECT_TRUE(std::isnan(BinaryAuc({0.1f, 0.2f}, {1, 1})));
}

TEST(MetricsTest, BinaryMulticlassRegression) {
  Metrics b = ComputeMetrics(Task::kBinary, 2, {0.9f, 0.2f, 0.6f, 0.4f}, {1, 0, 0, 1});
  EXPECT_DOUBLE_EQ(b.at("accuracy"), 0.5);
  EXPECT_NEAR(b.at("log_loss"),
              -(std::log(0.9) + std::log(0.8) + std::log(0.4) + std::log(0.4)) / 4, 1e-6);
  EXPECT_DOUBLE_EQ(b.at("auc"), 0.75);
  Metrics m = ComputeMetrics(Task::kMulticlass, 3, {0.7f, 0.2f, 0.1f, 0.1f, 0.3f, 0.6f}, {0, 1});
  EXPECT_DOUBLE_EQ(m.at("accuracy"), 0.5);
  EXPECT_NEAR(m.at("log_loss"), -(std::log(0.7) + std::log(0.3)) / 2, 1e-6);
  Metrics r = ComputeMetrics(Task::kRegression, 1, {1, 2, 4}, {1, 3, 3});
  EXPECT_DOUBLE_EQ(r.at("rmse"), std::sqrt(2.0 / 3));
  EXPECT_DOUBLE_EQ(r.at("mae"), 2.0 / 3);
  EXPECT_DOUBLE_EQ(r.at("r2"), 1 - 2.0 / (24.0 / 9));  // mean 7/3, SS_tot 24/9
}

TEST(ModelRegistryTest, UnknownTypeListsTheKnownOnes) {
  auto r = TrainModel("forest", {}, {}, {}, {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("model types: cnn, gbdt, linear, mlp, wide_deep"));
  EXPECT_EQ(ParseTask("ranking").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParseTask("multiclass"), Task::kMulticlass);
  EXPECT_TRUE(HigherIsBetter("auc"));
  EXPECT_FALSE(HigherIsBetter("log_loss"));
}

// XGBoost's own prediction of `x` through a DMatrix, by a booster loaded from `model_json`.
std::vector<float> DMatrixPredict(const std::string& model_json,
                                  const transform::TransformedBatch& x) {
  const size_t cols = x.dense_dim + x.num_categorical;
  std::vector<float> f(x.num_rows * cols);
  for (size_t r = 0; r < x.num_rows; ++r) {
    for (size_t c = 0; c < x.dense_dim; ++c) f[r * cols + c] = x.dense_at(r, c);
    for (size_t c = 0; c < x.num_categorical; ++c) {
      f[r * cols + x.dense_dim + c] = static_cast<float>(x.id_at(r, c));
    }
  }
  BoosterHandle booster = nullptr;
  DMatrixHandle m = nullptr;
  EXPECT_EQ(XGBoosterCreate(nullptr, 0, &booster), 0);
  EXPECT_EQ(XGBoosterLoadModelFromBuffer(booster, model_json.data(), model_json.size()), 0);
  EXPECT_EQ(XGDMatrixCreateFromMat(f.data(), x.num_rows, cols,
                                   std::numeric_limits<float>::quiet_NaN(), &m),
            0);
  bst_ulong len = 0;
  const float* result = nullptr;
  EXPECT_EQ(XGBoosterPredict(booster, m, 0, 0, 0, &len, &result), 0);
  std::vector<float> out(result, result + len);
  XGDMatrixFree(m);
  XGBoosterFree(booster);
  return out;
}

// The first `n` rows of `x`.
transform::TransformedBatch Head(const transform::TransformedBatch& x, size_t n) {
  transform::TransformedBatch h = x;
  h.num_rows = n;
  h.dense.resize(n * x.dense_dim);
  h.ids.resize(n * x.num_categorical);
  return h;
}

// gbdt scores in place (no DMatrix) and small batches on the calling thread: the scores
// are still XGBoost's DMatrix prediction bit for bit, for the trained and the loaded
// model, batches of one block of rows or more, and calls from several threads at once.
TEST(GbdtTest, ScoresAreXgboostsDMatrixPredictionBitForBit) {
  std::mt19937 rng(9);
  std::normal_distribution<float> normal;
  transform::TransformedBatch x;
  x.num_rows = 300;
  x.dense_dim = 4;
  x.num_categorical = 1;
  for (size_t r = 0; r < x.num_rows; ++r) {
    for (size_t c = 0; c < x.dense_dim; ++c) {
      x.dense.push_back(r % 11 == c ? std::numeric_limits<float>::quiet_NaN() : normal(rng));
    }
    x.ids.push_back(static_cast<int64_t>(r % 5));
  }
  transform::OutputSignature signature;
  for (size_t c = 0; c < x.dense_dim; ++c) signature.dense.push_back({StrCat("d", c)});
  signature.categorical.push_back({"cat", transform::OutputKind::kCategorical, 5, 4});
  for (Task task : {Task::kBinary, Task::kMulticlass, Task::kRegression}) {
    SCOPED_TRACE(TaskName(task));
    const int classes = task == Task::kMulticlass ? 3 : 2;
    Examples train{&x, {}, {}};
    for (size_t r = 0; r < x.num_rows; ++r) {
      const float d = x.dense[r * x.dense_dim + 1];
      const float v = (std::isnan(d) ? 0.0f : d) + 0.5f * static_cast<float>(x.ids[r]);
      train.labels.push_back(task == Task::kRegression ? v
                             : task == Task::kBinary   ? (v > 0.5f ? 1.0f : 0.0f)
                                                       : static_cast<float>(r % 3));
    }
    TrainOptions o;
    o.task = task;
    o.num_classes = classes;
    o.params = {{"type", "gbdt"}, {"num_rounds", 8}, {"max_depth", 3}};
    absl::StatusOr<std::unique_ptr<Model>> trained = TrainModel("gbdt", o, signature, train, train);
    ASSERT_TRUE(trained.ok()) << trained.status();
    kiln::testing::TempDir tmp;
    const std::string dir = tmp.File("bundle");
    auto writer = BundleWriter::Create(Env::Default(), dir);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*trained)->Save(writer->get()).ok());
    BundleManifest manifest;
    manifest.backend = "xgboost";
    manifest.model_type = "gbdt";
    ASSERT_TRUE((*writer)->Finish(manifest).ok());
    absl::StatusOr<std::unique_ptr<Bundle>> bundle = Bundle::Open(Env::Default(), dir);
    ASSERT_TRUE(bundle.ok()) << bundle.status();
    absl::StatusOr<std::string> json = (*bundle)->ReadFile("model/xgboost.json");
    ASSERT_TRUE(json.ok());
    absl::StatusOr<std::unique_ptr<Model>> loaded = LoadModel(**bundle, task, classes);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    for (size_t n : {size_t{1}, size_t{2}, size_t{64}, size_t{65}, size_t{300}}) {
      const transform::TransformedBatch head = Head(x, n);
      const std::vector<float> want = DMatrixPredict(*json, head);
      ASSERT_EQ(want.size(), n * (task == Task::kMulticlass ? 3u : 1u));
      for (const Model* m : {trained->get(), loaded->get()}) {
        std::vector<float> got;
        ASSERT_TRUE(m->Predict(head, &got).ok());
        ASSERT_EQ(got.size(), want.size()) << n;
        for (size_t i = 0; i < got.size(); ++i) {
          ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
              << "rows " << n << ", value " << i << ": " << got[i] << " vs " << want[i];
        }
      }
    }
    // Threads at once, each with its own proxy matrix.
    const std::vector<float> want = DMatrixPredict(*json, Head(x, 3));
    auto work = [&](bool* ok) {
      for (int i = 0; i < 50; ++i) {
        std::vector<float> got;
        *ok = *ok && (*loaded)->Predict(Head(x, 3), &got).ok() && got == want;
      }
    };
    bool ok1 = true, ok2 = true;
    std::thread a(work, &ok1), b(work, &ok2);
    a.join();
    b.join();
    EXPECT_TRUE(ok1);
    EXPECT_TRUE(ok2);
  }
}

}  // namespace
}  // namespace kiln::model
