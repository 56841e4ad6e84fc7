#include "kiln/pipeline/invocation.h"

#include <sys/stat.h>

#include <algorithm>
#include <charconv>

#include "kiln/base/build_info.h"
#include "kiln/base/sha256.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "kiln/data/input.h"
#include "kiln/pipeline/fingerprint.h"
#include "kiln/pipeline/subprocess.h"
#include "nlohmann/json.hpp"

namespace kiln::pipeline {
namespace {

std::string EnvName(std::string_view prefix, std::string_view name) {
  std::string out(prefix);
  for (char c : name) out.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(c)));
  return out;
}

std::string Quote(std::string_view s) { return nlohmann::json(std::string(s)).dump(); }

std::string Resolve(const Pipeline& p, const std::string& value) {
  return value.front() == '/' ? value : JoinPath(p.dir, value);
}

// Whether `path` is `dir` or inside it.
bool Within(const std::string& path, const std::string& dir) {
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                         path[dir.size()] == '/');
}

// The content fingerprint of what an arg value names, or "" when it names nothing.
absl::StatusOr<std::string> ArgFingerprint(const Pipeline& p, const Component& c,
                                           const std::string& value, Fingerprinter* fp) {
  if (value.empty()) return std::string();
  const std::string path = Resolve(p, value);
  // The pipeline's own runs would change the value on every run.
  if (Within(p.root, path)) return std::string();
  Env* env = fp->env();
  if (env->FileExists(path)) return fp->Of(path);
  const bool pattern =
      value.find_first_of("*?[") != std::string::npos || value.find("{SPAN}") != std::string::npos;
  if (!pattern) return std::string();
  data::ResolveOptions options;
  if (auto it = c.args.find("span"); it != c.args.end() && it->second.values.size() == 1) {
    const std::string& v = it->second.values[0];
    int64_t span;
    auto r = std::from_chars(v.data(), v.data() + v.size(), span);
    if (r.ec == std::errc() && r.ptr == v.data() + v.size()) options.span = span;
  }
  auto input = data::ResolveInput(env, path, options);
  if (!input.ok()) return std::string("unresolved");  // the command will say why
  if (input->format == data::Format::kDataset) return fp->Of(input->files[0]);
  KILN_ASSIGN_OR_RETURN(std::string files, FilesFingerprint(env, input->files));
  return StrCat(files, input->span ? StrCat(" span ", *input->span) : "");
}

}  // namespace

std::string ComponentDir(const std::string& run_dir, const Component& c) {
  return JoinPath(run_dir, c.name);
}

std::string StagingDir(const std::string& run_dir, const Component& c) {
  return JoinPath(ComponentDir(run_dir, c), ".staging");
}

std::vector<OutputPaths> OutputsOf(const Component& c, const std::string& run_dir) {
  const Kind* kind = FindKind(c.kind);
  std::vector<OutputPaths> out;
  for (const OutputDecl& o : c.outputs) {
    OutputPaths op;
    op.name = o.name;
    op.artifact_type = o.artifact_type;
    op.staging_dir = JoinPath(StagingDir(run_dir, c), o.name);
    op.final_dir = JoinPath(ComponentDir(run_dir, c), o.name);
    op.staging_path = op.staging_dir;
    op.final_path = op.final_dir;
    op.precreate = kind == nullptr;
    if (kind) {
      for (const KindOutput& ko : kind->outputs) {
        if (ko.name == o.name && !ko.file.empty()) {
          op.staging_path = JoinPath(op.staging_dir, ko.file);
          op.final_path = JoinPath(op.final_dir, ko.file);
          op.precreate = true;
        }
      }
    }
    out.push_back(std::move(op));
  }
  return out;
}

