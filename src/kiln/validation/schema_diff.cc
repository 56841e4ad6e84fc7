#include "kiln/validation/schema_diff.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/text_format.h"
#include "kiln/validation/stats_view.h"

namespace kiln::validation {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

std::string Quote(const std::string& s) { return absl::StrCat("\"", absl::CEscape(s), "\""); }

std::string Short(const Message& m) {
  google::protobuf::TextFormat::Printer printer;
  printer.SetSingleLineMode(true);
  printer.SetUseUtf8StringEscaping(true);
  std::string out;
  printer.PrintToString(m, &out);
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return absl::StrCat("{ ", out, out.empty() ? "}" : " }");
}

// One scalar value of `f` (element `index` of a repeated field, or the singular value
// when index < 0), formatted for a human.
std::string Scalar(const Message& m, const FieldDescriptor* f, int index) {
  const Reflection* r = m.GetReflection();
  bool rep = index >= 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat(rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f));
    case FieldDescriptor::CPPTYPE_INT64:
      return absl::StrCat(rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f));
    case FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat(rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f));
    case FieldDescriptor::CPPTYPE_UINT64:
      return absl::StrCat(rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return absl::StrCat(rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return absl::StrCat(rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f));
    case FieldDescriptor::CPPTYPE_BOOL:
      return (rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f)) ? "true" : "false";
    case FieldDescriptor::CPPTYPE_ENUM:
      return (rep ? r->GetRepeatedEnum(m, f, index) : r->GetEnum(m, f))->name();
    case FieldDescriptor::CPPTYPE_STRING:
      return Quote(rep ? r->GetRepeatedString(m, f, index) : r->GetString(m, f));
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return Short(rep ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f));
  }
  return "?";
}

std::string Join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : absl::StrCat(prefix, ".", name);
}

// Values in `a` missing from `b`, as a multiset difference of formatted values.
std::vector<std::string> Minus(std::vector<std::string> a, std::vector<std::string> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  std::vector<std::string> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

void ListChange(const std::string& what, const std::vector<std::string>& before,
                const std::vector<std::string>& after, std::vector<std::string>* out) {
  std::vector<std::string> added = Minus(after, before);
  std::vector<std::string> removed = Minus(before, after);
  if (!added.empty()) out->push_back(absl::StrCat(what, " added: ", absl::StrJoin(added, ", ")));
  if (!removed.empty()) {
    out->push_back(absl::StrCat(what, " removed: ", absl::StrJoin(removed, ", ")));
  }
}

// Field-by-field comparison of two messages of the same type.
void DiffMessages(const Message& a, const Message& b, const std::string& prefix,
                  std::vector<std::string>* out) {
  const google::protobuf::Descriptor* d = a.GetDescriptor();
  const Reflection* r = a.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    std::string path = Join(prefix, f->name());
    if (f->is_repeated()) {
      int na = r->FieldSize(a, f), nb = r->FieldSize(b, f);
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        for (int k = 0; k < std::max(na, nb); ++k) {
          std::string item = absl::StrCat(path, "[", k, "]");
          if (k >= na) {
            out->push_back(absl::StrCat(item, ": (unset) -> ", Scalar(b, f, k)));
          } else if (k >= nb) {
            out->push_back(absl::StrCat(item, ": ", Scalar(a, f, k), " -> (unset)"));
          } else {
            DiffMessages(r->GetRepeatedMessage(a, f, k), r->GetRepeatedMessage(b, f, k), item, out);
          }
        }
      } else {
        std::vector<std::string> va, vb;
        for (int k = 0; k < na; ++k) va.push_back(Scalar(a, f, k));
        for (int k = 0; k < nb; ++k) vb.push_back(Scalar(b, f, k));
        ListChange(path, va, vb, out);
      }
      continue;
    }
    bool ha = r->HasField(a, f), hb = r->HasField(b, f);
    if (!ha && !hb) continue;
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && ha && hb) {
      DiffMessages(r->GetMessage(a, f), r->GetMessage(b, f), path, out);
      continue;
    }
    std::string sa = ha ? Scalar(a, f, -1) : "(unset)";
    std::string sb = hb ? Scalar(b, f, -1) : "(unset)";
    if (sa != sb) out->push_back(absl::StrCat(path, ": ", sa, " -> ", sb));
  }
}

