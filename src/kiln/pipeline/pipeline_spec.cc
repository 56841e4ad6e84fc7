#include "kiln/pipeline/pipeline_spec.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <set>

#include "kiln/base/status.h"
#include "kiln/base/str.h"

namespace kiln::pipeline {
namespace {

// Flags the runner sets itself: where outputs go and where records go.
const std::set<std::string>& RunnerFlags() {
  static const auto* const flags =
      new std::set<std::string>{"out", "metadata", "no-metadata", "help"};
  return *flags;
}

bool IsName(std::string_view s, bool allow_dash) {
  if (s.empty() || !std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || (allow_dash && c == '-');
  });
}

// Errors of one file: "FILE:LINE: [component 'NAME': ]WHAT".
class Errors {
 public:
  explicit Errors(std::string file) : file_(std::move(file)) {}
  absl::Status At(int line, std::string_view what) const {
    return absl::InvalidArgumentError(StrCat(file_, ":", line, ": ", what));
  }
  absl::Status operator()(const YAML::Node& node, std::string_view what) const {
    return At(node.Mark().line + 1, what);
  }

 private:
  std::string file_;
};

class ComponentParser {
 public:
  ComponentParser(const Errors& bad, const FlagCatalog* catalog) : bad_(bad), catalog_(catalog) {}

  absl::StatusOr<Component> Parse(const YAML::Node& node);

 private:
  absl::Status Bad(const YAML::Node& node, std::string_view what) const {
    return bad_(node, StrCat(prefix_, what));
  }
  absl::StatusOr<std::string> Scalar(const YAML::Node& node, std::string_view what) const {
    if (!node.IsScalar()) return Bad(node, StrCat(what, " is a single value"));
    return node.Scalar();
  }
  absl::StatusOr<double> Number(const YAML::Node& node, std::string_view what, double lo,
                                double hi) const {
    double v;
    if (!node.IsScalar() || !YAML::convert<double>::decode(node, v) || !std::isfinite(v) ||
        v < lo || v > hi) {
      return Bad(node, StrCat(what, " is a number in [", lo, ", ", hi, "]"));
    }
    return v;
  }
  absl::StatusOr<std::vector<std::string>> StringList(const YAML::Node& node,
                                                      std::string_view what) const {
    if (!node.IsSequence()) return Bad(node, StrCat(what, " is a list: [a, b]"));
    std::vector<std::string> out;
    for (const YAML::Node& v : node) {
      if (!v.IsScalar()) return Bad(v, StrCat("each entry of ", what, " is a single value"));
      out.push_back(v.Scalar());
    }
    return out;
  }
  absl::Status ParseInputs(const YAML::Node& node, Component* c) const;
  absl::Status ParseArgs(const YAML::Node& node, const Kind& kind, Component* c) const;
  absl::Status ParseOutputs(const YAML::Node& node, Component* c) const;