absl::StatusOr<Invocation> BuildInvocation(const Pipeline& p, const Component& c,
                                           const std::map<std::string, std::string>& inputs,
                                           const std::vector<OutputPaths>& outputs,
                                           const InvocationContext& ctx) {
  Invocation inv;
  std::vector<std::pair<std::string, std::string>> contract = {{"KILN_PIPELINE", p.name},
                                                               {"KILN_RUN_ID", ctx.run_id},
                                                               {"KILN_RUN_DIR", ctx.run_dir},
                                                               {"KILN_COMPONENT", c.name}};
  for (const auto& [name, path] : inputs) contract.emplace_back(EnvName("KILN_INPUT_", name), path);
  for (const OutputPaths& o : outputs) {
    contract.emplace_back(EnvName("KILN_OUTPUT_", o.name), o.staging_path);
  }
  const Kind* kind = FindKind(c.kind);
  if (!kind) {
    KILN_ASSIGN_OR_RETURN(inv.executable, ResolveExecutable(c.command[0], p.dir, ctx.path_env));
    inv.argv = c.command;
    for (const auto& [k, v] : c.env) inv.env.emplace_back(k, v);
    inv.env.insert(inv.env.end(), contract.begin(), contract.end());
    return inv;
  }
  inv.executable = ctx.kiln_binary;
  inv.argv = {"kiln"};
  inv.argv.insert(inv.argv.end(), kind->subcommand.begin(), kind->subcommand.end());
  // Inputs in the kind's order, whether references (resolved paths) or literal paths.
  for (const KindInput& in : kind->inputs) {
    std::string value;
    if (auto it = inputs.find(in.name); it != inputs.end()) {
      value = it->second;
    } else if (auto a = c.args.find(in.name); a != c.args.end()) {
      value = a->second.values[0];
    } else {
      continue;
    }
    if (in.flag.empty()) {
      inv.argv.push_back(value);
    } else {
      inv.argv.push_back(StrCat(in.flag, "=", value));
    }
  }
  for (const auto& [key, arg] : c.args) {
    const std::string& name = key;  // clang before 16 cannot capture a structured binding
    if (std::any_of(kind->inputs.begin(), kind->inputs.end(),
                    [&](const KindInput& in) { return in.name == name; })) {
      continue;
    }
    if (arg.is_flag) {
      if (arg.values[0] == "true") inv.argv.push_back(FlagFor(key));
      continue;
    }
    for (const std::string& v : arg.values) inv.argv.push_back(StrCat(FlagFor(key), "=", v));
  }
  for (const OutputPaths& o : outputs) {
    for (const KindOutput& ko : kind->outputs) {
      if (ko.name == o.name) inv.argv.push_back(StrCat(ko.flag, "=", o.staging_path));
    }
  }
  if (ctx.catalog) {
    auto it = ctx.catalog->find(kind->name);
    if (it != ctx.catalog->end() && it->second.options.count("metadata")) {
      inv.argv.push_back(StrCat("--metadata=", ctx.metadata_url));
      inv.records_itself = true;
    }
  }
  inv.env = std::move(contract);
  return inv;
}

absl::StatusOr<std::string> Fingerprinter::Of(const std::string& path) {
  if (auto it = memo_.find(path); it != memo_.end()) return it->second;
  KILN_ASSIGN_OR_RETURN(std::string f, ContentFingerprint(env_, path));
  memo_[path] = f;
  return f;
}

absl::StatusOr<std::string> CacheKey(const Pipeline& p, const Component& c,
                                     const std::map<std::string, std::string>& input_fingerprints,
                                     const std::string& executable, Fingerprinter* fp,
                                     std::string* recipe) {
  std::string text = "kiln-pipeline-cache-v1\n";
  StrAppend(&text, "kiln ", KilnVersion(), " ", GitSha(), "\n");
  // A build with uncommitted changes has one sha for many versions of the code: the
  // binary's identity tells them apart (any rebuild changes its mtime; reading its
  // hundreds of megabytes on every run would not be worth it).
  if (GitSha().ends_with("-dirty")) {
    static const std::string* const self = [] {
      struct stat st;
      if (stat("/proc/self/exe", &st) != 0) return new std::string("unknown");
      return new std::string(
          StrCat(st.st_size, " ", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, " ", st.st_ino));
    }();
    StrAppend(&text, "kiln-binary ", *self, "\n");
  }
  StrAppend(&text, "pipeline ", Quote(p.name), "\ncomponent ", Quote(c.name), "\nkind ",
            Quote(c.kind), "\n");
  const Kind* kind = FindKind(c.kind);
  for (const auto& [key, arg] : c.args) {
    StrAppend(&text, "arg ", Quote(key), " =");
    const std::string& name = key;  // clang before 16 cannot capture a structured binding
    const bool destination =
        kind && std::any_of(kind->destination_args.begin(), kind->destination_args.end(),
                            [&](const std::string& d) { return ArgKey(d) == name; });
    for (const std::string& v : arg.values) {
      StrAppend(&text, " ", Quote(v));
      if (arg.is_flag || destination) continue;
      KILN_ASSIGN_OR_RETURN(std::string f, ArgFingerprint(p, c, v, fp));
      if (!f.empty()) StrAppend(&text, " content ", f);
    }
    text += "\n";
  }
  for (const auto& [name, f] : input_fingerprints) {
    StrAppend(&text, "input ", Quote(name), " content ", f, "\n");
  }
  for (const OutputDecl& o : c.outputs) {
    StrAppend(&text, "output ", Quote(o.name), " ", Quote(o.artifact_type), "\n");
  }
  if (!kind) {
    for (size_t i = 0; i < c.command.size(); ++i) {
      StrAppend(&text, "command ", Quote(c.command[i]));
      // Scripts and config files named on the command line are part of the code.
      if (i > 0 && !c.command[i].empty()) {
        const std::string path = Resolve(p, c.command[i]);
        if (fp->env()->FileExists(path) && !fp->env()->IsDirectory(path)) {
          KILN_ASSIGN_OR_RETURN(std::string f, fp->Of(path));
          StrAppend(&text, " content ", f);
        }
      }
      text += "\n";
    }
    if (!executable.empty()) {
      KILN_ASSIGN_OR_RETURN(std::string f, fp->Of(executable));
      StrAppend(&text, "executable content ", f, "\n");
    }
    for (const auto& [k, v] : c.env) StrAppend(&text, "env ", Quote(k), " = ", Quote(v), "\n");
  }
  if (recipe) *recipe = text;
  return Sha256Hex(text);
}

}  // namespace kiln::pipeline
