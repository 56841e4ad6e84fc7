#include "kiln/serving/infra_validator.h"

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/serving/testing_people.h"
#include "kiln/testing/temp_dir.h"

namespace kiln::serving {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

class InfraValidatorTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(testing::TrainPeopleBundle(tmp_).ok()); }
  std::string Bundle() const { return tmp_.File("models/people/1"); }
  kiln::testing::TempDir tmp_;
};

TEST_F(InfraValidatorTest, AHealthyModelIsServedAndBlessed) {
  InfraValidationOptions o;
  o.requests = 40;
  o.rows = {{{"age", 50}, {"income", 1.5}, {"city", "Oslo"}}};
  auto r = InfraValidate(Env::Default(), Bundle(), o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->blessed);
  EXPECT_THAT(r->failing_checks, SizeIs(0));
  EXPECT_EQ(r->requests, 40);
  EXPECT_EQ(r->failed_requests, 0);
  EXPECT_GT(r->p99_ms, 0);
  EXPECT_LE(r->p50_ms, r->p99_ms);
  EXPECT_GT(r->load_ms, 0);
  const nlohmann::json j = InfraBlessingJson(*r, "m/1");
  EXPECT_EQ(j["status"], "INFRA_BLESSED");
  EXPECT_EQ(j["model"], "m/1");
  // The link to the bundle is gone, the bundle is not.
  EXPECT_TRUE(std::filesystem::exists(Bundle() + "/manifest.json"));
}

TEST_F(InfraValidatorTest, AModelThatDoesNotLoadIsNotBlessed) {
  const std::string manifest = Bundle() + "/manifest.json";
  const nlohmann::json m = nlohmann::json::parse(std::ifstream(manifest));
  const std::string victim = Bundle() + "/" + m["files"][0]["path"].get<std::string>();
  std::ofstream(victim, std::ios::app) << "tampered";
  auto r = InfraValidate(Env::Default(), Bundle(), {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->blessed);
  ASSERT_THAT(r->failing_checks, SizeIs(1));
  EXPECT_THAT(r->failing_checks[0], HasSubstr("the model does not load"));
  EXPECT_THAT(r->failing_checks[0], HasSubstr(m["files"][0]["path"].get<std::string>()));
  EXPECT_EQ(r->requests, 0);
}

TEST_F(InfraValidatorTest, RequestsTheServerRefusesAndSlowAnswersFailTheirChecks) {
  InfraValidationOptions o;
  o.requests = 10;
  o.max_p99_ms = 1e-6;  // no real server answers in a nanosecond
  o.rows = {{{"age", "fifty"}, {"income", 1.5}, {"city", "Oslo"}}};
  auto r = InfraValidate(Env::Default(), Bundle(), o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->blessed);
  ASSERT_THAT(r->failing_checks, SizeIs(2));
  // The warm-up rows succeed; the bad row fails each time it is sent.
  EXPECT_GT(r->failed_requests, 0);
  EXPECT_LT(r->failed_requests, r->requests);
  EXPECT_THAT(r->failing_checks[0], HasSubstr("answered 400"));
  EXPECT_THAT(r->failing_checks[0], HasSubstr("age"));
  EXPECT_THAT(r->failing_checks[1], HasSubstr("p99 latency"));
  EXPECT_EQ(InfraBlessingJson(*r, "m")["status"], "INFRA_NOT_BLESSED");
}

TEST_F(InfraValidatorTest, BadOptionsAreRefused) {
  InfraValidationOptions o;
  o.requests = 0;
  EXPECT_EQ(InfraValidate(Env::Default(), Bundle(), o).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kiln::serving