  const Errors& bad_;
  const FlagCatalog* catalog_;
  std::string prefix_;
};

absl::Status ComponentParser::ParseInputs(const YAML::Node& node, Component* c) const {
  if (!node.IsMap()) return Bad(node, "inputs is a map {NAME: COMPONENT.OUTPUT}");
  for (const auto& kv : node) {
    InputRef in;
    in.name = ArgKey(kv.first.Scalar());
    in.line = kv.second.Mark().line + 1;
    if (!IsName(in.name, false)) {
      return Bad(kv.first, StrCat("input name '", kv.first.Scalar(),
                                  "' is not a name (letters, digits, '_')"));
    }
    if (!kv.second.IsScalar()) {
      return Bad(kv.second, StrCat("input '", in.name, "' is a reference COMPONENT.OUTPUT"));
    }
    std::string ref = kv.second.Scalar();
    if (const size_t at = ref.find('@'); at != std::string::npos) {
      if (ref.substr(at + 1) != "previous") {
        return Bad(kv.second, StrCat("input '", in.name, "': '", ref.substr(at),
                                     "' is not a qualifier; the only one is @previous"));
      }
      in.previous = true;
      ref.resize(at);
    }
    const size_t dot = ref.find('.');
    in.component = ref.substr(0, dot);
    if (dot != std::string::npos) in.output = ref.substr(dot + 1);
    if (!IsName(in.component, true) || (dot != std::string::npos && !IsName(in.output, false))) {
      return Bad(kv.second, StrCat("input '", in.name, "': '", ref,
                                   "' is not a reference COMPONENT.OUTPUT (a file path belongs "
                                   "under args:)"));
    }
    for (const InputRef& other : c->inputs) {
      if (other.name == in.name) return Bad(kv.first, StrCat("input '", in.name, "' twice"));
    }
    c->inputs.push_back(std::move(in));
  }
  std::sort(c->inputs.begin(), c->inputs.end(),
            [](const InputRef& a, const InputRef& b) { return a.name < b.name; });
  return absl::OkStatus();
}

absl::Status ComponentParser::ParseArgs(const YAML::Node& node, const Kind& kind,
                                        Component* c) const {
  if (!node.IsMap()) return Bad(node, "args is a map {FLAG: VALUE}");
  const CommandFlags* flags = nullptr;
  if (catalog_) {
    auto it = catalog_->find(kind.name);
    if (it != catalog_->end()) flags = &it->second;
  }
  for (const auto& kv : node) {
    Arg a;
    a.key = ArgKey(kv.first.Scalar());
    a.line = kv.first.Mark().line + 1;
    const bool is_input = std::any_of(kind.inputs.begin(), kind.inputs.end(),
                                      [&](const KindInput& in) { return in.name == a.key; });
    const std::string flag = FlagFor(a.key).substr(2);
    if (!is_input && RunnerFlags().count(flag)) {
      return Bad(kv.first, StrCat("args: --", flag, " is set by kiln run"));
    }
    if (!is_input && flags) {
      auto it = flags->options.find(flag);
      if (it == flags->options.end()) {
        std::set<std::string> known;
        for (const KindInput& in : kind.inputs) known.insert(in.name);
        for (const auto& [name, takes_value] : flags->options) {
          if (!RunnerFlags().count(name)) known.insert(ArgKey(name));
        }
        return Bad(kv.first, StrCat("kiln ", StrJoin(kind.subcommand, " "), " has no --", flag,
                                    "; args: ", StrJoin(known, ", ")));
      }
      a.is_flag = !it->second;
    }
    const YAML::Node& v = kv.second;
    if (v.IsScalar()) {
      a.values.push_back(v.Scalar());
    } else if (v.IsSequence() && !is_input && !a.is_flag) {
      KILN_ASSIGN_OR_RETURN(a.values, StringList(v, StrCat("args.", a.key)));
    } else {
      return Bad(v, StrCat("args.", a.key, " is a single value"));
    }
    if (a.is_flag) {
      bool b;
      if (!YAML::convert<bool>::decode(v, b)) {
        return Bad(v, StrCat("args.", a.key, " is true or false (--", flag, " takes no value)"));
      }
      a.values = {b ? "true" : "false"};
    }
    for (const InputRef& in : c->inputs) {
      if (in.name == a.key) {
        return Bad(kv.first, StrCat("'", a.key, "' is given under both inputs: and args:"));
      }
    }
    if (!c->args.emplace(a.key, a).second) {
      return Bad(kv.first, StrCat("args.", a.key, " twice"));
    }
  }
  return absl::OkStatus();
}

absl::Status ComponentParser::ParseOutputs(const YAML::Node& node, Component* c) const {
  auto add = [&](const YAML::Node& name_node, std::string type) -> absl::Status {
    const std::string name = name_node.IsScalar() ? name_node.Scalar() : "";
    if (!IsName(name, false)) {
      return Bad(name_node, "an output name is letters, digits and '_', starting with a letter");
    }
    for (const OutputDecl& o : c->outputs) {
      if (o.name == name) return Bad(name_node, StrCat("output '", name, "' twice"));
    }
    c->outputs.push_back({name, std::move(type)});
    return absl::OkStatus();
  };
  if (node.IsSequence()) {
    for (const YAML::Node& n : node) KILN_RETURN_IF_ERROR(add(n, "Artifact"));
  } else if (node.IsMap()) {
    for (const auto& kv : node) {
      if (!kv.second.IsScalar() || kv.second.Scalar().empty()) {
        return Bad(kv.second, "outputs maps each name to an artifact type (Model)");
      }
      KILN_RETURN_IF_ERROR(add(kv.first, kv.second.Scalar()));
    }
  } else {
    return Bad(node, "outputs is a list of names [model] or a map {model: Model}");
  }
  return absl::OkStatus();
}

absl::StatusOr<Component> ComponentParser::Parse(const YAML::Node& node) {
  if (!node.IsMap()) return bad_(node, "each component is a map {name, kind, ...}");
  Component c;
  c.line = node.Mark().line + 1;
  const YAML::Node name = node["name"];
  if (!name) return bad_(node, "a component needs a name");
  if (!name.IsScalar() || !IsName(name.Scalar(), true)) {
    return bad_(name, "a component name is letters, digits, '_' and '-', starting with a letter");
  }
  c.name = name.Scalar();
  prefix_ = StrCat("component '", c.name, "': ");
  const YAML::Node kind_node = node["kind"];
  if (!kind_node) return Bad(node, StrCat("no kind; kinds: ", StrJoin(KindNames(), ", ")));
  KILN_ASSIGN_OR_RETURN(c.kind, Scalar(kind_node, "kind"));
  const Kind* kind = FindKind(c.kind);
  const bool is_command = c.kind == kCommandKind;
  if (!kind && !is_command) {
    return Bad(kind_node,
               StrCat("unknown kind '", c.kind, "'; kinds: ", StrJoin(KindNames(), ", ")));
  }
  if (kind && catalog_ && !catalog_->count(kind->name)) {
    return Bad(kind_node, StrCat("kind '", c.kind, "' needs `kiln ", StrJoin(kind->subcommand, " "),
                                 "`, which this kiln does not have"));
  }
  // Inputs first: args must not repeat them.
  if (const YAML::Node in = node["inputs"]) KILN_RETURN_IF_ERROR(ParseInputs(in, &c));
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    const YAML::Node& v = kv.second;
    if (key == "name" || key == "kind" || key == "inputs") continue;
    if (key == "args") {
      if (is_command) return Bad(kv.first, "args is for kiln's kinds; give a command its argv");
      KILN_RETURN_IF_ERROR(ParseArgs(v, *kind, &c));
    } else if (key == "command") {
      if (!is_command) return Bad(kv.first, "command is for kind: command");
      KILN_ASSIGN_OR_RETURN(c.command, StringList(v, "command"));
      if (c.command.empty() || c.command[0].empty()) {
        return Bad(v, "command needs an executable: [python3, train.py]");
      }
    } else if (key == "env") {
      if (!is_command) return Bad(kv.first, "env is for kind: command");
      if (!v.IsMap()) return Bad(v, "env is a map {NAME: VALUE}");
      for (const auto& e : v) {
        if (!e.second.IsScalar() || !IsName(e.first.Scalar(), false)) {
          return Bad(e.first, "env maps variable names to single values");
        }
        c.env[e.first.Scalar()] = e.second.Scalar();
      }
    } else if (key == "outputs") {
      if (!is_command) {
        return Bad(kv.first, StrCat("kind ", c.kind, " declares its own outputs"));
      }
      KILN_RETURN_IF_ERROR(ParseOutputs(v, &c));
    } else if (key == "after") {
      KILN_ASSIGN_OR_RETURN(c.after, StringList(v, "after"));
    } else if (key == "retries") {
      KILN_ASSIGN_OR_RETURN(double r, Number(v, "retries", 0, 100));
      if (r != std::floor(r)) return Bad(v, "retries is a whole number in [0, 100]");
      c.retries = static_cast<int>(r);
    } else if (key == "retry_backoff_seconds") {
      KILN_ASSIGN_OR_RETURN(c.retry_backoff_seconds, Number(v, key, 0, 3600));
    } else if (key == "timeout_seconds") {
      KILN_ASSIGN_OR_RETURN(c.timeout_seconds, Number(v, key, 0, 7 * 86400));
    } else if (key == "on_findings") {
      KILN_ASSIGN_OR_RETURN(std::string s, Scalar(v, key));
      if (s == "stop") {
        c.on_findings = OnFindings::kStop;
      } else if (s == "continue") {
        c.on_findings = OnFindings::kContinue;
      } else {
        return Bad(v, StrCat("on_findings is stop or continue, not '", s, "'"));
      }
    } else if (key == "on_drift") {
      if (c.kind != "validate") return Bad(kv.first, "on_drift is for kind: validate");
      KILN_ASSIGN_OR_RETURN(std::string s, Scalar(v, key));
      if (s == "hold") {
        c.on_drift = OnDrift::kHold;
      } else if (s == "stop") {
        c.on_drift = OnDrift::kStop;
      } else if (s == "continue") {
        c.on_drift = OnDrift::kContinue;
      } else {
        return Bad(v, StrCat("on_drift is hold, stop or continue, not '", s, "'"));
      }
    } else if (key == "cache") {
      if (!v.IsScalar() || !YAML::convert<bool>::decode(v, c.cache)) {
        return Bad(v, "cache is true or false");
      }
    } else {
      return Bad(kv.first, StrCat("unknown key '", key,
                                  "'; keys: name, kind, inputs, args, command, env, outputs, "
                                  "after, retries, retry_backoff_seconds, timeout_seconds, "
                                  "on_findings, on_drift, cache"));
    }
  }
  if (is_command) {
    if (c.command.empty()) return Bad(node, "a command component needs command: [EXECUTABLE, ...]");
    return c;
  }
  for (const KindInput& in : kind->inputs) {
    const bool given =
        c.args.count(in.name) || std::any_of(c.inputs.begin(), c.inputs.end(),
                                             [&](const InputRef& r) { return r.name == in.name; });
    if (in.required && !given) {
      return Bad(node, StrCat("kind ", c.kind, " needs '", in.name,
                              "': a reference under inputs: or a path under args:"));
    }
  }
  for (const InputRef& r : c.inputs) {
    for (const KindInput& in : kind->inputs) {
      if (in.name == r.name && in.required && r.previous) {
        return bad_.At(r.line, StrCat(prefix_, "input '", r.name, "' is required, and ",
                                      r.component, "@previous has nothing on a first run"));
      }
    }
    if (std::none_of(kind->inputs.begin(), kind->inputs.end(),
                     [&](const KindInput& in) { return in.name == r.name; })) {
      std::vector<std::string> names;
      for (const KindInput& in : kind->inputs) names.push_back(in.name);
      return bad_.At(r.line, StrCat(prefix_, "kind ", c.kind, " has no input '", r.name,
                                    "'; inputs: ", StrJoin(names, ", ")));
    }
  }
  for (const std::string& required : kind->required_args) {
    if (!c.args.count(ArgKey(required))) {
      return Bad(node, StrCat("kind ", c.kind, " needs args.", ArgKey(required)));
    }
  }
  for (const KindOutput& o : kind->outputs) c.outputs.push_back({o.name, o.artifact_type});
  return c;
}

