#include "kiln/data/importer.h"

#include <map>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/base/sha256.h"
#include "kiln/base/str.h"
#include "kiln/testing/temp_dir.h"

namespace kiln::data {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// id,user,price,name with some missing fields; ids are 0..n-1.
std::string MakeCsv(int n) {
  std::string csv = "id,user,price,name\n";
  for (int i = 0; i < n; ++i) {
    std::string price = i % 10 == 7 ? "" : kiln::StrCat(i % 50, ".", i % 4 * 25);
    std::string name = i % 13 == 0 ? "" : kiln::StrCat("item ", i * 7 % 101);
    kiln::StrAppend(&csv, i, ",u", i % 37, ",", price, ",", name, "\n");
  }
  return csv;
}

absl::StatusOr<InputSet> Resolve(const std::string& spec) {
  return ResolveInput(Env::Default(), spec);
}

// Reads the id column of split `split` of the dataset in `dir`.
std::vector<int64_t> IdsOf(const std::string& dir, const std::string& split) {
  std::vector<int64_t> ids;
  auto source = OpenDatasetSource(Env::Default(), dir, split, {});
  EXPECT_TRUE(source.ok()) << source.status();
  if (!source.ok()) return ids;
  BadRowSink bad(BadRowPolicy::kError);
  BatchReader reader(std::move(*source), &bad);
  Batch b;
  for (;;) {
    auto more = reader.Next(&b);
    EXPECT_TRUE(more.ok()) << more.status();
    if (!more.ok() || !*more) break;
    const Column& id = b.columns[b.FindColumn("id")];
    ids.insert(ids.end(), id.ints.begin(), id.ints.end());
  }
  return ids;
}

class ImporterTest : public ::testing::Test {
 protected:
  absl::StatusOr<ImportResult> Import(const std::string& out, ImportOptions opts = {}) {
    auto input = Resolve(csv_);
    if (!input.ok()) return input.status();
    opts.out_dir = out;
    return ImportDataset(Env::Default(), *input, opts);
  }
  testing::TempDir dir_;
  std::string csv_ = dir_.Write("in/clicks.csv", MakeCsv(3000));
};

TEST_F(ImporterTest, ImportsACsvEndToEnd) {
  std::string out = dir_.File("ds");
  auto result = Import(out);
  ASSERT_TRUE(result.ok()) << result.status();
  const DatasetManifest& m = result->manifest;
  EXPECT_EQ(m.source_format, "csv");
  EXPECT_THAT(m.source_files, ElementsAre(csv_));
  EXPECT_EQ(m.schema, (TableSchema{{"id", ValueType::kInt},
                                   {"user", ValueType::kString},
                                   {"price", ValueType::kFloat},
                                   {"name", ValueType::kString}}));
  ASSERT_EQ(m.splits.size(), 2u);
  EXPECT_EQ(m.splits[0].name, "train");
  EXPECT_EQ(m.splits[1].name, "eval");
  EXPECT_EQ(m.num_rows, 3000u);
  EXPECT_EQ(m.splits[0].rows + m.splits[1].rows, 3000u);
  EXPECT_NEAR(m.splits[0].rows / 3000.0, 2.0 / 3.0, 0.04);
  EXPECT_EQ(m.bad_rows, 0u);
  EXPECT_FALSE(m.created.empty());

  // The files are where the manifest says, with the recorded size and digest.
  for (const DatasetSplitInfo& s : m.splits) {
    ASSERT_EQ(s.files.size(), 1u);
    EXPECT_EQ(s.files[0].path, s.name + "/data-00000.kds");
    std::string bytes = testing::ReadAll(JoinPath(out, s.files[0].path));
    EXPECT_EQ(s.files[0].bytes, bytes.size());
    EXPECT_EQ(s.files[0].sha256, Sha256Hex(bytes));
    EXPECT_EQ(s.fingerprint, Sha256Hex(bytes));
    EXPECT_EQ(s.files[0].rows, s.rows);
  }
  EXPECT_EQ(m.fingerprint, Sha256Hex(kiln::StrCat("train\t", m.splits[0].fingerprint, "\neval\t",
                                                  m.splits[1].fingerprint, "\n")));

  auto read = ReadManifest(Env::Default(), out);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->fingerprint, m.fingerprint);
  EXPECT_EQ(read->schema, m.schema);
  EXPECT_EQ(read->created, m.created);

  // Every row landed exactly once, in the split its content hashes to.
  std::vector<int64_t> train = IdsOf(out, "train"), eval = IdsOf(out, "eval");
  EXPECT_EQ(train.size(), m.splits[0].rows);
  EXPECT_EQ(eval.size(), m.splits[1].rows);
  EXPECT_TRUE(std::is_sorted(train.begin(), train.end()));  // input order is kept
  std::map<int64_t, int> split_of;
  for (int64_t id : train) split_of[id] = 0;
  for (int64_t id : eval) EXPECT_TRUE(split_of.emplace(id, 1).second) << id;
  ASSERT_EQ(split_of.size(), 3000u);

