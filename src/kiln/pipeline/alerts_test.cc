#include "kiln/pipeline/alerts.h"

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/testing/temp_dir.h"

namespace kiln::pipeline {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

ComponentResult Result(std::string name, std::string kind, ComponentState state, int exit_code) {
  ComponentResult c;
  c.name = std::move(name);
  c.kind = std::move(kind);
  c.state = state;
  c.exit_code = exit_code;
  c.findings = exit_code == 3;
  return c;
}

Pipeline WithPush(std::string to) {
  Pipeline p;
  p.name = "clicks";
  Component push;
  push.name = "push";
  push.kind = "push";
  push.args["to"] = Arg{.key = "to", .values = {std::move(to)}};
  p.components.push_back(push);
  return p;
}

std::vector<std::string> Names(const std::vector<AlertEvent>& events) {
  std::vector<std::string> out;
  for (const AlertEvent& e : events) out.push_back(e.event);
  return out;
}

TEST(AlertEventsTest, GatesPushesAndFailuresEachMakeAnEvent) {
  RunResult r;
  r.pipeline = "clicks";
  r.run_id = "day3";
  r.state = "failed";
  r.components = {Result("validate", "validate", ComponentState::kCached, 3),
                  Result("evaluate", "evaluate", ComponentState::kRan, 3),
                  Result("push", "push", ComponentState::kRan, 0),
                  Result("report", "command", ComponentState::kRan, 3),
                  Result("train", "train", ComponentState::kFailed, 1),
                  Result("stats", "stats", ComponentState::kRan, 0)};
  r.components[4].note = "exit 1";
  const std::vector<AlertEvent> events = AlertEventsOf(WithPush("serving/clicks"), r);
  EXPECT_THAT(Names(events),
              ElementsAre("anomalies", "not_blessed", "pushed", "findings", "run_failed"));
  EXPECT_EQ(events[2].text,
            "kiln: pipeline clicks, run day3: push pushed a new model version to serving/clicks");
  EXPECT_EQ(events[2].document["details"]["to"], "serving/clicks");
  EXPECT_EQ(events[4].component, "train");
  EXPECT_EQ(events[4].document["details"]["failed_components"][0], "train: exit 1");
  EXPECT_EQ(events[0].document["text"], events[0].text);  // Slack's field

  // A cached push pushed nothing; a clean run says nothing.
  r.state = "succeeded";
  r.components = {Result("push", "push", ComponentState::kCached, 0)};
  EXPECT_TRUE(AlertEventsOf(WithPush("x"), r).empty());
  r.state = "interrupted";
  r.signal = 15;
  const auto interrupted = AlertEventsOf(WithPush("x"), r);
  ASSERT_EQ(interrupted.size(), 1u);
  EXPECT_THAT(interrupted[0].text, HasSubstr("interrupted by signal 15"));
}

TEST(SendAlertsTest, RetriesWhatMayPassAndNeverThrowsOnFailure) {
  testing::TempDir tmp;
  Pipeline p;
  p.alerts = {
      AlertSink{.webhook = "http://127.0.0.1:1/flaky", .retries = 3, .backoff_seconds = 0},
      AlertSink{.webhook = "http://127.0.0.1:1/refuses", .retries = 3, .backoff_seconds = 0},
      AlertSink{.webhook = "http://127.0.0.1:1/down", .retries = 2, .backoff_seconds = 0},
      AlertSink{.log = tmp.File("alerts.jsonl")}};
  std::vector<std::string> calls;
  int flaky = 0;
  PostFn post = [&](const std::string& url, const std::string& body, std::chrono::milliseconds) {
    calls.push_back(url.substr(url.rfind('/') + 1));
    if (url.ends_with("flaky")) {
      return ++flaky < 3 ? absl::UnavailableError("503") : absl::OkStatus();
    }
    if (url.ends_with("refuses")) return absl::FailedPreconditionError("answered 404");
    return absl::DeadlineExceededError("timed out");
  };
  AlertEvent e{.event = "pushed", .text = "t", .document = {{"text", "t"}, {"event", "pushed"}}};
  std::FILE* warnings = std::tmpfile();
  EXPECT_EQ(SendAlerts(p, {e, e}, post, warnings), 4);  // refuses and down, twice each
  // flaky: 2 failures then ok, then ok at once; refuses: no retry; down: 1 + 2 retries.
  EXPECT_THAT(calls, ElementsAre("flaky", "flaky", "flaky", "flaky", "refuses", "refuses", "down",
                                 "down", "down", "down", "down", "down"));
  std::rewind(warnings);
  char buf[512] = {};
  ASSERT_NE(std::fgets(buf, sizeof(buf), warnings), nullptr);
  EXPECT_STREQ(buf,
               "kiln run: warning: alert pushed not delivered to http://127.0.0.1:1/refuses: "
               "answered 404\n");
  std::fclose(warnings);
  std::ifstream log(tmp.File("alerts.jsonl"));
  std::string line;
  int lines = 0;
  while (std::getline(log, line)) {
    EXPECT_EQ(line, R"({"event":"pushed","text":"t"})");
    ++lines;
  }
  EXPECT_EQ(lines, 2);
}

}  // namespace
}  // namespace kiln::pipeline