std::vector<std::string> QuotedValues(const tfmd::StringDomain& d) {
  std::vector<std::string> v;
  for (const auto& s : d.value()) v.push_back(Quote(s));
  return v;
}

void DiffFeature(const tfmd::Schema& sa, const tfmd::Feature& fa, const tfmd::Schema& sb,
                 const tfmd::Feature& fb, std::vector<std::string>* out) {
  std::string what = absl::StrCat("feature '", fa.name(), "'");
  tfmd::Feature ca = fa, cb = fb;
  const tfmd::StringDomain* da = GetStringDomain(sa, fa);
  const tfmd::StringDomain* db = GetStringDomain(sb, fb);
  std::vector<std::string> lines;
  if (da != nullptr && db != nullptr) {
    ListChange("domain values", QuotedValues(*da), QuotedValues(*db), &lines);
    // The values are compared above; what remains of an inline domain is its name.
    if (ca.has_string_domain() && cb.has_string_domain()) {
      ca.mutable_string_domain()->clear_value();
      cb.mutable_string_domain()->clear_value();
    }
  }
  std::vector<std::string> fields;
  DiffMessages(ca, cb, "", &fields);
  for (const auto& l : fields) out->push_back(absl::StrCat(what, ": ", l));
  for (const auto& l : lines) out->push_back(absl::StrCat(what, ": ", l));
}

}  // namespace

std::vector<std::string> SchemaDiff(const tfmd::Schema& a, const tfmd::Schema& b) {
  std::vector<std::string> out;
  for (const auto& fa : a.feature()) {
    const tfmd::Feature* fb = FindSchemaFeature(b, fa.name());
    if (fb == nullptr) {
      out.push_back(absl::StrCat("feature '", fa.name(), "' removed"));
    } else {
      DiffFeature(a, fa, b, *fb, &out);
    }
  }
  for (const auto& fb : b.feature()) {
    if (FindSchemaFeature(a, fb.name()) == nullptr) {
      out.push_back(absl::StrCat("feature '", fb.name(), "' added (",
                                 tfmd::FeatureType_Name(fb.type()), ")"));
    }
  }

  // Schema-level domains no feature uses are compared on their own; the used ones were
  // compared through their features.
  std::set<std::string> used;
  for (const auto* s : {&a, &b}) {
    for (const auto& f : s->feature()) {
      if (f.has_domain()) used.insert(f.domain());
    }
  }
  std::map<std::string, const tfmd::StringDomain*> doms_a, doms_b;
  for (const auto& d : a.string_domain()) doms_a[d.name()] = &d;
  for (const auto& d : b.string_domain()) doms_b[d.name()] = &d;
  for (const auto& [name, d] : doms_a) {
    if (used.count(name)) continue;
    auto it = doms_b.find(name);
    std::string what = absl::StrCat("string_domain '", name, "'");
    if (it == doms_b.end()) {
      out.push_back(absl::StrCat(what, " removed"));
    } else {
      ListChange(absl::StrCat(what, " values"), QuotedValues(*d), QuotedValues(*it->second), &out);
    }
  }
  for (const auto& [name, d] : doms_b) {
    if (!used.count(name) && !doms_a.count(name)) {
      out.push_back(absl::StrCat("string_domain '", name, "' added"));
    }
  }

  tfmd::Schema rest_a = a, rest_b = b;
  for (auto* s : {&rest_a, &rest_b}) {
    s->clear_feature();
    s->clear_string_domain();
  }
  DiffMessages(rest_a, rest_b, "", &out);
  return out;
}

}  // namespace kiln::validation