std::string Absolute(const std::string& path) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(path, ec);
  return ec ? path : p.lexically_normal().string();
}

}  // namespace

std::string ArgKey(std::string_view key) {
  std::string out(key);
  std::replace(out.begin(), out.end(), '-', '_');
  return out;
}

std::string FlagFor(std::string_view key) {
  std::string out = StrCat("--", key);
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

int Pipeline::Find(std::string_view name) const {
  for (size_t i = 0; i < components.size(); ++i) {
    if (components[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

namespace {

absl::StatusOr<AlertSink> ParseAlertSink(const Errors& bad, const YAML::Node& n,
                                         const std::string& dir) {
  if (!n.IsMap()) return bad(n, "an alert sink is {webhook: URL} or {log: PATH}");
  AlertSink sink;
  sink.line = static_cast<int>(n.Mark().line) + 1;
  for (const auto& kv : n) {
    const std::string key = kv.first.Scalar();
    const YAML::Node& v = kv.second;
    if (key == "webhook") {
      if (!v.IsScalar() || v.Scalar().rfind("http://", 0) != 0) {
        return bad(v, "webhook is an http:// URL");
      }
      sink.webhook = v.Scalar();
    } else if (key == "log") {
      if (!v.IsScalar() || v.Scalar().empty()) return bad(v, "log is a file path");
      sink.log = v.Scalar().front() == '/' ? v.Scalar() : JoinPath(dir, v.Scalar());
    } else if (key == "retries") {
      sink.retries = v.as<int>();
      if (sink.retries < 0 || sink.retries > 20) return bad(v, "retries is 0 to 20");
    } else if (key == "backoff_seconds" || key == "timeout_seconds") {
      const double x = v.as<double>();
      if (!(x >= 0) || x > 3600 || (key == "timeout_seconds" && x == 0)) {
        return bad(v, StrCat(key, " is a number of seconds up to 3600"));
      }
      (key == "backoff_seconds" ? sink.backoff_seconds : sink.timeout_seconds) = x;
    } else {
      return bad(kv.first, StrCat("unknown key '", key,
                                  "'; alert sinks take webhook or log, retries, backoff_seconds, "
                                  "timeout_seconds"));
    }
  }
  if (sink.webhook.empty() == sink.log.empty()) {
    return bad(n, "an alert sink has exactly one of webhook and log");
  }
  return sink;
}

}  // namespace

absl::StatusOr<Pipeline> ParsePipeline(std::string_view yaml, const std::string& file,
                                       const FlagCatalog* catalog) {
  Errors bad(file);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return bad.At(e.mark.line + 1, StrCat("not valid YAML: ", e.msg));
  }
  if (!root.IsMap()) return bad.At(1, "a pipeline file is a YAML map {pipeline, components}");
  Pipeline p;
  p.file = file;
  p.dir = Absolute(Dirname(Absolute(file)));
  std::string root_dir;
  try {
    for (const auto& kv : root) {
      const std::string key = kv.first.Scalar();
      const YAML::Node& v = kv.second;
      if (key == "pipeline") {
        if (!v.IsScalar() || !IsName(v.Scalar(), true)) {
          return bad(v, "pipeline is a name: letters, digits, '_' and '-'");
        }
        p.name = v.Scalar();
      } else if (key == "root") {
        if (!v.IsScalar() || v.Scalar().empty()) return bad(v, "root is a directory path");
        root_dir = v.Scalar();
      } else if (key == "metadata") {
        if (!v.IsScalar()) return bad(v, "metadata is a store URL (sqlite:PATH, postgresql://...)");
        p.metadata = v.Scalar();
      } else if (key == "components") {
        if (!v.IsSequence() || v.size() == 0) return bad(v, "components is a non-empty list");
        ComponentParser parser(bad, catalog);
        for (const YAML::Node& n : v) {
          KILN_ASSIGN_OR_RETURN(Component c, parser.Parse(n));
          if (p.Find(c.name) >= 0) {
            return bad.At(c.line, StrCat("component '", c.name, "' is declared twice"));
          }
          p.components.push_back(std::move(c));
        }
      } else if (key == "alerts") {
        if (!v.IsSequence())
          return bad(v, "alerts is a list of sinks ({webhook: URL} or {log: PATH})");
        for (const YAML::Node& n : v) {
          KILN_ASSIGN_OR_RETURN(AlertSink sink, ParseAlertSink(bad, n, p.dir));
          p.alerts.push_back(std::move(sink));
        }
      } else if (key == "schedule") {
        KILN_ASSIGN_OR_RETURN(p.schedule, ParseScheduleSpec(v, file, p.dir));
      } else {
        return bad(kv.first, StrCat("unknown key '", key,
                                    "'; keys: pipeline, root, metadata, components, alerts, "
                                    "schedule"));
      }
    }
  } catch (const YAML::Exception& e) {
    return bad.At(e.mark.line + 1, e.msg);
  }
  if (p.name.empty()) return bad.At(1, "no pipeline: name the pipeline (pipeline: clicks)");
  if (p.components.empty()) return bad.At(1, "no components");
  if (root_dir.empty()) root_dir = StrCat("runs/", p.name);
  p.root = Absolute(root_dir.front() == '/' ? root_dir : JoinPath(p.dir, root_dir));
  // A relative SQLite path is relative to the pipeline file, as every other path is.
  for (std::string_view scheme : {"sqlite://", "sqlite:"}) {
    if (p.metadata.rfind(scheme, 0) == 0) {
      const std::string path = p.metadata.substr(scheme.size());
      if (!path.empty() && path.front() != '/') {
        p.metadata = StrCat("sqlite:", Absolute(JoinPath(p.dir, path)));
      }
      break;
    }
  }
  KILN_ASSIGN_OR_RETURN(p.dag, BuildDag(p));
  return p;
}

absl::StatusOr<Pipeline> LoadPipeline(Env* env, const std::string& path,
                                      const FlagCatalog* catalog) {
  auto text = ReadFileToString(env, path);
  if (!text.ok()) {
    return absl::Status(text.status().code(),
                        StrCat("cannot read pipeline ", path, ": ", text.status().message()));
  }
  return ParsePipeline(*text, path, catalog);
}

absl::StatusOr<Dag> BuildDag(const Pipeline& p) {
  Errors bad(p.file);
  const int n = static_cast<int>(p.components.size());
  Dag dag;
  dag.upstream.resize(n);
  dag.downstream.resize(n);
  for (int i = 0; i < n; ++i) {
    const Component& c = p.components[i];
    auto prefix = StrCat("component '", c.name, "': ");
    std::set<int> up;
    for (const InputRef& in : c.inputs) {
      const int j = p.Find(in.component);
      if (j < 0) {
        return bad.At(in.line, StrCat(prefix, "input '", in.name, "' names unknown component '",
                                      in.component, "'"));
      }
      const Component& from = p.components[j];
      std::vector<std::string> names;
      for (const OutputDecl& o : from.outputs) names.push_back(o.name);
      if (in.output.empty() && names.size() != 1) {
        return bad.At(in.line, StrCat(prefix, "input '", in.name, "': name one of ", in.component,
                                      "'s outputs (", StrJoin(names, ", "), ") as ", in.component,
                                      ".OUTPUT"));
      }
      if (!in.output.empty() && std::find(names.begin(), names.end(), in.output) == names.end()) {
        return bad.At(in.line, StrCat(prefix, "input '", in.name, "': component '", in.component,
                                      "' has no output '", in.output, "'; outputs: ",
                                      names.empty() ? "none" : StrJoin(names, ", ")));
      }
      if (j == i) return bad.At(in.line, StrCat(prefix, "reads its own output"));
      const std::string output = in.output.empty() ? names[0] : in.output;
      const std::string type =
          std::find_if(from.outputs.begin(), from.outputs.end(), [&](const OutputDecl& o) {
            return o.name == output;
          })->artifact_type;
      if (const Kind* kind = FindKind(c.kind); kind && IsKilnArtifactType(type)) {
        for (const KindInput& ki : kind->inputs) {
          if (ki.name == in.name && !ki.accepts.empty() &&
              std::find(ki.accepts.begin(), ki.accepts.end(), type) == ki.accepts.end()) {
            return bad.At(
                in.line, StrCat(prefix, "input '", in.name, "' takes ", StrJoin(ki.accepts, " or "),
                                ", but ", in.component, ".", output, " is ", type));
          }
        }
      }
      up.insert(j);
    }
    for (const std::string& a : c.after) {
      const int j = p.Find(a);
      if (j < 0) return bad.At(c.line, StrCat(prefix, "after: unknown component '", a, "'"));
      if (j == i) return bad.At(c.line, StrCat(prefix, "after: names itself"));
      up.insert(j);
    }
    dag.upstream[i].assign(up.begin(), up.end());
    for (int j : up) dag.downstream[j].push_back(i);
  }
  for (auto& d : dag.downstream) std::sort(d.begin(), d.end());

  // A cycle, named in order, found by depth-first search (0 new, 1 on the path, 2 done).
  std::vector<int> mark(n, 0), path;
  std::vector<int> cycle;
  std::function<bool(int)> visit = [&](int i) {
    mark[i] = 1;
    path.push_back(i);
    for (int j : dag.upstream[i]) {
      if (mark[j] == 1) {
        cycle.assign(std::find(path.begin(), path.end(), j), path.end());
        return true;
      }
      if (mark[j] == 0 && visit(j)) return true;
    }
    path.pop_back();
    mark[i] = 2;
    return false;
  };
  for (int i = 0; i < n; ++i) {
    if (mark[i] == 0 && visit(i)) {
      // The path follows upstream edges: print it in data-flow order, from the component
      // that comes first in the file.
      std::reverse(cycle.begin(), cycle.end());
      std::rotate(cycle.begin(), std::min_element(cycle.begin(), cycle.end()), cycle.end());
      std::vector<std::string> names;
      for (int c : cycle) names.push_back(p.components[c].name);
      names.push_back(names.front());
      return bad.At(p.components[cycle.front()].line,
                    StrCat("components form a cycle: ", StrJoin(names, " -> ")));
    }
  }

  // Kahn's algorithm, taking ready components in file order.
  std::vector<int> pending(n), level(n, 0);
  for (int i = 0; i < n; ++i) pending[i] = static_cast<int>(dag.upstream[i].size());
  std::set<int> ready;
  for (int i = 0; i < n; ++i) {
    if (pending[i] == 0) ready.insert(i);
  }
  while (!ready.empty()) {
    const int i = *ready.begin();
    ready.erase(ready.begin());
    dag.order.push_back(i);
    for (int j : dag.upstream[i]) level[i] = std::max(level[i], level[j] + 1);
    if (static_cast<int>(dag.levels.size()) <= level[i]) dag.levels.resize(level[i] + 1);
    dag.levels[level[i]].push_back(i);
    for (int j : dag.downstream[i]) {
      if (--pending[j] == 0) ready.insert(j);
    }
  }
  for (auto& l : dag.levels) std::sort(l.begin(), l.end());
  return dag;
}

}  // namespace kiln::pipeline
