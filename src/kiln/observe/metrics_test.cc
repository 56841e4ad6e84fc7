#include "kiln/observe/metrics.h"

#include "gtest/gtest.h"

namespace kiln::observe {
namespace {

TEST(MetricsTest, ExposesCountersGaugesAndCumulativeHistograms) {
  MetricsRegistry r;
  r.DeclareCounter("kiln_requests_total", "Requests.");
  r.DeclareGauge("kiln_versions", "Loaded versions.");
  r.DeclareHistogram("kiln_latency_seconds", "Latency.", {0.01, 0.001, 0.1});
  r.Add("kiln_requests_total", {{"model", "a"}, {"code", "200"}});
  r.Add("kiln_requests_total", {{"model", "a"}, {"code", "200"}}, 2);
  r.Add("kiln_requests_total", {{"model", "say \"hi\"\\\n"}, {"code", "404"}});
  r.Set("kiln_versions", {}, 3);
  for (double v : {0.0005, 0.001, 0.05, 7.0}) r.Observe("kiln_latency_seconds", {{"api", "v1"}}, v);
  r.Add("undeclared", {});              // ignored
  r.Set("kiln_requests_total", {}, 1);  // wrong type: ignored
  EXPECT_EQ(r.Expose(),
            "# HELP kiln_latency_seconds Latency.\n"
            "# TYPE kiln_latency_seconds histogram\n"
            "kiln_latency_seconds_bucket{api=\"v1\",le=\"0.001\"} 2\n"
            "kiln_latency_seconds_bucket{api=\"v1\",le=\"0.01\"} 2\n"
            "kiln_latency_seconds_bucket{api=\"v1\",le=\"0.1\"} 3\n"
            "kiln_latency_seconds_bucket{api=\"v1\",le=\"+Inf\"} 4\n"
            "kiln_latency_seconds_sum{api=\"v1\"} 7.0515\n"
            "kiln_latency_seconds_count{api=\"v1\"} 4\n"
            "# HELP kiln_requests_total Requests.\n"
            "# TYPE kiln_requests_total counter\n"
            "kiln_requests_total{model=\"a\",code=\"200\"} 3\n"
            "kiln_requests_total{model=\"say \\\"hi\\\"\\\\\\n\",code=\"404\"} 1\n"
            "# HELP kiln_versions Loaded versions.\n"
            "# TYPE kiln_versions gauge\n"
            "kiln_versions 3\n");
}

}  // namespace
}  // namespace kiln::observe
