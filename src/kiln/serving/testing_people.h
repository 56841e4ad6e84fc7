// Test helpers: a small gbdt bundle over three kinds of feature (INT age, FLOAT income,
// STRING city; y = 1 exactly when age > 40 and the city is not "Lima") and four rows to
// send it, shared by the protocol tests. Header-only; for tests.
#ifndef KILN_SERVING_TESTING_PEOPLE_H_
#define KILN_SERVING_TESTING_PEOPLE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "kiln/base/str.h"
#include "kiln/data/batch.h"
#include "kiln/testing/temp_dir.h"
#include "kiln/train/trainer.h"

namespace kiln::serving::testing {

struct PeopleRow {
  int64_t age;
  double income;  // exact in FP32 too
  std::string city;
};
inline const std::vector<PeopleRow> kPeopleRows = {
    {25, 1500.5, "Oslo"}, {61, 300.25, "Lima"}, {47, 99.0, "Oslo"}, {33, 12.5, "Quito"}};

// Trains the bundle (5 rounds on 300 generated rows) into `tmp`/models/people/1.
inline absl::Status TrainPeopleBundle(const kiln::testing::TempDir& tmp) {
  std::string csv = "age,income,city,y\n";
  const char* cities[] = {"Oslo", "Lima", "Quito"};
  for (int i = 0; i < 300; ++i) {
    const int age = 18 + (i * 7) % 60;
    const char* city = cities[i % 3];
    StrAppend(&csv, age, ",", 100 + (i * 37) % 2000, ".5,", city, ",",
              age > 40 && std::string(city) != "Lima" ? 1 : 0, "\n");
  }
  train::TrainRequest req;
  req.data = tmp.Write("data.csv", csv);
  req.config.label = "y";
  req.config.transform.exclude = {"y"};  // as ParseTrainConfig does: not an input
  req.config.model_type = "gbdt";
  req.config.model_params = {{"type", "gbdt"}, {"num_rounds", 5}};
  req.config.checkpoint_every = 0;
  req.out_dir = tmp.File("models/people/1");
  return train::Train(Env::Default(), req).status();
}

// kPeopleRows as a Batch with the bundle's input columns.
inline data::Batch PeopleBatch() {
  data::Batch b;
  data::Column age{.name = "age", .type = data::ValueType::kInt};
  data::Column income{.name = "income", .type = data::ValueType::kFloat};
  data::Column city{.name = "city", .type = data::ValueType::kString};
  for (const PeopleRow& r : kPeopleRows) {
    age.AddInt(r.age);
    income.AddFloat(r.income);
    city.AddString(r.city);
  }
  b.columns = {age, income, city};
  b.num_rows = kPeopleRows.size();
  return b;
}

// A suite whose tests share one people bundle, trained once for the suite into
// tmp_->File("models/people/1"). Tests must not change it.
class PeopleSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new kiln::testing::TempDir();
    const absl::Status st = TrainPeopleBundle(*tmp_);
    ASSERT_TRUE(st.ok()) << st;
  }
  static void TearDownTestSuite() {
    delete tmp_;
    tmp_ = nullptr;
  }
  inline static kiln::testing::TempDir* tmp_ = nullptr;
};

}  // namespace kiln::serving::testing

#endif  // KILN_SERVING_TESTING_PEOPLE_H_
