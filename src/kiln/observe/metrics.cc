#include "kiln/observe/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "kiln/base/str.h"

namespace kiln::observe {
namespace {

std::string Number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  return StrCat(v);  // shortest text that reads back as v
}

std::string Escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string LabelText(const Labels& labels, const std::string& extra_name = "",
                      const std::string& extra_value = "") {
  std::string out;
  for (const auto& [k, v] : labels) out += (out.empty() ? "" : ",") + k + "=\"" + Escape(v) + "\"";
  if (!extra_name.empty()) {
    out += (out.empty() ? "" : ",") + extra_name + "=\"" + extra_value + "\"";
  }
  return out.empty() ? "" : "{" + out + "}";
}

}  // namespace

void MetricsRegistry::DeclareCounter(const std::string& name, const std::string& help) {
  std::lock_guard<std::mutex> lock(mu_);
  families_.try_emplace(name, Family{Type::kCounter, help, {}, {}});
}

void MetricsRegistry::DeclareGauge(const std::string& name, const std::string& help) {
  std::lock_guard<std::mutex> lock(mu_);
  families_.try_emplace(name, Family{Type::kGauge, help, {}, {}});
}

void MetricsRegistry::DeclareHistogram(const std::string& name, const std::string& help,
                                       std::vector<double> bounds) {
  std::sort(bounds.begin(), bounds.end());
  std::lock_guard<std::mutex> lock(mu_);
  families_.try_emplace(name, Family{Type::kHistogram, help, std::move(bounds), {}});
}

MetricsRegistry::Family* MetricsRegistry::Find(const std::string& name, Type type) {
  auto it = families_.find(name);
  return it != families_.end() && it->second.type == type ? &it->second : nullptr;
}

void MetricsRegistry::Add(const std::string& counter, const Labels& labels, double value) {
  std::lock_guard<std::mutex> lock(mu_);
  if (Family* f = Find(counter, Type::kCounter)) f->series[labels].value += value;
}

void MetricsRegistry::SetTotal(const std::string& counter, const Labels& labels, double total) {
  std::lock_guard<std::mutex> lock(mu_);
  if (Family* f = Find(counter, Type::kCounter)) f->series[labels].value = total;
}

void MetricsRegistry::Set(const std::string& gauge, const Labels& labels, double value) {
  std::lock_guard<std::mutex> lock(mu_);
  if (Family* f = Find(gauge, Type::kGauge)) f->series[labels].value = value;
}

void MetricsRegistry::Observe(const std::string& histogram, const Labels& labels, double value) {
  std::lock_guard<std::mutex> lock(mu_);
  Family* f = Find(histogram, Type::kHistogram);
  if (f == nullptr) return;
  Series& s = f->series[labels];
  if (s.buckets.empty()) s.buckets.assign(f->bounds.size(), 0);
  const size_t b = std::lower_bound(f->bounds.begin(), f->bounds.end(), value) - f->bounds.begin();
  if (b < s.buckets.size()) ++s.buckets[b];
  s.value += value;
  ++s.count;
}

std::string MetricsRegistry::Expose() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    const char* type = f.type == Type::kCounter ? "counter"
                       : f.type == Type::kGauge ? "gauge"
                                                : "histogram";
    out += "# HELP " + name + " " + f.help + "\n# TYPE " + name + " " + type + "\n";
    for (const auto& [labels, s] : f.series) {
      if (f.type != Type::kHistogram) {
        out += name + LabelText(labels) + " " + Number(s.value) + "\n";
        continue;
      }
      uint64_t cumulative = 0;
      for (size_t i = 0; i < f.bounds.size(); ++i) {
        cumulative += s.buckets[i];
        out += name + "_bucket" + LabelText(labels, "le", Number(f.bounds[i])) + " " +
               std::to_string(cumulative) + "\n";
      }
      out +=
          name + "_bucket" + LabelText(labels, "le", "+Inf") + " " + std::to_string(s.count) + "\n";
      out += name + "_sum" + LabelText(labels) + " " + Number(s.value) + "\n";
      out += name + "_count" + LabelText(labels) + " " + std::to_string(s.count) + "\n";
    }
  }
  return out;
}

}  // namespace kiln::observe