  ReadOptions typed;
  typed.type_overrides = m.schema;
  auto input = Resolve(csv_);
  auto source = OpenSource(Env::Default(), *input, typed);
  ASSERT_TRUE(source.ok());
  BadRowSink bad(BadRowPolicy::kError);
  BatchReader reader(std::move(*source), &bad);
  auto assigner = SplitAssigner::Create(SplitConfig{});
  Batch b;
  std::vector<int> want;
  size_t checked = 0;
  while (*reader.Next(&b)) {
    assigner->Assign(b, &want);
    const Column& id = b.columns[b.FindColumn("id")];
    for (size_t r = 0; r < b.num_rows; ++r, ++checked) {
      EXPECT_EQ(split_of[id.ints[r]], want[r]) << id.ints[r];
    }
  }
  EXPECT_EQ(checked, 3000u);

  // All splits read in manifest order: train rows, then eval rows.
  std::vector<int64_t> all = IdsOf(out, "");
  std::vector<int64_t> both = train;
  both.insert(both.end(), eval.begin(), eval.end());
  EXPECT_EQ(all, both);
}

TEST_F(ImporterTest, SameInputGivesTheSameFingerprint) {
  auto a = Import(dir_.File("a"));
  auto b = Import(dir_.File("b"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->manifest.fingerprint, b->manifest.fingerprint);
  EXPECT_EQ(a->manifest.splits[0].fingerprint, b->manifest.splits[0].fingerprint);
  EXPECT_EQ(a->manifest.fingerprint.size(), 64u);
  EXPECT_TRUE(testing::ReadAll(dir_.File("a/eval/data-00000.kds")) ==
              testing::ReadAll(dir_.File("b/eval/data-00000.kds")));

  // Different weights give a different dataset, and a different fingerprint.
  ImportOptions other;
  other.splits = *ParseSplitConfig("train:1,eval:1");
  auto c = Import(dir_.File("c"), other);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(c->manifest.fingerprint, a->manifest.fingerprint);

  // Re-importing the dataset itself reproduces it byte for byte.
  auto input = Resolve(dir_.File("a"));
  ASSERT_TRUE(input.ok()) << input.status();
  ASSERT_EQ(input->format, Format::kDataset);
  ImportOptions again;
  again.out_dir = dir_.File("d");
  auto d = ImportDataset(Env::Default(), *input, again);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->manifest.fingerprint, a->manifest.fingerprint);
  EXPECT_EQ(d->manifest.source_format, "dataset");
}

TEST_F(ImporterTest, RefusesToReplaceADatasetUnlessAsked) {
  std::string out = dir_.File("ds");
  ASSERT_TRUE(Import(out).ok());
  auto again = Import(out);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  ImportOptions overwrite;
  overwrite.overwrite = true;
  overwrite.splits = *ParseSplitConfig("train:1,test:1");
  auto replaced = Import(out, overwrite);
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  auto m = ReadManifest(Env::Default(), out);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->splits[1].name, "test");
  EXPECT_EQ(IdsOf(out, "train").size() + IdsOf(out, "test").size(), 3000u);

  // A dataset cannot be imported onto itself.
  auto input = Resolve(out);
  ASSERT_TRUE(input.ok());
  ImportOptions self;
  self.out_dir = out;
  self.overwrite = true;
  EXPECT_EQ(ImportDataset(Env::Default(), *input, self).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ImporterTest, PartitionFeatureKeepsAUsersRowsTogether) {
  ImportOptions opts;
  opts.splits.partition_feature = "user";
  std::string out = dir_.File("ds");
  auto result = Import(out, opts);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->manifest.partition_feature, "user");
  std::set<int64_t> train_users, eval_users;
  for (int64_t id : IdsOf(out, "train")) train_users.insert(id % 37);
  for (int64_t id : IdsOf(out, "eval")) eval_users.insert(id % 37);
  EXPECT_EQ(train_users.size() + eval_users.size(), 37u);  // no user in both
  EXPECT_FALSE(train_users.empty());
  EXPECT_FALSE(eval_users.empty());

  opts.splits.partition_feature = "customer";
  auto bad = Import(dir_.File("other"), opts);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(),
              HasSubstr("partition feature 'customer' is not a column; columns: id, user"));
  EXPECT_FALSE(Env::Default()->FileExists(dir_.File("other")));
}

