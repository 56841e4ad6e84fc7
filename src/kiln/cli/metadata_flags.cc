#include "kiln/cli/metadata_flags.h"

#include <cstdio>
#include <filesystem>

#include "absl/status/status.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "kiln/cli/data_flags.h"
#include "kiln/metadata/open_store.h"

namespace kiln::cli {

std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(path, ec);
  if (ec) return path;
  return p.lexically_normal().string();
}

MetadataFlags::Input DataInput(const DataFlags& flags, const data::InputSet& input) {
  MetadataFlags::Input in;
  in.role = "data";
  if (input.format == data::Format::kDataset) {
    in.type = "Examples";
    in.uri = input.files.empty() ? flags.input : input.files[0];
    return in;
  }
  in.type = "RawData";
  in.uri = input.files.size() == 1 ? input.files[0] : flags.input;
  in.properties["format"] = std::string(data::FormatName(input.format));
  in.properties["files"] = static_cast<int64_t>(input.files.size());
  if (input.span) in.properties["span"] = *input.span;
  return in;
}

void MetadataFlags::Add(CLI::App* app, bool recording) {
  app->add_option("--metadata", url,
                  StrCat("Metadata store: sqlite:PATH or postgresql://USER@HOST:PORT/DB "
                         "(default: ",
                         metadata::DefaultStorePath(), ", i.e. $KILN_HOME/metadata.sqlite)"));
  if (recording) {
    app->add_flag("--no-metadata", off, "Do not record this run in the metadata store");
  }
}

absl::StatusOr<std::unique_ptr<metadata::MetadataStore>> MetadataFlags::OpenForReading() const {
  // Reading never creates a store, whether the default one or one named by --metadata.
  metadata::StoreOptions options;
  options.must_exist = true;
  return metadata::OpenStore(url, std::move(options));
}

absl::Status MetadataFlags::Record(std::string_view command,
                                   const metadata::ExecutionRecord& record) const {
  return Record(command, record, {});
}

absl::Status MetadataFlags::Record(std::string_view command, metadata::ExecutionRecord record,
                                   const std::vector<Input>& inputs) const {
  if (off) return absl::OkStatus();
  auto attempt = [&]() -> absl::Status {
    KILN_ASSIGN_OR_RETURN(auto store, metadata::OpenStore(url));
    metadata::Recorder recorder(store.get());
    for (const Input& in : inputs) {
      // The newest artifact at the path, or at its directory: statistics are recorded
      // as their directory but often passed as DIR/statistics.pb.
      std::string uri = AbsolutePath(in.uri);
      int64_t id = 0;
      for (const std::string& candidate :
           {uri, std::filesystem::path(uri).parent_path().string()}) {
        metadata::Query q;
        q.uri = candidate;
        q.newest_first = true;
        q.limit = 1;
        KILN_ASSIGN_OR_RETURN(auto found, store->GetArtifacts(q));
        // At the directory, only an artifact of the expected type counts.
        if (!found.empty() && (candidate == uri || found[0].type == in.type)) {
          id = found[0].id;
          break;
        }
      }
      if (id == 0) {
        metadata::Artifact a;
        a.type = in.type;
        a.uri = uri;
        a.properties = in.properties;
        KILN_ASSIGN_OR_RETURN(id, recorder.RegisterExternal(a));
      }
      record.inputs.emplace_back(in.role, id);
    }
    return recorder.Record(record).status();
  };
  absl::Status s = attempt();
  if (s.ok() || !url.empty()) return s;
  std::fprintf(stderr, "kiln %s: warning: not recorded in the metadata store: %s\n",
               std::string(command).c_str(), std::string(s.message()).c_str());
  return absl::OkStatus();
}

}  // namespace kiln::cli
