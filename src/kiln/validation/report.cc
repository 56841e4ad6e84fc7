#include "kiln/validation/report.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "kiln/validation/stats_view.h"
#include "nlohmann/json.hpp"

namespace kiln::validation {
namespace {

std::string MeasurementName(tfmd::DriftSkewInfo::Measurement::Type type) {
  switch (type) {
    case tfmd::DriftSkewInfo::Measurement::L_INFTY:
      return "L-infinity";
    case tfmd::DriftSkewInfo::Measurement::JENSEN_SHANNON_DIVERGENCE:
      return "Jensen-Shannon";
    default:
      return tfmd::DriftSkewInfo::Measurement::Type_Name(type);
  }
}

void AppendInfo(const std::string& label, const tfmd::AnomalyInfo& info, std::string* out) {
  absl::StrAppend(out, "  ", label, "  ", tfmd::AnomalyInfo::Severity_Name(info.severity()), "  ",
                  info.short_description(), "\n");
  for (const auto& r : info.reason()) {
    absl::StrAppend(out, "      ", tfmd::AnomalyInfo::Type_Name(r.type()), ": ",
                    r.description().empty() ? r.short_description() : r.description(), "\n");
  }
}

}  // namespace

std::string FormatReport(const ValidationResult& result) {
  const tfmd::Anomalies& a = result.anomalies;
  std::string out;
  if (!HasAnomalies(a)) {
    out = "No anomalies found.\n";
  } else {
    int count = a.anomaly_info_size() + (a.dataset_anomaly_info().reason_size() > 0 ? 1 : 0) +
                (a.data_missing() ? 1 : 0);
    absl::StrAppend(&out, count, count == 1 ? " anomaly" : " anomalies", " found:\n");
    if (a.data_missing()) out += "  (dataset)  ERROR  The dataset has no examples.\n";
    if (a.dataset_anomaly_info().reason_size() > 0) {
      AppendInfo("(dataset)", a.dataset_anomaly_info(), &out);
    }
    std::vector<std::string> keys;
    for (const auto& [key, info] : a.anomaly_info()) keys.push_back(key);
    std::sort(keys.begin(), keys.end());
    for (const std::string& key : keys) AppendInfo(key, a.anomaly_info().at(key), &out);
  }
  for (ComparisonKind kind : {ComparisonKind::kDrift, ComparisonKind::kSkew}) {
    bool header = false;
    for (const FeatureComparison& c : result.comparisons) {
      if (c.kind != kind) continue;
      if (!header) {
        out += kind == ComparisonKind::kDrift ? "Drift (current vs. previous span):\n"
                                              : "Skew (training vs. serving):\n";
        header = true;
      }
      absl::StrAppend(&out, "  ", c.feature, ":");
      bool high = false;
      for (const auto& m : c.measurements) {
        bool above = m.value() > m.threshold();
        high = high || above;
        absl::StrAppend(&out, " ", MeasurementName(m.type()), " ", absl::SixDigits(m.value()),
                        above ? " > " : " <= ", absl::SixDigits(m.threshold()), ";");
      }
      if (c.kl_divergence) {
        absl::StrAppend(&out, " KL ", absl::SixDigits(*c.kl_divergence), " bits;");
      }
      for (const auto& r : c.reasons) {
        if (r.type() == tfmd::AnomalyInfo::COMPARATOR_CONTROL_DATA_MISSING) {
          absl::StrAppend(&out, " ", r.description());
          high = true;
        }
      }
      absl::StrAppend(&out, high ? " ANOMALY" : " ok");
      if (!c.note.empty()) absl::StrAppend(&out, " (", c.note, ")");
      out += "\n";
    }
  }
  return out;
}

std::string AnomaliesToText(const tfmd::Anomalies& anomalies) {
  google::protobuf::TextFormat::Printer printer;
  printer.SetUseUtf8StringEscaping(true);
  std::string out;
  printer.PrintToString(anomalies, &out);
  return out;
}

absl::StatusOr<std::string> AnomaliesToJson(const tfmd::Anomalies& anomalies) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  std::string out;
  auto status = google::protobuf::util::MessageToJsonString(anomalies, &out, options);
  if (!status.ok()) {
    return absl::InternalError(absl::StrCat("cannot write anomalies as JSON: ", status.ToString()));
  }
  return out;
}

std::string ComparisonsToJson(const std::vector<FeatureComparison>& comparisons) {
  nlohmann::ordered_json arr = nlohmann::ordered_json::array();
  for (const FeatureComparison& c : comparisons) {
    nlohmann::ordered_json ms = nlohmann::ordered_json::array();
    for (const auto& m : c.measurements) {
      ms.push_back({{"type", tfmd::DriftSkewInfo::Measurement::Type_Name(m.type())},
                    {"value", m.value()},
                    {"threshold", m.threshold()}});
    }
    nlohmann::ordered_json item = {{"feature", c.feature},
                                   {"kind", c.kind == ComparisonKind::kDrift ? "drift" : "skew"},
                                   {"measurements", ms},
                                   {"kl_divergence", nullptr},
                                   {"anomalous", !c.reasons.empty()},
                                   {"note", c.note}};
    if (c.kl_divergence) item["kl_divergence"] = *c.kl_divergence;
    arr.push_back(std::move(item));
  }
  return arr.dump(2) + "\n";
}

absl::Status WriteValidationOutputs(Env* env, const std::string& dir,
                                    const ValidationResult& result) {
  KILN_RETURN_IF_ERROR(env->CreateDirs(dir));
  KILN_RETURN_IF_ERROR(WriteFileAtomically(env, JoinPath(dir, "anomalies.pbtxt"),
                                           AnomaliesToText(result.anomalies)));
  KILN_ASSIGN_OR_RETURN(std::string json, AnomaliesToJson(result.anomalies));
  KILN_RETURN_IF_ERROR(WriteFileAtomically(env, JoinPath(dir, "anomalies.json"), json));
  return WriteFileAtomically(env, JoinPath(dir, "drift_skew.json"),
                             ComparisonsToJson(result.comparisons));
}

}  // namespace kiln::validation