TEST_F(ImporterTest, BadRowsAreCountedOrStopTheImport) {
  std::string csv = dir_.Write("bad/in.csv", "a,b\n1,x\n2,y,extra\n3,z\n");
  auto input = Resolve(csv);
  ASSERT_TRUE(input.ok());
  ImportOptions skip;
  skip.out_dir = dir_.File("skip");
  skip.read.bad_rows = BadRowPolicy::kSkip;
  auto result = ImportDataset(Env::Default(), *input, skip);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->manifest.bad_rows, 1u);
  EXPECT_EQ(result->manifest.num_rows, 2u);
  ASSERT_EQ(result->bad_rows.size(), 1u);
  EXPECT_EQ(result->bad_rows[0].line, 3u);
  EXPECT_EQ(ReadManifest(Env::Default(), skip.out_dir)->bad_rows, 1u);

  ImportOptions stop;
  stop.out_dir = dir_.File("stop");
  auto failed = ImportDataset(Env::Default(), *input, stop);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(failed.status().message(), HasSubstr(csv + ":3"));
  EXPECT_EQ(ReadManifest(Env::Default(), stop.out_dir).status().code(),
            absl::StatusCode::kNotFound);
}

// Forwards to the default Env, failing the rename that would publish the manifest: the
// moment a crash would hurt most.
class NoManifestEnv : public EnvWrapper {
 public:
  NoManifestEnv() : EnvWrapper(Env::Default()) {}
  absl::Status RenameFile(const std::string& a, const std::string& b) override {
    if (Basename(b) == kManifestName) return absl::UnavailableError("injected crash");
    return EnvWrapper::RenameFile(a, b);
  }
};

TEST_F(ImporterTest, AnImportThatDiesBeforeTheManifestIsNoDataset) {
  NoManifestEnv env;
  auto input = Resolve(csv_);
  ASSERT_TRUE(input.ok());
  ImportOptions opts;
  opts.out_dir = dir_.File("ds");
  auto result = ImportDataset(&env, *input, opts);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  // The split files were written, but without the manifest nobody takes them for a dataset.
  EXPECT_TRUE(Env::Default()->FileExists(dir_.File("ds/train/data-00000.kds")));
  EXPECT_EQ(ReadManifest(Env::Default(), opts.out_dir).status().code(),
            absl::StatusCode::kNotFound);
  auto listing = Env::Default()->ListDir(opts.out_dir);
  ASSERT_TRUE(listing.ok());
  EXPECT_THAT(*listing, ElementsAre("eval", "train"));  // no temporary manifest left over
  // A retry with a working Env completes the dataset.
  auto retry = ImportDataset(Env::Default(), *input, opts);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(ReadManifest(Env::Default(), opts.out_dir)->num_rows, 3000u);
}

TEST_F(ImporterTest, AReplacementThatDiesLeavesTheOldDatasetWhole) {
  auto input = Resolve(csv_);
  ASSERT_TRUE(input.ok());
  ImportOptions opts;
  opts.out_dir = dir_.File("ds");
  auto first = ImportDataset(Env::Default(), *input, opts);
  ASSERT_TRUE(first.ok()) << first.status();
  // The replacement dies as it publishes its manifest.
  NoManifestEnv env;
  opts.overwrite = true;
  opts.splits = *ParseSplitConfig("a:1,b:1");
  EXPECT_EQ(ImportDataset(&env, *input, opts).status().code(), absl::StatusCode::kUnavailable);
  auto m = ReadManifest(Env::Default(), opts.out_dir);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->fingerprint, first->manifest.fingerprint);
  EXPECT_EQ(IdsOf(opts.out_dir, "train").size() + IdsOf(opts.out_dir, "eval").size(), 3000u);
  // No staging directory is left next to it.
  auto siblings = Env::Default()->ListDir(dir_.path());
  ASSERT_TRUE(siblings.ok());
  for (const auto& name : *siblings) EXPECT_EQ(name.find("kiln-import"), std::string::npos) << name;
  // The replacement then succeeds and swaps in whole.
  auto replaced = ImportDataset(Env::Default(), *input, opts);
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_EQ(ReadManifest(Env::Default(), opts.out_dir)->splits[0].name, "a");
  EXPECT_FALSE(Env::Default()->FileExists(JoinPath(opts.out_dir, "train")));
}

TEST_F(ImporterTest, RecordsTheSpan) {
  dir_.Write("spans/span-3/a.csv", "x\n1\n2\n");
  dir_.Write("spans/span-12/a.csv", "x\n5\n");
  auto input = Resolve(dir_.File("spans"));
  ASSERT_TRUE(input.ok()) << input.status();
  ImportOptions opts;
  opts.out_dir = dir_.File("ds");
  auto result = ImportDataset(Env::Default(), *input, opts);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->manifest.span, 12);
  EXPECT_EQ(result->manifest.num_rows, 1u);
  EXPECT_EQ(ReadManifest(Env::Default(), opts.out_dir)->span, 12);
}

}  // namespace
}  // namespace kiln::data
