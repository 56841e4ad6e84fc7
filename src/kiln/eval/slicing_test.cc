#include "kiln/eval/slicing.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kiln::eval {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

data::Column StringColumn(const std::string& name, const std::vector<const char*>& values) {
  data::Column c;
  c.name = name;
  c.type = data::ValueType::kString;
  for (const char* v : values) {
    if (v == nullptr) {
      c.AddMissing();
    } else {
      c.AddString(v);
    }
  }
  return c;
}

data::Column FloatColumn(const std::string& name, const std::vector<double>& values) {
  data::Column c;
  c.name = name;
  c.type = data::ValueType::kFloat;
  for (double v : values) c.AddFloat(v);
  return c;
}

data::Batch People() {
  data::Batch b;
  b.num_rows = 5;
  b.columns.push_back(StringColumn("user_type", {"new", "returning", nullptr, "new", "new"}));
  b.columns.push_back(StringColumn("device", {"mobile", "desktop", "mobile", "desktop", "mobile"}));
  b.columns.push_back(FloatColumn("price", {5, 10, 19.5, 20, NAN}));
  data::Column age;
  age.name = "age";
  age.type = data::ValueType::kInt;
  for (int64_t v : {30, 7, 30, 100, 7}) age.AddInt(v);
  b.columns.push_back(std::move(age));
  return b;
}

SliceSpec Spec(std::vector<SliceDimension> dims) { return SliceSpec{std::move(dims)}; }

std::vector<std::pair<std::string, std::vector<uint32_t>>> SliceAll(std::vector<SliceSpec> specs,
                                                                    const data::Batch& b,
                                                                    std::vector<uint8_t> keep) {
  Slicer s(std::move(specs));
  EXPECT_TRUE(s.Add(b, keep, 0).ok());
  uint32_t n = 0;
  for (uint8_t k : keep) n += k;
  auto slices = s.Finish(n);
  EXPECT_TRUE(slices.ok()) << slices.status();
  std::vector<std::pair<std::string, std::vector<uint32_t>>> out;
  for (const Slice& x : *slices) out.push_back({x.name, x.rows});
  return out;
}

using P = std::pair<std::string, std::vector<uint32_t>>;

TEST(Slicer, FeatureValuesCrossesAndMissing) {
  auto out = SliceAll({Spec({{"user_type", {}}}), Spec({{"user_type", {}}, {"device", {}}})},
                      People(), {1, 1, 1, 1, 1});
  EXPECT_THAT(out, ElementsAre(P{"overall", {0, 1, 2, 3, 4}}, P{"user_type=new", {0, 3, 4}},
                               P{"user_type=returning", {1}}, P{"user_type=(missing)", {2}},
                               P{"user_type=new,device=desktop", {3}},
                               P{"user_type=new,device=mobile", {0, 4}},
                               P{"user_type=returning,device=desktop", {1}},
                               P{"user_type=(missing),device=mobile", {2}}));
}

TEST(Slicer, NumericBucketsAndValuesInNumericOrder) {
  auto out =
      SliceAll({Spec({{"price", {10, 20}}}), Spec({{"age", {}}})}, People(), {1, 1, 1, 1, 1});
  EXPECT_THAT(out, ElementsAre(P{"overall", {0, 1, 2, 3, 4}}, P{"price=[-inf,10)", {0}},
                               P{"price=[10,20)", {1, 2}}, P{"price=[20,inf)", {3}},
                               P{"price=(missing)", {4}}, P{"age=7", {1, 4}}, P{"age=30", {0, 2}},
                               P{"age=100", {3}}));
}

TEST(Slicer, SkipsRowsNotKeptAndNumbersKeptRowsAcrossBatches) {
  Slicer s({Spec({{"device", {}}})});
  data::Batch b = People();
  ASSERT_TRUE(s.Add(b, std::vector<uint8_t>{1, 0, 1, 0, 1}, 0).ok());
  ASSERT_TRUE(s.Add(b, std::vector<uint8_t>{0, 1, 0, 0, 0}, 3).ok());
  auto slices = s.Finish(4);
  ASSERT_TRUE(slices.ok());
  ASSERT_EQ(slices->size(), 3u);
  EXPECT_EQ((*slices)[1].name, "device=desktop");
  EXPECT_THAT((*slices)[1].rows, ElementsAre(3));
  EXPECT_EQ((*slices)[1].spec, "device");
  EXPECT_EQ((*slices)[2].name, "device=mobile");
  EXPECT_THAT((*slices)[2].rows, ElementsAre(0, 1, 2));
}

TEST(Slicer, ListValuedRowsJoinEverySliceOnce) {
  data::Batch b;
  b.num_rows = 2;
  data::Column tags;
  tags.name = "tag";
  tags.type = data::ValueType::kString;
  tags.PushString("b");
  tags.PushString("a");
  tags.PushString("b");
  tags.EndRow(3);
  tags.EndRow(0);  // present, empty: missing
  b.columns.push_back(std::move(tags));
  auto out = SliceAll({Spec({{"tag", {}}})}, b, {1, 1});
  EXPECT_THAT(out, ElementsAre(P{"overall", {0, 1}}, P{"tag=a", {0}}, P{"tag=b", {0}},
                               P{"tag=(missing)", {1}}));
}

TEST(Slicer, Errors) {
  Slicer strings({Spec({{"device", {1.0}}})});
  auto st = strings.Add(People(), std::vector<uint8_t>(5, 1), 0);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("'device' has bucket boundaries but is a string column"));
  Slicer absent({Spec({{"country", {}}})});
  ASSERT_TRUE(absent.Add(People(), std::vector<uint8_t>(5, 1), 0).ok());
  auto f = absent.Finish(5);
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(f.status().message(), HasSubstr("slicing feature 'country' is not a column"));
}

}  // namespace
}  // namespace kiln::eval
